"""Training batches cut from the archived frames: windows for the window models, stretches for the sequence
models, each epoch's order from (seed, epoch) alone."""

import numpy as np
import pytest
import tensorflow as tf

from rollgen.models import batches
from rollgen.music.roll import ONSET, onsets, sounding
from tests.archives import random_pieces, sequences, with_restrikes


def test_windows_never_cross_from_one_piece_into_the_next():
    offsets = np.array([0, 20, 25, 45])  # the middle piece is shorter than a window and its target
    starts = batches.window_starts(offsets, context=9, gap=0)
    assert starts.tolist() == [*range(0, 11), *range(25, 36)]
    assert batches.window_starts(offsets, context=9, gap=1).tolist() == [*range(0, 10), *range(25, 35)]


def test_padding_puts_silence_before_every_piece_and_keeps_its_frames():
    data = sequences(random_pieces(3, [4, 1, 6], seed=1))
    padded, offsets = batches.padded_sequences(data.frames, data.offsets, before=3)
    assert offsets.tolist() == [0, 7, 11, 20]
    for number in range(3):
        start = offsets[number]
        assert not padded[start : start + 3].any()
        np.testing.assert_array_equal(padded[start + 3 : offsets[number + 1]], data.sequence(number))


def test_window_batches_are_the_windows_and_their_next_frames():
    """Window models read the pictures without onsets: levels, struck or held, come as 0/1."""
    data = sequences(with_restrikes(random_pieces(3, [30, 12, 25], seed=2)))
    starts = batches.window_starts(data.offsets, 9, 1)
    x, y = zip(*batches.window_batches(data.brightness(), starts, 9, 1, batch_size=7))
    x, y = np.concatenate([np.asarray(part) for part in x]), np.concatenate([np.asarray(part) for part in y])
    assert len(x) == len(starts) == (30 - 10) + (12 - 10) + (25 - 10)
    for row, start in enumerate(starts):
        np.testing.assert_array_equal(x[row], sounding(data.frames[start : start + 9]))
        np.testing.assert_array_equal(y[row], sounding(data.frames[start + 10]))  # gap 1: the frame after next


def test_article_archives_keep_their_grays_for_the_window_models(tmp_path):
    """An archive without onsets (article mode's LANCZOS pictures) is read as levels by the sequence models and
    as its own pixels by the window models, so article mode trains on exactly the article's values."""
    from rollgen.data.archive import read_sequences
    from rollgen.music.roll import HELD, ONSET

    grays = np.array([[0, 40], [200, 140], [255, 0], [90, 255]], np.uint8)
    path = tmp_path / "train.npz"
    np.savez(path, frames=grays, frame_offsets=np.array([0, 4]), positions=np.zeros((4, 4), np.int16),
             pieces=np.array(["a"]), context=np.int64(9), target_gap=np.int64(1), onsets=np.bool_(False))  # fmt: skip
    data = read_sequences(path)
    np.testing.assert_array_equal(data.brightness(), grays)
    np.testing.assert_array_equal(data.frames, [[0, 0], [ONSET, ONSET], [HELD, 0], [0, ONSET]])
    x, y = next(iter(batches.window_batches(data.brightness(), np.array([0]), 2, 1, batch_size=1)))
    np.testing.assert_allclose(np.asarray(x)[0], grays[:2] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(y)[0], grays[3] / 255.0, rtol=1e-6)


def test_a_seed_shuffles_windows_per_epoch_and_the_same_epoch_again_alike():
    data = sequences(random_pieces(2, 40, seed=3))
    starts = batches.window_starts(data.offsets, 9, 0)

    def targets(epoch):
        batched = batches.window_batches(data.frames, starts, 9, 0, 8, seed=5, first_epoch=epoch)
        return np.concatenate([np.asarray(y) for _, y in batched])

    first, again, second = targets(0), targets(0), targets(1)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)
    ordered = np.sort(first.reshape(len(first), -1), axis=0)
    np.testing.assert_array_equal(ordered, np.sort(second.reshape(len(second), -1), axis=0))  # the same windows


def test_transposition_moves_notes_and_drops_those_pushed_off_the_roll():
    frames = np.zeros((2, 3, 106), np.float32)
    frames[:, :, 0] = frames[:, :, 50] = 1
    frames[:, 2, 105] = 1
    shifted = np.asarray(batches.transpose_frames(tf.constant(frames), tf.constant([2, -1])))
    assert shifted[0, 0].nonzero()[0].tolist() == [2, 52] and shifted[0, 2].nonzero()[0].tolist() == [2, 52]
    assert shifted[1, 0].nonzero()[0].tolist() == [49] and shifted[1, 2].nonzero()[0].tolist() == [49, 104]


LENGTHS = [1, 5, 16, 17, 40, 100]  # shorter than, exactly, just over and many times a stretch of 16


def test_stretches_cover_every_frame_exactly_once_per_epoch():
    offsets = np.cumsum([0] + LENGTHS)
    for epoch in range(4):
        table = batches.stretches(offsets, steps=16, seed=1, epoch=epoch)
        covered = np.zeros(offsets[-1], int)
        for start, length, sequence_start in table:
            assert 1 <= length <= 16
            sequence = np.searchsorted(offsets, sequence_start)
            assert offsets[sequence] == sequence_start and start + length <= offsets[sequence + 1]  # one piece
            covered[start : start + length] += 1
        assert (covered == 1).all()
        short = {int(start) for start, length, first in table if first == start and length == LENGTHS[0]}
        assert short == {0}  # a piece no longer than a stretch is one stretch from its first frame


