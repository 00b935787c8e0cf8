"""Onsets in the sequence models: what they read of a frame (its sounding and its struck notes) and the head
that tells, for each pitch of a frame, whether it is struck or held on.

Whether a sounding note is struck is only a question where its pitch sounded in the frame before too: a pitch
that sounds after silence is struck for certain, and a silent pitch strikes nothing. So the onset part of a
frame's likelihood, given its sounding notes, is a Bernoulli per *uncertain* cell (those cells:
rollgen.evaluation.scores.onset_targets), and the NADE over the sounding notes keeps the classic frame NLL's
meaning. Frames are uint8 levels (rollgen.music.roll:
0, HELD, ONSET).
"""

from __future__ import annotations

import keras
import numpy as np

from rollgen.music.roll import HELD, ONSET, onsets, sounding, strike_runs

ONSET_BIAS = -2.0  # the onset head's starting logit: most notes that sound on are held, not struck again


def level_inputs(levels: np.ndarray) -> np.ndarray:
    """float32 (..., 2 * pitches) of uint8 levels (..., pitches): the sounding cells, then the struck ones (0/1),
    what a sequence model reads of the frame before."""
    return np.concatenate([sounding(levels), onsets(levels)], axis=-1).astype(np.float32)


def as_levels(frames: np.ndarray, time_axis: int) -> np.ndarray:
    """uint8 levels of frames: levels as they are; 0/1 or 0..1 floats, or bool, struck where a run starts (a
    roll without onsets, rollgen.music.roll.strike_runs)."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    return strike_runs(frames > 0.5, time_axis)


def to_levels(now, struck):
    """uint8-valued levels (float or int as `now`) of sounding cells `now` (0/1) and which of them are `struck`
    (0/1): ONSET where struck, HELD where held, 0 where silent. Works on tensors and arrays alike."""
    return now * (HELD + (ONSET - HELD) * struck)


@keras.utils.register_keras_serializable(package="rollgen")
class OnsetHead(keras.layers.Layer):
    """P(pitch is struck | the model's features, the frame's sounding notes), per pitch, and 1 or 0 where that is
    certain: inputs [features (..., F), frame (..., pitches) of 0/1, previous (..., >= pitches) whose first
    `pitches` columns are the frame before's sounding notes]. A linear logit in the features and the frame
    (a chord struck together, a held pitch beside a struck one), one weight matrix for each."""

    def __init__(self, initial_bias: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.initial_bias = initial_bias

    def build(self, input_shape) -> None:
        features, pitches = int(input_shape[0][-1]), int(input_shape[1][-1])
        glorot = keras.initializers.GlorotUniform
        self.feature_kernel = self.add_weight(shape=(features, pitches), initializer=glorot(), name="feature_kernel")
        self.frame_kernel = self.add_weight(shape=(pitches, pitches), initializer=glorot(), name="frame_kernel")
        start = keras.initializers.Constant(self.initial_bias)
        self.bias = self.add_weight(shape=(pitches,), initializer=start, name="bias")

    def logits(self, features, frame):
        """The onset logit of every pitch (..., pitches), meaningful where the onset is uncertain."""
        ops = keras.ops
        return ops.matmul(features, self.feature_kernel) + ops.matmul(frame, self.frame_kernel) + self.bias

    def call(self, inputs, temperature: float = 1.0):
        ops = keras.ops
        features, frame, previous = inputs
        now = ops.cast(frame > 0.5, features.dtype)
        before = ops.cast(previous[..., : ops.shape(frame)[-1]] > 0.5, features.dtype)
        learnt = ops.sigmoid(self.logits(features, now) / temperature)
        return now * (1 - before) + now * before * learnt

    def get_config(self) -> dict:
        return {**super().get_config(), "initial_bias": self.initial_bias}
