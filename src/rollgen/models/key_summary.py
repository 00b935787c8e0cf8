"""The key so far: how long each of the 12 pitch classes has sounded since a piece began, as a control a
sequence model reads beside the frames (as Performance RNN reads a pitch-class histogram).

A Transformer attends a fixed span back; over longer pieces its own generated pieces kept each stretch in
key but wandered from key to key (docs/results.md). The counts reach back to the first frame at a fixed
cost: in training they come from the whole piece before each stretch (`prefix_counts`), in scoring and
generation the encoder carries them in its state (`running_counts`); both count the same frames.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from keras import ops

from rollgen.music.roll import LOWEST_PITCH, sounding

CLASSES = 12


def class_matrix(pitches: int) -> np.ndarray:
    """(pitches, 12) float32: row r (MIDI LOWEST_PITCH + r) one-hot at its pitch class (0 = C)."""
    return np.eye(CLASSES, dtype=np.float32)[(np.arange(pitches) + LOWEST_PITCH) % CLASSES]


def prefix_counts(frames: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """int32 (frames + 1, 12): per frame, the sounding cells of each pitch class in the frames of its sequence
    before it; the extra last row (the silent frame batches pad with) is zeros. Integer sums: exact however
    long the archive."""
    per_frame = sounding(frames).astype(np.int64) @ class_matrix(frames.shape[1]).astype(np.int64)
    total = np.concatenate([np.zeros((1, CLASSES), np.int64), np.cumsum(per_frame, axis=0)])
    starts = np.repeat(offsets[:-1], np.diff(offsets)).astype(np.int64)
    before = total[:-1] - total[starts]
    return np.concatenate([before, np.zeros((1, CLASSES), np.int64)]).astype(np.int32)


def transpose_counts(counts: tf.Tensor, shifts: tf.Tensor) -> tf.Tensor:
    """Each example's counts (batch, ..., 12) moved up by its shift in semitones, as its frames are
    (rollgen.models.batches.transpose_frames; the notes a shift pushes off the rows are still counted)."""
    source = tf.math.floormod(tf.range(CLASSES, dtype=tf.int32)[None, :] - shifts[:, None], CLASSES)
    return tf.gather(counts, source, axis=counts.shape.rank - 1, batch_dims=1)


def running_counts(previous_sounding, start):
    """Counts (batch, steps, 12) at each step of frames read one after another: `start` (batch, 12), what came
    before, plus the sounding cells of each frame before the step (`previous_sounding`, (batch, steps, pitches),
    the frame before at every step) up to and including it."""
    matrix = ops.convert_to_tensor(class_matrix(int(previous_sounding.shape[-1])))
    return start[:, None, :] + ops.cumsum(ops.matmul(previous_sounding, matrix), axis=1)


def shares(counts):
    """Counts (..., 12) as each class's share of all (0 before anything sounded): the key, whatever the length."""
    counts = ops.cast(counts, "float32")
    return counts / ops.maximum(ops.sum(counts, axis=-1, keepdims=True), 1.0)
