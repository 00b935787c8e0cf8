"""Scores on the test split, every frame of every piece: frame NLL and F1-style accuracy, for the model and two
simple baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rollgen import files, paths
from rollgen.data.archive import load_sequences
from rollgen.data.images import image_to_roll as sounding
from rollgen.errors import RollgenError
from rollgen.music.roll import LOWEST_PITCH, NUM_PITCHES

EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON] so a hard 0/1 guess has a finite NLL


def frame_scores(
    probabilities: np.ndarray, targets: np.ndarray, predicted: np.ndarray | None = None
) -> dict[str, float]:
    """nll: nats per frame (sum over pitches of the Bernoulli NLL, mean over frames); acc = TP/(TP+FP+FN),
    precision, recall and f1 of the predicted frames, summed over every frame of the split.

    Predicted frames default to probabilities > 0.5; a NADE model passes its own decoded frames (its
    probabilities are conditionals given the true notes below, which a prediction may not use).
    """
    p = np.clip(np.asarray(probabilities, dtype=np.float64), EPSILON, 1 - EPSILON)
    y = np.asarray(targets, dtype=bool)
    nll = -(np.where(y, np.log(p), np.log1p(-p))).sum(axis=1).mean() if len(y) else float("nan")
    predicted = p > 0.5 if predicted is None else np.asarray(predicted, dtype=bool)
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


def fit_persistence(previous: np.ndarray, following: np.ndarray) -> np.ndarray:
    """Per pitch, P(on | previous frame off) and P(on | previous frame on): shape (2, pitches), add-one
    smoothed so an unseen case is not certain."""
    previous, following = np.asarray(previous, dtype=bool), np.asarray(following, dtype=bool)
    table = np.empty((2, previous.shape[1]))
    for state in (0, 1):
        given = previous == bool(state)
        table[state] = ((following & given).sum(axis=0) + 1) / (given.sum(axis=0) + 2)
    return table


def persistence_probabilities(table: np.ndarray, previous: np.ndarray) -> np.ndarray:
    previous = np.asarray(previous, dtype=bool)
    return np.where(previous, table[1], table[0])


def run(
    model_path: Path = paths.MODEL,
    windows_dir: Path = paths.WINDOWS_DIR,
    metrics_path: Path = paths.EVAL_METRICS,
    highest_pitch: int = LOWEST_PITCH + NUM_PITCHES - 1,
    samples: int = 0,
    seed: int = 0,
    transpositions: int = 0,
) -> dict:
    """Writes metrics/eval.json: `model`, `persistence` and `repeat_last`, each scored on every frame of every
    test piece, as the published tables score them: a piece's first frame from the model's initial state (a
    window model: from silent context; the baselines: after silence).

    Scores count the pitches up to `highest_pitch` only: 108 gives the 88 piano keys of the classic JSB
    Chorales tables (run with images.steps_per_quarter=1 for their quarter-note frames). A NADE model's
    frames are decoded from `samples` draws per frame (0: greedily), seeded by `seed` (rollgen.models.nade.Decoder).
    `transpositions` N > 0 scores the model as the ensemble of the network over shifts -N..N
    (rollgen.evaluation.mixture)
    and adds the network alone's NLL as `network` (its unshifted expert; the draws went to the ensemble).
    """
    from rollgen.evaluation.mixture import TranspositionMixture
    from rollgen.models import frame_model

    keep = slice(0, highest_pitch - LOWEST_PITCH + 1)
    train, test = load_sequences("train", windows_dir), load_sequences("test", windows_dir)
    if len(test.frames) == 0:
        raise RollgenError(f"the test split in {windows_dir} has no frames")
    targets = sounding(test.frames)[:, keep]
    last_frame = sounding(test.previous_frames())  # the frame before each (two before, in article mode)
    table = fit_persistence(sounding(train.previous_frames()), sounding(train.frames))
    network = frame_model.load(model_path)
    decoding = "probability > 0.5"
    if network.head is not None:
        decoding = f"marginal > 0.5 from {samples} samples" if samples else "greedy, lowest pitch first"
    if transpositions:
        mixture = TranspositionMixture(network, transpositions)
        experts = mixture.experts(test, samples=samples, seed=seed)
        prediction = mixture.combine(experts, test, samples)
        unshifted = experts[mixture.shifts.index(0)].probabilities[:, keep]  # the network alone: its NLL
        network_scores = {"nll": frame_scores(unshifted, targets)["nll"]}
        decoding += f"; the model: the network's mean over shifts -{transpositions}..{transpositions} semitones"
    else:
        prediction = network.predict(test, samples=samples, seed=seed)
    scores = {"model": frame_scores(prediction.probabilities[:, keep], targets, prediction.predicted[:, keep])}
    if transpositions:
        scores["network"] = network_scores
    results = {
        **scores,
        "persistence": frame_scores(persistence_probabilities(table, last_frame)[:, keep], targets),
        "repeat_last": frame_scores(last_frame[:, keep].astype(np.float64), targets),
        "pitches": f"{LOWEST_PITCH}..{highest_pitch}",
        "decoding": decoding,
        "scored": "every frame of every test piece",
        "test_frames": int(len(targets)),
        "test_pieces": int(len(test.names)),
    }
    files.write_json(metrics_path, results)
    return results
