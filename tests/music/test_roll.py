"""Notes <-> piano rolls: the grids (nearest step, what sounds at each step's start, the article's floor),
onsets (re-struck notes stay apart), merged notes (unisons, onsets the grid rounds together), round trips."""

import numpy as np
import pytest

from rollgen.music.corpus import score_to_midi
from rollgen.music.meter import Meter, frame_positions
from rollgen.music.midi import MidiError, Piece, read_midi
from rollgen.music.roll import (
    HELD,
    LOWEST_PITCH,
    MERGED_BY_GRID,
    MERGED_IN_FILE,
    NOT_SAMPLED,
    NUM_PITCHES,
    ONSET,
    OUT_OF_RANGE,
    TOO_SHORT,
    max_steps_for,
    onsets,
    piece_to_roll,
    roll_to_midi,
    roll_to_notes,
    sounding,
    ticks_to_steps,
)
from tests.conftest import build_midi

C4 = 60  # row 60 - LOWEST_PITCH of the roll


def piece_of(notes: list[tuple[int, int, int]], ticks_per_quarter: int = 480) -> Piece:
    """A piece of (pitch, onset tick, release tick) notes."""
    pitches, starts, ends = (np.asarray(column, dtype=np.int64) for column in zip(*notes))
    return Piece(ticks_per_quarter, pitches.astype(np.int16), starts, ends)


def runs(roll: np.ndarray, pitch: int) -> list[tuple[int, int]]:
    """(first step, steps) of each note of `pitch` that the roll reads back as."""
    notes = roll_to_notes(roll)
    mine = notes.pitches == pitch
    return list(zip(notes.starts[mine].tolist(), notes.lengths[mine].tolist()))


KNOWN = build_midi(
    [
        [
            # 480 ticks per quarter, 4 steps per quarter: one step is 120 ticks.
            "0, Note_on_c, 0, 60, 90",
            "480, Note_off_c, 0, 60, 0",  # steps 0..3
            "240, Note_on_c, 0, 64, 90",
            "600, Note_off_c, 0, 64, 0",  # onset step 2, 360 ticks = 3 steps
            "700, Note_on_c, 0, 67, 90",
            "750, Note_off_c, 0, 67, 0",  # 5.83 to 6.25 steps: shorter than a step
            "0, Note_on_c, 0, 10, 90",
            "480, Note_off_c, 0, 10, 0",  # below MIDI 21: outside the roll
        ]
    ]
)


def test_known_notes_on_the_nearest_grid():
    roll, dropped = piece_to_roll(read_midi(KNOWN), steps_per_quarter=4, grid="nearest")
    assert roll.shape == (NUM_PITCHES, 7)
    assert (runs(roll, 60), runs(roll, 64)) == ([(0, 4)], [(2, 3)])
    assert runs(roll, 67) == [(6, 1)]  # onset and release both round to step 6: it keeps one step from there
    assert dropped == {OUT_OF_RANGE: 1}


def test_known_notes_on_the_articles_floor_grid():
    roll, dropped = piece_to_roll(read_midi(KNOWN), steps_per_quarter=4, grid="floor")
    expected = np.zeros((NUM_PITCHES, 5), dtype=np.uint8)
    expected[60 - LOWEST_PITCH, 0:4] = [ONSET, HELD, HELD, HELD]
    expected[64 - LOWEST_PITCH, 2:5] = [ONSET, HELD, HELD]
    assert roll.dtype == np.uint8 and roll.shape == expected.shape and (roll == expected).all()
    assert dropped == {OUT_OF_RANGE: 1, TOO_SHORT: 1}  # the short note vanishes, as in the article


def test_a_time_half_way_between_two_steps_goes_to_the_later_one():
    # Integer arithmetic, half up; NumPy's and Python's round() would send 1.5 and 2.5 steps both to 2.
    ticks = [59, 60, 61, 180, 300]  # 0.49, 0.5, 0.51, 1.5, 2.5 steps at 480 ticks per quarter
    assert ticks_to_steps(ticks, 480, 4, grid="nearest").tolist() == [0, 1, 1, 2, 3]
    assert ticks_to_steps(ticks, 480, 4, grid="floor").tolist() == [0, 0, 0, 1, 2]
    # 1000 ticks per quarter in thirds: a step is 333.33 ticks.
    assert ticks_to_steps([166, 167, 500, 333, 667], 1000, 3, grid="nearest").tolist() == [0, 1, 2, 1, 2]


