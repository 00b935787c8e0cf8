"""Notes <-> piano rolls on the article's grid."""

import numpy as np

from rollgen.corpus import score_to_midi
from rollgen.midi import Piece, read_midi
from rollgen.roll import LOWEST_PITCH, NUM_PITCHES, piece_to_roll, roll_to_midi, roll_to_notes
from tests.conftest import build_midi


def test_known_notes_make_a_known_roll():
    # 480 ticks per quarter, 4 steps per quarter: one step is 120 ticks.
    data = build_midi(
        [
            [
                "0, Note_on_c, 0, 60, 90",
                "480, Note_off_c, 0, 60, 0",  # steps 0..3
                "240, Note_on_c, 0, 64, 90",
                "600, Note_off_c, 0, 64, 0",  # onset step 2, 360 ticks = 3 steps
                "700, Note_on_c, 0, 67, 90",
                "750, Note_off_c, 0, 67, 0",  # shorter than a step: vanishes, as in the article
                "0, Note_on_c, 0, 10, 90",
                "480, Note_off_c, 0, 10, 0",  # below MIDI 21: outside the roll
            ]
        ]
    )
    roll, dropped = piece_to_roll(read_midi(data), steps_per_quarter=4)
    expected = np.zeros((NUM_PITCHES, 5), dtype=bool)
    expected[60 - LOWEST_PITCH, 0:4] = True
    expected[64 - LOWEST_PITCH, 2:5] = True
    assert roll.shape == expected.shape
    assert (roll == expected).all()
    assert dropped == {"pitch outside 21..126": 1, "shorter than one step": 1}


def test_sparse_and_piled_up_notes_draw_their_cells():
    # 480 ticks per quarter, one step = 120 ticks. Sparse notes are drawn cell by cell; notes piled on one
    # another (more note cells than the roll has) by a running sum: both must draw what a loop draws.
    rng = np.random.default_rng(0)
    for count, pitch_range in ((300, 106), (1000, 3)):
        pitches = LOWEST_PITCH + rng.integers(0, pitch_range, count)
        starts = rng.integers(0, 60, count) * 120
        ends = starts + rng.integers(1, 20, count) * 120
        roll, _ = piece_to_roll(Piece(480, pitches.astype(np.int16), starts, ends), steps_per_quarter=4)
        expected = np.zeros((NUM_PITCHES, int(ends.max()) // 120), dtype=bool)
        for pitch, start, end in zip(pitches, starts, ends):
            expected[pitch - LOWEST_PITCH, start // 120 : end // 120] = True
        assert roll.shape == expected.shape and (roll == expected).all()


def test_roll_to_notes_merges_runs_of_sounding_steps():
    roll = np.zeros((NUM_PITCHES, 8), dtype=bool)
    roll[0, 1:4] = True
    roll[0, 5:8] = True
    roll[105, 0:8] = True
    notes = roll_to_notes(roll)
    assert notes.pitches.tolist() == [21, 21, 126]
    assert notes.starts.tolist() == [1, 5, 0]
    assert notes.lengths.tolist() == [3, 3, 8]


def test_chorale_roll_survives_a_midi_round_trip(chorale_files):
    roll, _ = piece_to_roll(read_midi(score_to_midi(chorale_files[0])))
    assert roll.shape[0] == NUM_PITCHES and roll.shape[1] > 100 and roll.any()
    again, _ = piece_to_roll(read_midi(roll_to_midi(roll, tempo_bpm=80)))
    assert (again == roll).all()