def test_stretches_differ_between_epochs_and_repeat_for_the_same_seed_and_epoch():
    offsets = np.cumsum([0] + LENGTHS)
    one = batches.stretches(offsets, 16, seed=1, epoch=0)
    np.testing.assert_array_equal(one, batches.stretches(offsets, 16, seed=1, epoch=0))
    other_epoch, other_seed = batches.stretches(offsets, 16, 1, 1), batches.stretches(offsets, 16, 2, 0)
    cuts = lambda table: {int(start) for start, _, _ in table}  # noqa: E731
    assert cuts(one) != cuts(other_epoch) and cuts(one) != cuts(other_seed)  # the cuts move, not only the order


def stretches_in_batches(made, table: np.ndarray, placed: np.ndarray):
    """Yields, per stretch of `table` in order, its row of its batch: (previous, positions, frames, onsets, mask,
    segments, key counts) of that row, the stretch's first column in it, and the batch's steps."""
    batch_rows = [[np.asarray(part) for part in batch] for batch in made]
    sizes = np.cumsum([0] + [len(batch[0]) for batch in batch_rows])
    for row, column in placed:
        batch = int(np.searchsorted(sizes, row, side="right") - 1)
        yield [part[row - sizes[batch]] for part in batch_rows[batch]], int(column), batch_rows[batch][0].shape[1]


@pytest.mark.parametrize("pack", [False, True])
@pytest.mark.parametrize("transpose", [0, 2])
def test_stretch_batches_give_the_frame_before_each_step_and_mask_the_padding(transpose, pack):
    """The frame before comes as its sounding then its struck cells; the frame to predict as its sounding cells
    and, apart, its struck ones; the key counts are the piece's pitch classes before the frame, from its
    first frame however far before the stretch; transposed, all of them move together."""
    data = sequences(with_restrikes(random_pieces(5, [5, 20, 37, 3, 11], seed=4)))
    assert (data.frames == ONSET).sum() > (sounding(data.frames) & ~sounding(data.previous_frames())).sum()
    table, placed = batches.stretch_rows(data.offsets, 8, seed=3, epoch=2, pack=pack)
    made = list(batches.stretch_batches(data.frames, data.positions, data.offsets, 8, 4, seed=3, epoch=2,
                                        transpose=transpose, pack=pack))  # fmt: skip
    assert sum(len(batch[0]) for batch in made) == batches.row_count(placed)  # every row, once
    shifts = set()
    for number, (row, column, steps) in enumerate(stretches_in_batches(made, table, placed)):
        previous, positions, frames, struck, mask, segments, counts = row
        start, length, sequence_start = table[number]
        assert previous.shape == (steps, 212) and frames.shape == struck.shape == (steps, 106)
        assert positions.shape == (steps, 4)
        mine = slice(column, column + length)
        assert segments[mine].tolist() == [number + 1] * length and mask[mine].tolist() == [1.0] * length
        np.testing.assert_array_equal(positions[mine], data.positions[start : start + length])
        first_before = data.frames[start - 1] if start > sequence_start else np.zeros(106)  # silence at a start
        before = np.concatenate([[first_before], data.frames[start : start + length - 1]])
        now = data.frames[start : start + length]
        expected = np.concatenate([sounding(before), onsets(before), sounding(now), onsets(now)]).astype(np.float32)
        got = np.concatenate([previous[mine, :106], previous[mine, 106:], frames[mine], struck[mine]])
        # Transposed, the frames and the frames before them move by one shift (the pieces' notes lie far
        # from the edges, so no note is lost).
        matching = [shift for shift in range(-transpose, transpose + 1) if np.array_equal(got, moved(expected, shift))]
        assert matching, (start, length)
        shifts.add(matching[0])
        classes = (np.arange(106) + 21 + matching[0]) % 12  # each row's pitch class after the shift
        for step in range(length):
            cells = sounding(data.frames[sequence_start : start + step]).sum(axis=0)
            np.testing.assert_array_equal(counts[column + step], np.bincount(classes, cells, minlength=12))
        unused = segments == 0
        assert not frames[unused].any() and not previous[unused].any() and not mask[unused].any()
        assert not struck[unused].any() and not counts[unused].any()
    assert len(shifts) > 1 if transpose else shifts == {0}
    if not pack:
        assert placed[:, 1].tolist() == [0] * len(table)  # a row per stretch


def test_packing_fills_rows_with_short_stretches_and_never_overlaps_them():
    offsets = np.cumsum([0] + LENGTHS * 3)
    table, placed = batches.stretch_rows(offsets, 16, seed=5, epoch=1, pack=True)
    np.testing.assert_array_equal(table, batches.stretches(offsets, 16, seed=5, epoch=1))  # the same stretches
    used = np.zeros((batches.row_count(placed), 16), int)
    for (row, column), length in zip(placed, table[:, 1]):
        used[row, column : column + length] += 1
    assert used.max() == 1  # no step holds two stretches
    assert (used.sum(axis=1) > 0).all() and used.sum() == sum(LENGTHS) * 3
    assert len(used) < len(table)  # short stretches shared rows
    first_rows = [placed[table_row, 0] for table_row in range(len(table))]
    assert [row for number, row in enumerate(first_rows) if row not in first_rows[:number]] == sorted(set(first_rows))
    # A row opens for a stretch only when no open row has room for it (first fit).
    for number, ((row, column), length) in enumerate(zip(placed, table[:, 1])):
        if column == 0:
            before = np.zeros(len(used), int)
            for (other_row, _), other_length in zip(placed[:number], table[:number, 1]):
                before[other_row] += other_length
            assert not ((before[:row] > 0) & (before[:row] + length <= 16)).any()


def moved(frames: np.ndarray, shift: int) -> np.ndarray:
    """Frames (steps, pitches) moved up by `shift` semitones."""
    return np.asarray(batches.transpose_frames(tf.constant(frames[None], tf.float32), tf.constant([shift])))[0]
