"""Each frame's place in its beat and bar (rollgen.music.meter), from MIDI time signatures and from scores' pickups."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollgen.music.corpus import score_to_midi
from rollgen.music.meter import (
    POSITION_COLUMNS,
    STEP_IN_BAR,
    STEPS_PER_BAR,
    Meter,
    commonest_bar,
    default_positions,
    frame_positions,
    meter_from_positions,
    next_position,
    positions_after,
    positions_from_rows,
    signature_of,
)
from rollgen.music.midi import read_midi
from tests.conftest import build_midi

QUARTER = 480  # ticks per quarter note of the built files: at 4 steps per quarter, 120 ticks a step


def positions_of(meta_events: list[str], steps: int, steps_per_quarter: int = 4) -> np.ndarray:
    """Positions of a one-track file with these meta events and one note over `steps` 16th-note steps."""
    notes = ["0, Note_on_c, 0, 60, 90", f"{steps * QUARTER // 4}, Note_off_c, 0, 60, 0"]
    piece = read_midi(build_midi([meta_events + notes]))
    return frame_positions(Meter.from_piece(piece, steps_per_quarter), steps)


def column(positions: np.ndarray, name: str) -> list[int]:
    return positions[:, POSITION_COLUMNS.index(name)].tolist()


def test_three_four_has_bars_of_12_steps_and_beats_of_4():
    positions = positions_of(["0, Time_signature, 3, 2, 24, 8"], steps=24)
    assert positions.dtype == np.int16 and positions.shape == (24, 4)
    assert column(positions, "steps_per_bar") == [12] * 24
    assert column(positions, "steps_per_beat") == [4] * 24
    assert column(positions, "step_in_bar") == list(range(12)) * 2
    assert column(positions, "step_in_beat") == [0, 1, 2, 3] * 6


def test_a_change_from_four_four_to_three_four_mid_piece():
    positions = positions_of(["0, Time_signature, 4, 2, 24, 8", f"{2 * 4 * QUARTER}, Time_signature, 3, 2, 24, 8"], 56)
    assert column(positions, "steps_per_bar") == [16] * 32 + [12] * 24
    assert column(positions, "step_in_bar") == list(range(16)) * 2 + list(range(12)) * 2


def test_six_eight_is_compound_two_beats_of_six_steps():
    positions = positions_of(["0, Time_signature, 6, 3, 36, 8"], steps=24)
    assert column(positions, "steps_per_bar") == [12] * 24
    assert column(positions, "steps_per_beat") == [6] * 24
    assert column(positions, "step_in_beat") == list(range(6)) * 4


def test_no_time_signature_is_four_four_from_a_bar_line():
    positions = positions_of([], steps=40)
    assert column(positions, "steps_per_bar") == [16] * 40 and column(positions, "steps_per_beat") == [4] * 40
    assert column(positions, "step_in_bar") == (list(range(16)) * 3)[:40]
    assert (positions == default_positions(40, 4)).all()
    # Before a file's first time signature, too: 4/4 until 3/4 comes in at bar 2.
    later = positions_of(["1920, Time_signature, 3, 2, 24, 8"], steps=28)
    assert column(later, "steps_per_bar") == [16] * 16 + [12] * 12


def test_a_corrupt_time_signature_is_skipped_and_counted():
    events = ["0, Time_signature, 3, 2, 24, 8", "960, Time_signature, 0, 2, 24, 8"]  # 0/4 two beats in
    piece = read_midi(build_midi([events + ["0, Note_on_c, 0, 60, 90", "2880, Note_off_c, 0, 60, 0"]]))
    assert piece.repaired == {"time signature with numerator 0 skipped": 1}
    positions = frame_positions(Meter.from_piece(piece, 4), 24)
    assert column(positions, "step_in_bar") == list(range(12)) * 2  # 3/4 goes on as if it were not there


def test_a_chorales_pickup_counts_as_the_end_of_a_bar(chorale_files):
    # bwv1.6 opens with a one-beat pickup (paddingLeft 3): exported as 1/4, then 4/4 from the next measure.
    piece = read_midi(score_to_midi(chorale_files[0]))
    assert piece.time_signatures[0][1:] == (1, 4)
    positions = frame_positions(Meter.from_piece(piece, steps_per_quarter=4), 40)
    assert column(positions, "step_in_bar")[:6] == [12, 13, 14, 15, 0, 1]  # the first full bar starts at step 4
    assert column(positions, "steps_per_bar") == [16] * 40
    assert column(positions, "step_in_beat")[:6] == [0, 1, 2, 3, 0, 1]


@pytest.mark.parametrize("chorale", range(6))
def test_bar_lines_fall_where_the_scores_measures_start(chorale_files, chorale):
    # Mid-piece pickups too: phrases split at fermatas, and pickups repeated by repeat expansion (bwv103.6).
    from music21 import converter, stream

    path = chorale_files[chorale]
    piece = read_midi(score_to_midi(path))
    positions = frame_positions(Meter.from_piece(piece, steps_per_quarter=4), 4 * int(piece.length_quarters))
    expanded = converter.parse(path, forceSource=True).expandRepeats()  # as music21's MIDI export does
    for measure in expanded.parts[0].getElementsByClass(stream.Measure):
        step = int(Fraction(measure.offset) * 4)
        if step < len(positions):
            assert positions[step, STEP_IN_BAR] == int(Fraction(measure.paddingLeft) * 4), (path.name, measure)
            assert positions[step, STEPS_PER_BAR] == int(Fraction(measure.barDuration.quarterLength) * 4)


def test_a_mid_piece_pickup_is_the_end_of_the_bar_that_follows():
    # 4/4, a 3-beat bar at a phrase end, a 1-beat pickup (1/4), then 4/4 again.
    positions = Meter.from_steps([(0, 4, 4), (28, 1, 4), (32, 4, 4)], 4)
    assert column(frame_positions(positions, 40), "step_in_bar") == [*range(16), *range(12), *range(12, 16), *range(8)]
    # A one-bar segment as long as the bar after it, or longer, is a bar of its own.
    two_bars = frame_positions(Meter.from_steps([(0, 3, 4), (12, 3, 4), (24, 2, 4)], 4), 32)
    assert column(two_bars, "step_in_bar") == [*range(12), *range(12), *range(8)]


def test_next_position_continues_the_positions_of_integer_meters():
    for positions in (
        positions_of(["0, Time_signature, 3, 2, 24, 8"], steps=50),
        positions_of(["0, Time_signature, 6, 3, 36, 8"], steps=50),
        positions_of(["0, Time_signature, 5, 2, 24, 8"], steps=50, steps_per_quarter=3),
        frame_positions(Meter.from_steps([(0, 1, 4), (4, 4, 4)], 4), 50),  # out of a pickup into its bar
        default_positions(50, steps_per_quarter=2),
    ):
        assert (next_position(positions[:-1]) == positions[1:]).all()
    changing = frame_positions(Meter.from_steps([(0, 4, 4), (32, 3, 4)], 4), 50)
    differs = (next_position(changing[:-1]) != changing[1:]).any(axis=1)
    assert np.flatnonzero(differs).tolist() == [31]  # only where the meter changes: 4/4 cannot know of it


def test_fractional_lengths_do_not_crash_and_stay_in_range():
    # 3/8 at 1 step per quarter: a bar is 1.5 steps, a beat half a step.
    positions = positions_of(["0, Time_signature, 3, 3, 24, 8"], steps=8, steps_per_quarter=1)
    assert column(positions, "steps_per_bar") == [2] * 8 and column(positions, "steps_per_beat") == [1] * 8
    assert column(positions, "step_in_bar") == [0, 1, 0, 0, 1, 0, 0, 1]  # phases 0, 1, 0.5, 0 (bar line at 3) ...
    assert column(positions, "step_in_beat") == [0] * 8
    following = next_position(positions)
    assert (following[:, STEP_IN_BAR] < following[:, STEPS_PER_BAR]).all()
    # A time signature between two frames (tick 60 = step 1/2): the first frame inside it is half a step in.
    off_grid = positions_of(["60, Time_signature, 3, 2, 24, 8"], steps=4, steps_per_quarter=1)
    assert column(off_grid, "step_in_bar") == [0, 0, 1, 2] and column(off_grid, "steps_per_bar") == [4, 3, 3, 3]


@settings(max_examples=200, deadline=None)
@given(
    steps_per_quarter=st.integers(1, 8),
    signatures=st.lists(
        st.tuples(
            st.fractions(min_value=0, max_value=200, max_denominator=480),
            st.integers(1, 15),
            st.sampled_from([1, 2, 4, 8, 16, 32, 64]),
        ),
        max_size=6,
    ),
)
def test_any_meter_gives_positions_in_range(steps_per_quarter, signatures):
    positions = frame_positions(Meter.from_steps(signatures, steps_per_quarter), 300)
    for rows in (positions, next_position(positions)):
        in_beat, per_beat, in_bar, per_bar = rows.T
        assert (per_beat >= 1).all() and (per_bar >= 1).all()
        assert ((0 <= in_beat) & (in_beat < per_beat) & (0 <= in_bar) & (in_bar < per_bar)).all()


def test_meters_csv_rows_rebuild_the_pieces_positions():
    events = ["0, Time_signature, 1, 2, 24, 8", "480, Time_signature, 4, 2, 24, 8", "4380, Time_signature, 6, 3, 36, 8"]
    piece = read_midi(build_midi([events + ["0, Note_on_c, 0, 60, 90", "9600, Note_off_c, 0, 60, 0"]]))
    meter = Meter.from_piece(piece, steps_per_quarter=4)
    assert meter.to_rows() == [("0", 1, 4), ("4", 4, 4), ("73/2", 6, 8)]  # tick 4380 = step 36.5
    assert (positions_from_rows(meter.to_rows(), 80, 4) == frame_positions(meter, 80)).all()
    assert Meter.from_rows([(Fraction(73, 2), 6, 8), ("4", 4, 4), (0, 1, 4)], 4) == meter  # any order, any type


def test_positions_after_are_next_position_frame_after_frame():
    start = frame_positions(Meter.from_steps([(0, 6, 8)], 4), 8)[-1]
    expected, position = [], start
    for _ in range(30):
        expected.append(position)
        position = next_position(position)
    np.testing.assert_array_equal(positions_after(start, 30), np.array(expected))


@pytest.mark.parametrize(
    ("beat", "bar", "steps_per_quarter", "signature"),
    [(4, 12, 4, (3, 4)), (4, 16, 4, (4, 4)), (8, 16, 4, (2, 2)), (6, 12, 4, (6, 8)), (2, 6, 4, (3, 8)),
     (6, 24, 4, (12, 8)), (12, 24, 4, (6, 4)), (3, 9, 3, (3, 4)), (6, 18, 4, (9, 8)), (4, 20, 4, (5, 4))],
)  # fmt: skip
def test_the_time_signature_of_a_beat_and_a_bar(beat, bar, steps_per_quarter, signature):
    assert signature_of(beat, bar, steps_per_quarter) == signature
    positions = frame_positions(Meter.from_steps([(0, *signature)], steps_per_quarter), bar)
    assert positions[0, 1] == beat and positions[0, 3] == bar  # what frame_positions counts for it


def test_no_time_signature_has_a_beat_that_is_no_note_value():
    assert signature_of(5, 10, 4) is None  # a beat of five 16ths
    assert signature_of(4, 24, 4) is None  # six quarter beats: 6/4's beat is a dotted half


@pytest.mark.parametrize("signature", [(3, 4), (4, 4), (6, 8), (2, 2), (3, 8), (12, 8), (5, 4), (7, 8), (9, 8)])
@pytest.mark.parametrize("steps_per_quarter", [1, 2, 4, 8])
@pytest.mark.parametrize("first", [0, 1, 5, 13])
def test_positions_give_back_a_meter_with_those_positions(signature, steps_per_quarter, first):
    """What written MIDI carries: an excerpt from any frame on, and generation going on after it, in the time
    signatures meter_from_positions reads from their positions (a pickup where the excerpt starts mid-bar)."""
    meter = Meter.from_steps([(0, *signature)], steps_per_quarter)
    excerpt = frame_positions(meter, 100)[first:]
    positions = np.concatenate([excerpt, positions_after(next_position(excerpt[-1]), 40)])
    written = meter_from_positions(positions, steps_per_quarter)
    again = frame_positions(written, len(positions))
    lengths = (meter.signatures[0].bar_steps(steps_per_quarter), meter.signatures[0].beat_steps(steps_per_quarter))
    if all(length.denominator == 1 for length in lengths):
        np.testing.assert_array_equal(again, positions)
        assert (written.signatures[-1].numerator, written.signatures[-1].denominator) == signature
    else:  # a bar or beat off the grid (3/8 at one step a quarter): bars of the rounded length, in range
        assert (again[-40:, STEPS_PER_BAR] == positions[-1, STEPS_PER_BAR]).all()


def test_a_meter_change_and_an_excerpt_from_mid_bar_come_back_as_signatures():
    positions = frame_positions(Meter.from_steps([(0, 4, 4), (32, 3, 4)], 4), 60)[5:]
    written = meter_from_positions(positions, 4)
    assert [(s.step, s.numerator, s.denominator) for s in written.signatures] == [
        (0, 11, 16), (11, 4, 4), (27, 3, 4),  # a pickup of the 11 steps left of the first bar
    ]  # fmt: skip
    np.testing.assert_array_equal(frame_positions(written, len(positions)), positions)


def test_the_commonest_bar_is_counted_in_bars_not_frames():
    waltz = frame_positions(Meter.from_steps([(0, 3, 4)], 4), 12 * 5)  # five bars of 3/4
    common = frame_positions(Meter.from_steps([(0, 4, 4)], 4), 16 * 4)  # four (longer) bars of 4/4: more frames
    assert commonest_bar(np.concatenate([waltz, common])) == (4, 12)
    assert commonest_bar(waltz[1:12]) is None  # no bar starts
