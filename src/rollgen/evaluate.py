"""Scores on the test split: frame NLL and F1-style accuracy, for the model and two simple baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rollgen import files, paths
from rollgen.images import image_to_roll as sounding
from rollgen.roll import LOWEST_PITCH, NUM_PITCHES
from rollgen.windows import load_split

EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON] so a hard 0/1 guess has a finite NLL


def frame_scores(
    probabilities: np.ndarray, targets: np.ndarray, predicted: np.ndarray | None = None
) -> dict[str, float]:
    """nll: nats per frame (sum over pitches of the Bernoulli NLL, mean over frames); acc = TP/(TP+FP+FN),
    precision, recall and f1 of the predicted frames, summed over every frame of the split.

    Predicted frames default to probabilities > 0.5; an autoregressive model passes its own decoded frames
    (its probabilities are conditionals given the true notes below, which a prediction may not use).
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


def decode_nade(encoder, head, windows: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """The frames a NADE model predicts for float windows, without the true notes.

    samples 0: greedily, lowest pitch first, each pitch on when its probability given the pitches already
    decided exceeds 0.5. samples N: each pitch on when it sounds in more than half of N frames drawn from the
    model, i.e. its marginal probability (estimated) exceeds 0.5 -- the rule the factorised models follow.
    """
    import tensorflow as tf

    draw = tf.function(lambda features, levels: head.sample(features, levels)[0])
    features = encoder(windows, training=False)
    shape = (len(windows), head.input_weights.shape[0])
    if samples == 0:
        return np.asarray(draw(features, np.full(shape, 0.5, np.float32)))
    sounding = np.zeros(shape, np.int32)
    for _ in range(samples):
        sounding += np.asarray(draw(features, rng.random(shape, dtype=np.float32)), dtype=np.int32)
    return (2 * sounding > samples).astype(np.float32)


def predict(
    model, x: np.ndarray, y: np.ndarray, batch_size: int = 2048, samples: int = 0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray | None]:
    """Probabilities of the true next frames `y` given uint8 windows `x`, and the model's predicted frames.

    Factorised models: their 106 probabilities, and no frames (frame_scores thresholds at 0.5). NADE models:
    each pitch's probability given the true pitches below it (their NLL is the model's exact frame NLL), and
    the frames decode_nade predicts with `samples` draws per window (0: greedy), seeded by `seed`.
    """
    from rollgen.models import is_autoregressive, nade_parts

    probabilities, decoded = [], []
    autoregressive = is_autoregressive(model)
    if autoregressive:
        encoder, head = nade_parts(model)
        rng = np.random.default_rng(seed)
    for start in range(0, len(x), batch_size):
        windows = x[start : start + batch_size].astype(np.float32) / 255.0
        if not autoregressive:
            probabilities.append(np.asarray(model(windows, training=False)))
            continue
        frames = (y[start : start + batch_size] > 127).astype(np.float32)
        probabilities.append(np.asarray(model([windows, frames], training=False)))
        decoded.append(decode_nade(encoder, head, windows, samples, rng))
    empty = np.zeros((0, x.shape[2]), np.float32)
    return (
        np.concatenate(probabilities) if probabilities else empty,
        (np.concatenate(decoded) if decoded else empty) if autoregressive else None,
    )


def run(
    model_path: Path = paths.MODEL,
    windows_dir: Path = paths.WINDOWS_DIR,
    metrics_path: Path = paths.EVAL_METRICS,
    highest_pitch: int = LOWEST_PITCH + NUM_PITCHES - 1,
    samples: int = 0,
    seed: int = 0,
) -> dict:
    """Writes metrics/eval.json: `model`, `persistence` and `repeat_last`, each scored on the test split.

    Scores count the pitches up to `highest_pitch` only: 108 gives the 88 piano keys of the classic JSB
    Chorales tables (run with images.steps_per_quarter=1 for their quarter-note frames). A NADE model's
    frames are decoded from `samples` draws per window (0: greedily), seeded by `seed` (see decode_nade).
    """
    from rollgen.models import load_model

    keep = slice(0, highest_pitch - LOWEST_PITCH + 1)

    train, test = load_split("train", windows_dir), load_split("test", windows_dir)
    if len(test["y"]) == 0:
        raise SystemExit(f"evaluate: the test split in {windows_dir} has no windows")
    targets = sounding(test["y"])[:, keep]
    last_frame = sounding(test["x"][:, -1])  # the frame before the target (two before, in article mode)
    table = fit_persistence(sounding(train["x"][:, -1]), sounding(train["y"]))
    probabilities, decoded = predict(load_model(model_path), test["x"], test["y"], samples=samples, seed=seed)
    decoding = "probability > 0.5"
    if decoded is not None:
        decoding = f"marginal > 0.5 from {samples} samples" if samples else "greedy, lowest pitch first"
    results = {
        "model": frame_scores(probabilities[:, keep], targets, None if decoded is None else decoded[:, keep]),
        "persistence": frame_scores(persistence_probabilities(table, last_frame)[:, keep], targets),
        "repeat_last": frame_scores(last_frame[:, keep].astype(np.float64), targets),
        "pitches": f"{LOWEST_PITCH}..{highest_pitch}",
        "decoding": decoding,
        "test_windows": int(len(targets)),
        "test_pieces": int(len(test["pieces"])),
    }
    files.write_json(metrics_path, results)
    return results
