"""Tiny models of every NADE kind over 6 pitches: small enough that all 2**6 frames can be enumerated and a
test can recompute by hand what the model does."""

from __future__ import annotations

import keras
import numpy as np

from rollgen.data.archive import Sequences
from rollgen.models import builders as models
from rollgen.params import ConvNadeParams, NadeParams, PitchNadeParams, RnnNadeParams, TransformerNadeParams
from tests.archives import sequences

PITCHES = 6
CONTEXT = 3  # the window models' window
WINDOW = 4  # the Transformer's attention span: shorter than the sequences the tests use, so the band matters

BUILDERS = {
    "nade": lambda: models.build_nade(NadeParams(units=8, nade_units=5), CONTEXT, PITCHES),
    "convnade": lambda: models.build_convnade(ConvNadeParams(filters=3, kernel=3, nade_units=5), CONTEXT, PITCHES),
    "rnnnade": lambda: models.build_rnn_nade(RnnNadeParams(units=8, nade_units=5), WINDOW, PITCHES),
    "pitchnade": lambda: models.build_pitch_nade(PitchNadeParams(units=4, nade_units=5), WINDOW, PITCHES),
    "transformernade": lambda: models.build_transformer_nade(
        TransformerNadeParams(width=8, nade_units=5), WINDOW, PITCHES
    ),
}
WINDOW_NADES = ("nade", "convnade")
SEQUENCE_NADES = ("rnnnade", "pitchnade", "transformernade")


def tiny(name: str, seed: int = 0) -> keras.Model:
    """The tiny Keras model of kind `name`, its weights drawn from `seed`."""
    keras.utils.set_random_seed(seed)
    return BUILDERS[name]()


def every_frame(pitches: int = PITCHES) -> np.ndarray:
    """All 2**pitches frames of 0/1, one per row."""
    return ((np.arange(2**pitches)[:, None] >> np.arange(pitches)) & 1).astype(np.float32)


def joint(conditionals: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """P(frame) from a NADE's conditionals P(pitch d | the frame's notes below d), over the last axis."""
    return np.prod(np.where(frames > 0, conditionals, 1 - conditionals), axis=-1)


LENGTHS = [7, 2, 1, 12]  # two pieces shorter than the window models' window of 3


def tiny_data(lengths=LENGTHS, target_gap: int = 0, seed: int = 0) -> Sequences:
    """Pieces over 6 pitches in 4/4, a few notes each."""
    pieces = [np.where(np.random.default_rng([seed, n]).random((length, PITCHES)) < 0.35, 255, 0).astype(np.uint8)
              for n, length in enumerate(lengths)]  # fmt: skip
    return sequences(pieces, context=CONTEXT, target_gap=target_gap)


def prefix_by_hand(keras_model, data: Sequences) -> np.ndarray:
    """Each frame's conditionals from a Keras call on its piece up to it: the frames before (silence first),
    their positions and the true frame."""
    rows = []
    for number in range(len(data)):
        truth = (data.sequence(number) > 127).astype(np.float32)
        previous = np.concatenate([np.zeros((1, PITCHES), np.float32), truth[:-1]])
        where = data.positions[data.offsets[number] : data.offsets[number + 1]].astype(np.int32)
        for t in range(len(truth)):
            rows.append(
                np.asarray(keras_model([previous[None, : t + 1], where[None, : t + 1], truth[None, : t + 1]]))[0, -1]
            )
    return np.asarray(rows)
