"""The numbers every score is made of: the Bernoulli NLL of frames of pitches, and F1-style accuracy.

Evaluation, the transposition ensemble and training's validation all score with these, so an NLL means the
same thing wherever it is reported: nats per frame, the sum over pitches of each pitch's Bernoulli NLL.
`nll` is that of what sounds (the classic frame NLL of the published tables); `onset_nll` that of which
sounding notes are struck rather than held, given what sounds, over the cells where that is a question (a
pitch that sounded in the frame before too: rollgen.models.onsets), also summed over a frame and averaged
over every frame. Their sum is the NLL of the frames' levels.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rollgen.data.archive import Sequences
from rollgen.music.roll import onsets, sounding

EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON] so a hard 0/1 guess has a finite NLL


def clipped(probabilities: np.ndarray) -> np.ndarray:
    """The probabilities as float64, clipped to [EPSILON, 1 - EPSILON]."""
    return np.clip(np.asarray(probabilities, dtype=np.float64), EPSILON, 1 - EPSILON)


def bernoulli_nll(probabilities: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Nats of each cell (same shape as `probabilities`): -log p where the target sounds, -log(1 - p) where it
    is silent, p clipped. Summed over a frame's pitches it is the frame's NLL."""
    p = clipped(probabilities)
    return -np.where(np.asarray(targets, dtype=bool), np.log(p), np.log1p(-p))


def frame_scores(
    probabilities: np.ndarray, targets: np.ndarray, predicted: np.ndarray | None = None
) -> dict[str, float]:
    """nll: nats per frame (sum over pitches of the Bernoulli NLL, mean over frames); acc = TP/(TP+FP+FN),
    precision, recall and f1 of the predicted frames, summed over every frame of the split.

    Predicted frames default to probabilities > 0.5; a NADE model passes its own decoded frames (its
    probabilities are conditionals given the true notes below, which a prediction may not use).
    """
    y = np.asarray(targets, dtype=bool)
    nll = bernoulli_nll(probabilities, y).sum(axis=1).mean() if len(y) else float("nan")
    predicted = np.asarray(probabilities) > 0.5 if predicted is None else np.asarray(predicted, dtype=bool)
    tp = int((predicted & y).sum())
    fp = int((predicted & ~y).sum())
    fn = int((~predicted & y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "nll": float(nll),
        "acc": tp / (tp + fp + fn) if tp + fp + fn else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }


def onset_targets(data: Sequences) -> tuple[np.ndarray, np.ndarray]:
    """bool (frames, pitches) twice: which cells of `data`'s levels are struck, and where that is uncertain (the
    pitch sounds and sounded in the frame just before, in its sequence)."""
    before = replace(data, target_gap=0).previous_frames()
    return onsets(data.frames), sounding(data.frames) & sounding(before)


def onset_nll(probabilities: np.ndarray, struck: np.ndarray, uncertain: np.ndarray) -> float:
    """Nats per frame of the onsets: the Bernoulli NLL of the `uncertain` cells' onset `probabilities` against
    `struck`, summed over each frame, averaged over every frame (as `nll`); NaN without frames."""
    if not len(struck):
        return float("nan")
    return float((bernoulli_nll(probabilities, struck) * np.asarray(uncertain, bool)).sum(axis=1).mean())