def test_eighth_triplets_land_on_steps_0_1_3():
    triplets = piece_of([(60, 0, 160), (64, 160, 320), (67, 320, 480)])  # 160 ticks = 1.33 steps each
    roll, _ = piece_to_roll(triplets, steps_per_quarter=4, grid="nearest")
    assert [runs(roll, pitch) for pitch in (60, 64, 67)] == [[(0, 1)], [(1, 2)], [(3, 1)]]  # no gap between
    roll, _ = piece_to_roll(triplets, steps_per_quarter=4, grid="floor")
    assert [runs(roll, pitch) for pitch in (60, 64, 67)] == [[(0, 1)], [(1, 1)], [(2, 1)]]  # step 3 silent
    roll, _ = piece_to_roll(triplets, steps_per_quarter=12, grid="nearest")
    assert [runs(roll, pitch) for pitch in (60, 64, 67)] == [[(0, 4)], [(4, 4)], [(8, 4)]]  # exact


def test_a_restruck_note_is_drawn_as_its_own_note():
    # A repeated quarter whose release is the next one's onset: one run of sounding cells, struck twice.
    restruck = piece_of([(C4, 0, 480), (C4, 480, 960)])
    roll, dropped = piece_to_roll(restruck, 4, grid="nearest")
    assert roll[C4 - LOWEST_PITCH].tolist() == [ONSET, HELD, HELD, HELD, ONSET, HELD, HELD, HELD] and not dropped
    assert runs(roll, C4) == [(0, 4), (4, 4)]
    # A key struck again while it sounds (a piano's pedal): the second strike ends the first note there.
    # and the second note sounds on to the latest release.
    pedalled = piece_of([(C4, 0, 960), (C4, 240, 480)])
    roll, dropped = piece_to_roll(pedalled, 4, grid="nearest")
    assert runs(roll, C4) == [(0, 2), (2, 6)] and not dropped
    assert sounding(roll[C4 - LOWEST_PITCH]).all()


def test_only_onsets_on_one_step_merge():
    # Two voices on one note (a unison, the same tick): one note, the other merged in the file, once.
    doubled = piece_of([(C4, 0, 960), (C4, 240, 480), (C4, 0, 960)])
    roll, dropped = piece_to_roll(doubled, 4, grid="nearest")
    assert runs(roll, C4) == [(0, 2), (2, 6)] and dropped == {MERGED_IN_FILE: 1}
    # A unison's longer voice gives its length.
    roll, dropped = piece_to_roll(piece_of([(C4, 0, 480), (C4, 0, 960)]), 4, grid="nearest")
    assert runs(roll, C4) == [(0, 8)] and dropped == {MERGED_IN_FILE: 1}
    # Repeated 32nds on a grid of 16ths: onsets at 0, 0.5, 1 and 1.5 steps, half up to 0, 1, 1, 2 (60 and 120
    # ticks both round to step 1): the third is merged by the grid.
    thirty_seconds = piece_of([(C4, 0, 60), (C4, 60, 120), (C4, 120, 180), (C4, 180, 240)])
    roll, dropped = piece_to_roll(thirty_seconds, 4, grid="nearest")
    assert runs(roll, C4) == [(0, 1), (1, 1), (2, 1)] and dropped == {MERGED_BY_GRID: 1}
    assert piece_to_roll(thirty_seconds, steps_per_quarter=8, grid="nearest")[1] == {}


def test_a_gap_the_rounding_would_close_is_kept_as_one_silent_step():
    # Detached eighths, 90% of their length (a performance): releases at 1.8 and 3.8 steps round onto the next
    # onset, so each note ends one step early instead and the re-strike stays visible.
    detached = piece_of([(C4, 0, 216), (C4, 240, 456), (C4, 480, 696)])
    roll, dropped = piece_to_roll(detached, 4, grid="nearest")
    assert runs(roll, C4) == [(0, 1), (2, 1), (4, 2)] and not dropped
    # Staccato 16ths of 0.2 quarters leave no room for a gap on a grid of 16ths: one run of cells, each note
    # struck on its own. The article's floor drops all three; 8 steps a quarter draws their gaps too.
    staccato = piece_of([(C4, 0, 96), (C4, 120, 216), (C4, 240, 336)])
    roll, dropped = piece_to_roll(staccato, 4, grid="nearest")
    assert runs(roll, C4) == [(0, 1), (1, 1), (2, 1)] and not dropped
    assert sounding(roll[C4 - LOWEST_PITCH]).all()
    assert piece_to_roll(staccato, 4, grid="floor")[1] == {TOO_SHORT: 3}
    roll, dropped = piece_to_roll(staccato, steps_per_quarter=8, grid="nearest")
    assert runs(roll, C4) == [(0, 1), (2, 1), (4, 2)] and not dropped


