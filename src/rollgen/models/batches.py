"""Training batches cut on the fly from the archived frames: windows for the window models, stretches of a
piece for the sequence models. Only the frames are held, never overlapping copies; with a seed, every epoch
has its own order (and transpositions) from (seed, epoch) alone, so a resumed run sees exactly the batches
an uninterrupted one would."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from rollgen.models.key_summary import prefix_counts, transpose_counts
from rollgen.music.roll import SOUNDS_ABOVE, STRIKES_ABOVE

# The same thresholds as rollgen.music.roll.sounding and onsets, as integers for uint8 tensors.
SOUNDING_ABOVE, STRUCK_ABOVE = math.floor(SOUNDS_ABOVE), math.floor(STRIKES_ABOVE)


def padded_sequences(frames: np.ndarray, offsets: np.ndarray, before: int) -> tuple[np.ndarray, np.ndarray]:
    """`frames` with `before` silent frames put in front of every sequence, and the new offsets: a window
    model then predicts a piece's first frames from silence, as it is scored."""
    lengths = np.diff(offsets)
    padded = np.zeros((len(frames) + before * len(lengths), frames.shape[1]), frames.dtype)
    new_offsets = np.concatenate([[0], np.cumsum(lengths + before)]).astype(np.int64)
    keep = np.ones(len(padded), bool)
    for start in new_offsets[:-1]:
        keep[start : start + before] = False
    padded[keep] = frames
    return padded, new_offsets


def window_starts(frame_offsets: np.ndarray, context: int, gap: int) -> np.ndarray:
    """First frame of every window: each sequence [start, end) gives windows whose target fits inside it."""
    starts = [
        np.arange(start, end - context - gap, dtype=np.int64)
        for start, end in zip(frame_offsets[:-1], frame_offsets[1:])
        if end - start > context + gap
    ]
    return np.concatenate(starts) if starts else np.zeros(0, np.int64)


def transpose_frames(frames: tf.Tensor, shifts: tf.Tensor) -> tf.Tensor:
    """Moves each example's frames (batch, ..., pitches) up by its shift in semitones (down if negative);
    notes pushed off the rows vanish."""
    pitches = frames.shape[-1]
    source = tf.range(pitches, dtype=tf.int32)[None, :] - shifts[:, None]  # (batch, pitches)
    valid = tf.cast((source >= 0) & (source < pitches), frames.dtype)
    source = tf.clip_by_value(source, 0, pitches - 1)
    moved = tf.gather(frames, source, axis=frames.shape.rank - 1, batch_dims=1)
    return moved * tf.reshape(valid, [-1] + [1] * (frames.shape.rank - 2) + [pitches])


def sounding_tensor(levels: tf.Tensor) -> tf.Tensor:
    """0/1 floats: which cells of uint8 levels sound (rollgen.music.roll.sounding, in TensorFlow)."""
    return tf.cast(levels > SOUNDING_ABOVE, tf.float32)


def struck_tensor(levels: tf.Tensor) -> tf.Tensor:
    """0/1 floats: which cells of uint8 levels strike a note (rollgen.music.roll.onsets, in TensorFlow)."""
    return tf.cast(levels > STRUCK_ABOVE, tf.float32)


def batch_shifts(seed: tf.Tensor, epoch: tf.Tensor, index: tf.Tensor, count: tf.Tensor, transpose: int) -> tf.Tensor:
    """Semitone shifts in -transpose..transpose for a batch's examples, from (seed, epoch, batch index)."""
    batch_seed = tf.random.experimental.stateless_fold_in(tf.stack([seed, epoch]), index)
    return tf.random.stateless_uniform(
        tf.reshape(count, [1]), seed=batch_seed, minval=-transpose, maxval=transpose + 1, dtype=tf.int32
    )


PREFETCHED_BATCHES = 2  # cut ahead while the model trains on the batch before


