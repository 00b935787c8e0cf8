"""Scores on the test split, every frame of every piece: frame NLL and F1-style accuracy, for the model and two
simple baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rollgen import files, paths
from rollgen.data.archive import Sequences, load_sequences, sounding
from rollgen.errors import RollgenError
from rollgen.evaluation.mixture import TranspositionMixture
from rollgen.evaluation.scores import frame_scores, onset_nll, onset_targets
from rollgen.models import frame_model
from rollgen.models.frame_model import FrameModel, Prediction
from rollgen.music.roll import LOWEST_PITCH
from rollgen.params import EvaluateParams


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
    """Each pitch's probability of sounding after `previous` frames, from a `fit_persistence` table."""
    previous = np.asarray(previous, dtype=bool)
    return np.where(previous, table[1], table[0])


def scored_pitches(highest_pitch: int) -> slice:
    """The rows of a frame that scores count: MIDI pitches LOWEST_PITCH..`highest_pitch`."""
    return slice(0, highest_pitch - LOWEST_PITCH + 1)


def model_scores(network: FrameModel, test: Sequences, params: EvaluateParams) -> tuple[dict, str]:
    """The model's scores on the test pieces (`model`, and `network` for an ensemble) and how its frames were
    decoded, counting the pitches up to `params.highest_pitch`: `nll` of what sounds and `onset_nll` of which
    notes are struck (rollgen.evaluation.scores; None for a model that predicts no onsets), the ensemble's onset
    NLL the network's alone, under `network`."""
    keep = scored_pitches(params.highest_pitch)
    targets = sounding(test.frames)[:, keep]
    samples, seed, reach = params.samples, params.seed, params.transpositions
    decoding = "probability > 0.5"
    if network.head is not None:
        decoding = f"marginal > 0.5 from {samples} samples" if samples else "greedy, lowest pitch first"
    struck, uncertain = onset_targets(test)
    struck, uncertain = struck[:, keep], uncertain[:, keep]

    def onsets_of(prediction: Prediction) -> dict:  # None: a model that predicts no onsets (window models)
        found = prediction.onsets
        return {"onset_nll": None if found is None else onset_nll(found[:, keep], struck, uncertain)}

    if not reach:
        prediction = network.predict(test, samples=samples, seed=seed)
        model = frame_scores(prediction.probabilities[:, keep], targets, prediction.predicted[:, keep])
        return {"model": {**model, **onsets_of(prediction)}}, decoding
    mixture = TranspositionMixture(network, reach)
    experts = mixture.experts(test, samples=samples, seed=seed)
    prediction = mixture.combine(experts, test, samples)
    unshifted = experts[mixture.shifts.index(0)]  # the network alone: its NLL, and its onsets' (the mixture's are
    # not computed: it mixes what sounds)
    scores = {
        "model": frame_scores(prediction.probabilities[:, keep], targets, prediction.predicted[:, keep]),
        "network": {"nll": frame_scores(unshifted.probabilities[:, keep], targets)["nll"], **onsets_of(unshifted)},
    }
    return scores, f"{decoding}; the model: the network's mean over shifts -{reach}..{reach} semitones"


def run(
    params: EvaluateParams,
    model_path: Path = paths.MODEL,
    windows_dir: Path = paths.WINDOWS_DIR,
    metrics_path: Path = paths.EVAL_METRICS,
) -> dict:
    """Writes metrics/eval.json: `model`, `persistence` and `repeat_last`, each scored on every frame of every
    test piece, as the published tables score them: a piece's first frame from the model's initial state (a
    window model: from silent context; the baselines: after silence).

    Scores count the pitches up to `params.highest_pitch` only: 108 gives the 88 piano keys of the classic JSB
    Chorales tables (run with images.steps_per_quarter=1 for their quarter-note frames). A NADE model's
    frames are decoded from `params.samples` draws per frame (0: greedily), seeded by `params.seed`
    (rollgen.models.nade.Decoder). `params.transpositions` N > 0 scores the model as the ensemble of the
    network over shifts -N..N (rollgen.evaluation.mixture) and adds the network alone's NLL as `network` (its
    unshifted expert; the draws went to the ensemble), and the network alone's `onset_nll`: the ensemble mixes
    what sounds only. A model's `onset_nll` is beside its `nll`, whose meaning onsets leave as it was.
    """
    train, test = load_sequences("train", windows_dir), load_sequences("test", windows_dir)
    if len(test.frames) == 0:
        raise RollgenError(f"the test split in {windows_dir} has no frames")
    scores, decoding = model_scores(frame_model.load(model_path), test, params)
    keep = scored_pitches(params.highest_pitch)
    targets = sounding(test.frames)[:, keep]
    last_frame = sounding(test.previous_frames())  # the frame before each (two before, in article mode)
    table = fit_persistence(sounding(train.previous_frames()), sounding(train.frames))
    results = {
        **scores,
        "persistence": frame_scores(persistence_probabilities(table, last_frame)[:, keep], targets),
        "repeat_last": frame_scores(last_frame[:, keep].astype(np.float64), targets),
        "pitches": f"{LOWEST_PITCH}..{params.highest_pitch}",
        "decoding": decoding,
        "scored": "every frame of every test piece",
        "test_frames": int(len(targets)),
        "test_pieces": int(len(test.names)),
    }
    files.write_json(metrics_path, results)
    return results