def test_the_sample_grid_holds_what_sounds_at_each_steps_start():
    # Quarter-note steps (480 ticks), a chorale bar's alto: a quarter, two eighths (a passing tone between
    # the beats), a dotted quarter tied past the beat, and a 16th that starts after a beat and ends before
    # the next one.
    alto = piece_of([(C4, 0, 480), (62, 480, 720), (64, 720, 960), (65, 960, 1680), (67, 1700, 1800)])
    roll, dropped = piece_to_roll(alto, steps_per_quarter=1, grid="sample")
    assert roll.shape == (NUM_PITCHES, 4)
    assert [runs(roll, pitch) for pitch in (C4, 62, 64, 65, 67)] == [[(0, 1)], [(1, 1)], [], [(2, 2)], []]
    assert dropped == {NOT_SAMPLED: 2}  # the passing tone at 1.5 and the 16th at 3.54: no beat hears them
    # floor drops both eighths (shorter than a step) and gives the dotted quarter one step, where sample
    # gives it the two beats it sounds on.
    floor_roll, _ = piece_to_roll(alto, steps_per_quarter=1, grid="floor")
    assert runs(floor_roll, 64) == [] and runs(floor_roll, 65) == [(2, 1)]
    assert ticks_to_steps(np.array([0, 1, 479, 480, 481]), 480, 1, "sample").tolist() == [0, 1, 1, 1, 2]


@pytest.mark.parametrize("grid", ["nearest", "sample", "floor"])
def test_every_note_is_drawn_or_dropped_once(grid):
    # Random notes at odd resolutions: the drawn notes are the notes the roll reads back, by pitch and onset
    # step; every other note has one reason.
    rng = np.random.default_rng(0)
    for ticks_per_quarter in (96, 480, 1000, 10080):
        for steps_per_quarter in (3, 4, 8):
            count = 400
            pitches = rng.integers(15, 40, count)  # a few below the roll, many of one pitch
            starts = rng.integers(0, 40 * ticks_per_quarter, count)
            ends = starts + rng.integers(1, 2 * ticks_per_quarter, count)
            piece = piece_of(list(zip(pitches, starts, ends)), ticks_per_quarter)
            roll, dropped = piece_to_roll(piece, steps_per_quarter, grid=grid)
            notes = roll_to_notes(roll)
            assert len(notes.pitches) + dropped.total() == count
            assert (onsets(roll) == (roll == ONSET)).all() and set(np.unique(roll)) <= {0, HELD, ONSET}
            struck_rows, struck_steps = np.nonzero(roll == ONSET)
            assert (notes.pitches.tolist(), notes.starts.tolist()) == (
                (struck_rows + LOWEST_PITCH).tolist(),
                struck_steps.tolist(),
            )
            assert dropped[OUT_OF_RANGE] == int((pitches < LOWEST_PITCH).sum())
            if grid == "sample":
                # A note sounds exactly at the step starts within [onset, release), in step units.
                in_range = pitches >= LOWEST_PITCH
                step_starts = np.arange(roll.shape[1]) * ticks_per_quarter  # in ticks x steps_per_quarter
                for pitch in np.unique(pitches[in_range]):
                    mine = in_range & (pitches == pitch)
                    begins, releases = starts[mine, None] * steps_per_quarter, ends[mine, None] * steps_per_quarter
                    sounds = ((begins <= step_starts) & (step_starts < releases)).any(axis=0)
                    assert (sounding(roll[pitch - LOWEST_PITCH]) == sounds).all()
            if grid == "nearest":
                assert TOO_SHORT not in dropped
                # Every note in range is struck at its rounded onset.
                struck = ticks_to_steps(starts, ticks_per_quarter, steps_per_quarter, "nearest")
                in_range = pitches >= LOWEST_PITCH
                assert (roll[pitches[in_range] - LOWEST_PITCH, struck[in_range]] == ONSET).all()


