"""Tiny models of every NADE kind over 6 pitches: small enough that all 2**6 frames can be enumerated and a
test can recompute by hand what the model does."""

from __future__ import annotations

import keras
import numpy as np

from rollgen.data.archive import Sequences
from rollgen.models import builders as models
from rollgen.music.roll import onsets, sounding
from rollgen.params import ConvNadeParams, NadeParams, PitchNadeParams, RnnNadeParams, TransformerNadeParams
from tests.archives import sequences, with_restrikes

PITCHES = 6
CONTEXT = 3  # the window models' window
WINDOW = 4  # the Transformer's attention span: shorter than the sequences the tests use, so the band matters

BUILDERS = {
    "nade": lambda: models.build_nade(NadeParams(units=8, nade_units=5), CONTEXT, PITCHES),
    "convnade": lambda: models.build_convnade(ConvNadeParams(filters=3, kernel=3, nade_units=5), CONTEXT, PITCHES),
    "rnnnade": lambda: models.build_rnn_nade(RnnNadeParams(units=8, nade_units=5), WINDOW, PITCHES),
    "pitchnade": lambda: models.build_pitch_nade(PitchNadeParams(units=4, nade_units=5), WINDOW, PITCHES),
    "transformernade": lambda: models.build_transformer_nade(
        TransformerNadeParams(width=8, nade_units=5, relative=True, key_summary=False), WINDOW, PITCHES
    ),
    "transformerkey": lambda: models.build_transformer_nade(  # reads the key so far: counts carried past its window
        TransformerNadeParams(width=8, nade_units=5, relative=True, key_summary=True), WINDOW, PITCHES
    ),
}
WINDOW_NADES = ("nade", "convnade")
SEQUENCE_NADES = ("rnnnade", "pitchnade", "transformernade", "transformerkey")


def tiny(name: str, seed: int = 0) -> keras.Model:
    """The tiny Keras model of kind `name`, its weights drawn from `seed`; the Transformer's distance biases
    (zero when built) drawn too, so that a test sees a step's distance count."""
    keras.utils.set_random_seed(seed)
    model = BUILDERS[name]()
    for weight in model.weights:
        if weight.path.endswith("distance_bias"):
            weight.assign(np.random.default_rng(seed).normal(size=weight.shape).astype(np.float32))
    return model


def every_frame(pitches: int = PITCHES) -> np.ndarray:
    """All 2**pitches frames of 0/1, one per row."""
    return ((np.arange(2**pitches)[:, None] >> np.arange(pitches)) & 1).astype(np.float32)


def joint(conditionals: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """P(frame) from a NADE's conditionals P(pitch d | the frame's notes below d), over the last axis."""
    return np.prod(np.where(frames > 0, conditionals, 1 - conditionals), axis=-1)


LENGTHS = [7, 2, 1, 12]  # two pieces shorter than the window models' window of 3


def tiny_data(lengths=LENGTHS, target_gap: int = 0, seed: int = 0) -> Sequences:
    """Pieces over 6 pitches in 4/4, a few notes each, as levels: some held notes struck again."""
    pieces = [np.random.default_rng([seed, n]).random((length, PITCHES)) < 0.35 for n, length in enumerate(lengths)]
    return sequences(with_restrikes(pieces, seed=seed), context=CONTEXT, target_gap=target_gap)


def heard_before(levels: np.ndarray) -> np.ndarray:
    """What a sequence model reads before each frame of a piece's levels (steps, pitches): the frame before,
    silence first, as its sounding cells then its struck cells (steps, 2 x pitches)."""
    before = np.concatenate([np.zeros((1, levels.shape[1]), np.uint8), levels[:-1]])
    return np.concatenate([sounding(before), onsets(before)], axis=1).astype(np.float32)


def prefix_by_hand(keras_model, data: Sequences) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's conditionals and onset probabilities from a Keras call on its piece up to it: the frames
    before (silence first), their positions and the true frame's sounding notes."""
    rows, struck = [], []
    for number in range(len(data)):
        truth = sounding(data.sequence(number)).astype(np.float32)
        previous = heard_before(data.sequence(number))
        where = data.positions[data.offsets[number] : data.offsets[number + 1]].astype(np.int32)
        for t in range(len(truth)):
            inputs = [previous[None, : t + 1], where[None, : t + 1], truth[None, : t + 1]]
            conditionals, onset_probabilities = (np.asarray(part)[0, -1] for part in keras_model(inputs))
            rows.append(conditionals)
            struck.append(onset_probabilities)
    return np.asarray(rows), np.asarray(struck)