def pipelined(batches: tf.data.Dataset, cut) -> tf.data.Dataset:
    """`batches` mapped through `cut` in parallel, in order, a few batches ahead, with tf.data's autotuner off.

    Every epoch has a dataset of its own; with the autotuner on, deleting a finished epoch's iterator waited
    3-5 s, idle, at the end of about a third of the epochs (a fifth of the default's training time).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    mapped = batches.map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)  # one call per core
    return mapped.prefetch(PREFETCHED_BATCHES).with_options(options)


def window_batches(
    frames: np.ndarray,
    starts: np.ndarray,
    context: int,
    gap: int,
    batch_size: int,
    seed: int | None = None,
    first_epoch: int = 0,
    epochs: int = 1,
    transpose: int = 0,
) -> tf.data.Dataset:
    """Batches of (windows (batch, context, pitches), next frames (batch, pitches)) as floats in 0..1 from uint8
    pictures without onsets (`Sequences.brightness`: the article's grays, or 0/255); the window starting at s
    predicts frame s + context + gap. Window models read no onsets."""
    frames_tensor = tf.constant(frames)
    offsets = tf.range(context, dtype=tf.int64)
    starts_tensor = tf.constant(starts)
    base_seed = tf.constant(seed or 0, tf.int64)

    def epoch_batches(epoch):
        order = starts_tensor
        if seed is not None:
            order = tf.random.experimental.stateless_shuffle(starts_tensor, seed=tf.stack([base_seed, epoch]))
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).enumerate()
        return batches.map(lambda index, batch: (epoch, index, batch))

    @tf.autograph.experimental.do_not_convert
    def cut(epoch, index, batch_starts):
        x = tf.cast(tf.gather(frames_tensor, batch_starts[:, None] + offsets[None, :]), tf.float32) / 255.0
        y = tf.cast(tf.gather(frames_tensor, batch_starts + context + gap), tf.float32) / 255.0
        if transpose:
            shifts = batch_shifts(base_seed, epoch, index, tf.shape(batch_starts)[0], transpose)
            x, y = transpose_frames(x, shifts), transpose_frames(y, shifts)
        return x, y

    epochs_dataset = tf.data.Dataset.range(first_epoch, first_epoch + epochs)
    batches = epochs_dataset.flat_map(epoch_batches)
    return pipelined(batches, cut)


def stretches(offsets: np.ndarray, steps: int, seed: int, epoch: int) -> np.ndarray:
    """The stretches of one epoch, shuffled: int64 rows (first frame, length, first frame of its sequence).

    Every sequence is cut into stretches of at most `steps` frames at a phase drawn from (seed, epoch), so
    each frame is predicted exactly once per epoch and the cuts fall elsewhere every epoch; a sequence no
    longer than `steps` is one stretch from its first frame.
    """
    rng = np.random.default_rng([seed, epoch])
    rows = []
    for start, end in zip(offsets[:-1], offsets[1:]):
        length = int(end - start)
        if length == 0:
            continue
        phase = int(rng.integers(steps)) if length > steps else 0
        cuts = np.unique(np.clip(np.concatenate([[0], np.arange(phase, length, steps), [length]]), 0, length))
        rows += [(start + a, b - a, start) for a, b in zip(cuts[:-1], cuts[1:])]
    table = np.asarray(rows, np.int64).reshape(-1, 3)
    return table[rng.permutation(len(table))]


def packed_rows(table: np.ndarray, steps: int) -> np.ndarray:
    """Where each stretch of `table` goes when short ones share a row: int64 (stretches, 2) of (row, first step
    in the row). First fit in the table's (shuffled) order: a stretch joins the first row with room left, or
    starts a new one; rows are numbered as they start, so their order stays shuffled. A stretch of `steps`
    frames fills a row alone; what packing saves is the padding after the short stretches at pieces' ends."""
    placed = np.zeros((len(table), 2), np.int64)
    open_rows: list[list[int]] = []  # [row, frames used] of rows with room left, oldest first
    rows = 0
    for number, length in enumerate(table[:, 1]):
        home = next((candidate for candidate in open_rows if candidate[1] + length <= steps), None)
        if home is None:
            home = [rows, 0]
            rows += 1
            open_rows.append(home)
        placed[number] = home
        home[1] += int(length)
        if home[1] == steps:
            open_rows.remove(home)
    return placed


def stretch_rows(offsets: np.ndarray, steps: int, seed: int, epoch: int, pack: bool) -> tuple[np.ndarray, np.ndarray]:
    """One epoch's stretches (rollgen.models.batches.stretches) and where each goes (packed_rows, or a row each)."""
    table = stretches(offsets, steps, seed, epoch)
    if pack:
        return table, packed_rows(table, steps)
    return table, np.stack([np.arange(len(table)), np.zeros(len(table), np.int64)], axis=1)


def row_count(placed: np.ndarray) -> int:
    """How many rows the stretches placed by stretch_rows fill."""
    return int(placed[:, 0].max()) + 1 if len(placed) else 0


def row_layout(table: np.ndarray, placed: np.ndarray, steps: int, silent: int) -> dict[str, np.ndarray]:
    """Per row and step (rows, steps): the frame to predict, the frame before it (`silent` before a piece's
    first frame and on padding), the stretch it belongs to (its number in `table` + 1; 0 on padding), and
    how many of the row's steps are used."""
    rows = row_count(placed)
    lengths = table[:, 1]
    stretch = np.repeat(np.arange(len(table)), lengths)
    within = np.arange(len(stretch)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    row, column = placed[stretch, 0], placed[stretch, 1] + within
    target = table[stretch, 0] + within
    layout = {
        "target": np.full((rows, steps), silent, np.int64),
        "previous": np.full((rows, steps), silent, np.int64),
        "segment": np.zeros((rows, steps), np.int32),
    }
    layout["target"][row, column] = target
    layout["previous"][row, column] = np.where(target - 1 >= table[stretch, 2], target - 1, silent)
    layout["segment"][row, column] = stretch + 1
    layout["used"] = (layout["segment"] > 0).sum(axis=1).astype(np.int64)
    return layout


def stretch_batches(
    frames: np.ndarray,
    positions: np.ndarray,
    offsets: np.ndarray,
    steps: int,
    batch_size: int,
    seed: int,
    epoch: int = 0,
    transpose: int = 0,
    pack: bool = False,
) -> tf.data.Dataset:
    """One epoch's batches of (previous frames, positions, frames, onsets, mask, segments, key counts), each
    (batch, steps, ...), for sequence models; a batch lasts as long as its longest row (at most `steps`).

    At step t of a stretch the model reads the frame before it (silence before a piece's first frame) and
    the position of frame t, and predicts frame t; the mask is 0 on the padding after a short stretch.
    With `pack`, short stretches share a row (packed_rows) and `segments` tells them apart (the stretch's
    number; 0 on padding), so a model that packs must keep them apart; without, a row holds one stretch.
    `frames` are uint8 levels (rollgen.music.roll); the previous frames come as their sounding cells then their
    struck cells (2 x pitches, rollgen.models.onsets.level_inputs), the frames to predict as their sounding
    cells, and `onsets` as their struck cells, all 0/1 floats; positions are int32 rows (see
    rollgen.music.meter); the key counts are the piece's before frame t (rollgen.models.key_summary, floats).
    Each row is transposed by its own shift, from (seed, epoch, batch index), onsets and counts with its notes.
    """
    silent = len(frames)  # an extra all-zero row: padding and the silence before a piece
    frames_tensor = tf.constant(np.concatenate([frames, np.zeros((1, frames.shape[1]), frames.dtype)]))
    positions_tensor = tf.constant(np.concatenate([positions, np.zeros((1, positions.shape[1]), positions.dtype)]))
    counts_tensor = tf.constant(prefix_counts(frames, offsets))  # its last row: the silent frame's zeros
    table, placed = stretch_rows(offsets, steps, seed, epoch, pack)
    layout = row_layout(table, placed, steps, silent)
    base_seed, epoch_tensor = tf.constant(seed, tf.int64), tf.constant(epoch, tf.int64)

    @tf.autograph.experimental.do_not_convert  # plain Python control flow: tracing it each epoch stays quick
    def cut(index, rows):
        longest = tf.reduce_max(rows["used"])  # as long as the batch's longest row
        targets, previous, segments = (rows[name][:, :longest] for name in ("target", "previous", "segment"))
        before, now = tf.gather(frames_tensor, previous), tf.gather(frames_tensor, targets)
        parts = tf.stack([sounding_tensor(before), struck_tensor(before), sounding_tensor(now), struck_tensor(now)], 2)
        counts = tf.gather(counts_tensor, targets)
        if transpose:
            shifts = batch_shifts(base_seed, epoch_tensor, index, tf.shape(targets)[0], transpose)
            parts = transpose_frames(parts, shifts)  # (batch, steps, 4, pitches): every part moved alike
            counts = transpose_counts(counts, shifts)
        where = tf.cast(tf.gather(positions_tensor, targets), tf.int32)
        previous_frames = tf.concat([parts[:, :, 0], parts[:, :, 1]], axis=-1)
        mask = tf.cast(segments > 0, tf.float32)
        return previous_frames, where, parts[:, :, 2], parts[:, :, 3], mask, segments, tf.cast(counts, tf.float32)

    batches = tf.data.Dataset.from_tensor_slices(layout).batch(batch_size).enumerate()
    return pipelined(batches, cut)