@pytest.mark.parametrize("grid", ["nearest", "sample", "floor"])
def test_sparse_and_piled_up_notes_draw_their_cells(grid):
    # 480 ticks per quarter, one step = 120 ticks. Sparse notes are drawn cell by cell; notes piled on one
    # another (more note cells than the roll has) by a running sum: both must draw what a loop draws.
    rng = np.random.default_rng(0)
    for count, pitch_range in ((300, 106), (1000, 3)):
        pitches = LOWEST_PITCH + rng.integers(0, pitch_range, count)
        starts = rng.integers(0, 60, count) * 120
        ends = starts + rng.integers(1, 20, count) * 120
        roll, _ = piece_to_roll(Piece(480, pitches.astype(np.int16), starts, ends), steps_per_quarter=4, grid=grid)
        expected = np.zeros((NUM_PITCHES, int(ends.max()) // 120), dtype=bool)
        for pitch, start, end in zip(pitches, starts, ends):
            expected[pitch - LOWEST_PITCH, start // 120 : end // 120] = True
        assert roll.shape == expected.shape and (sounding(roll) == expected).all()
        assert onsets(roll)[pitches - LOWEST_PITCH, starts // 120].all()


def test_roll_to_notes_merges_runs_of_sounding_steps():
    roll = np.zeros((NUM_PITCHES, 8), dtype=bool)
    roll[0, 1:4] = True
    roll[0, 5:8] = True
    roll[105, 0:8] = True
    notes = roll_to_notes(roll)
    assert notes.pitches.tolist() == [21, 21, 126]
    assert notes.starts.tolist() == [1, 5, 0]
    assert notes.lengths.tolist() == [3, 3, 8]


@pytest.mark.parametrize(
    ("grid", "steps_per_quarter"),
    [("nearest", 4), ("floor", 4), ("sample", 4), ("sample", 1), ("nearest", 3), ("nearest", 8)],
)
def test_chorale_roll_survives_a_midi_round_trip(chorale_files, grid, steps_per_quarter):
    roll, _ = piece_to_roll(read_midi(score_to_midi(chorale_files[0])), steps_per_quarter, grid=grid)
    assert roll.shape[0] == NUM_PITCHES and roll.shape[1] > 25 * steps_per_quarter and roll.any()
    midi = roll_to_midi(roll, steps_per_quarter=steps_per_quarter, tempo_bpm=80)
    again, _ = piece_to_roll(read_midi(midi), steps_per_quarter, grid=grid)
    assert again.shape == roll.shape and (again == roll).all()


@pytest.mark.parametrize("grid", ["nearest", "sample", "floor"])
def test_the_step_limit_holds_every_piece_of_the_quarter_limit(grid):
    # The latest notes a piece of 100 quarters can hold: one to its end, a short one right before it.
    for ticks_per_quarter in (96, 1000):
        last = 100 * ticks_per_quarter
        piece = piece_of([(C4, 0, last), (62, last - 1, last)], ticks_per_quarter)
        for steps_per_quarter in (3, 4, 8):
            roll, _ = piece_to_roll(
                piece, steps_per_quarter, grid=grid, max_steps=max_steps_for(100, steps_per_quarter)
            )
            assert roll.shape[1] <= max_steps_for(100, steps_per_quarter)
    with pytest.raises(MidiError, match=r"too long: 400 steps \(limit 399\)"):
        piece_to_roll(piece_of([(C4, 0, 48_000)]), 4, grid="nearest", max_steps=399)


def test_an_unknown_grid_is_refused():
    with pytest.raises(ValueError, match="images.grid must be one of"):
        piece_to_roll(piece_of([(C4, 0, 480)]), 4, grid="round")


@pytest.mark.parametrize("steps_per_quarter", [4, 12])
def test_a_roll_is_written_in_its_meter(chorale_files, steps_per_quarter):
    """The chorale's meter (a pickup of 1/4, then 4/4) goes into the MIDI with its notes, at the same steps."""
    piece = read_midi(score_to_midi(chorale_files[0]))
    roll, _ = piece_to_roll(piece, steps_per_quarter, grid="nearest")
    meter = Meter.from_piece(piece, steps_per_quarter)
    again = read_midi(roll_to_midi(roll, steps_per_quarter, tempo_bpm=80, meter=meter))
    assert Meter.from_piece(again, steps_per_quarter) == meter and meter.signatures[0].numerator == 1
    np.testing.assert_array_equal(
        frame_positions(Meter.from_piece(again, steps_per_quarter), roll.shape[1]),
        frame_positions(meter, roll.shape[1]),
    )
    assert (piece_to_roll(again, steps_per_quarter, grid="nearest")[0] == roll).all()
    with pytest.raises(ValueError, match="a meter of 4 steps a quarter for a roll of 8"):
        roll_to_midi(roll, 8, tempo_bpm=80, meter=Meter.from_piece(piece, 4))
