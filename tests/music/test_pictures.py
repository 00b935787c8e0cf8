"""Piano-roll pictures a person can read: pitch names on the left, bar lines where the meter puts them, and the
primer of a generated piece shaded with a line where the model's own steps begin."""

import numpy as np

from rollgen.music import pictures
from rollgen.music.meter import Meter, frame_positions
from rollgen.music.roll import HELD, LOWEST_PITCH, NUM_PITCHES, ONSET

CELL_WIDTH, CELL_HEIGHT = 4, 3  # roll_picture's defaults


def pixel_row(pitch: int) -> int:
    """The picture's middle pixel row of a pitch (highest pitch on top)."""
    return (NUM_PITCHES - 1 - (pitch - LOWEST_PITCH)) * CELL_HEIGHT + CELL_HEIGHT // 2


def column_colour(picture: np.ndarray, step: int, pitch: int = 50) -> tuple:
    """The colour of the first pixel column of `step` at a pitch with no note (D3, no C)."""
    return tuple(picture[pixel_row(pitch), pictures.LABEL_MARGIN + step * CELL_WIDTH])


def test_every_c_is_named_in_the_margin_and_nothing_else():
    picture = np.asarray(pictures.roll_picture(np.zeros((NUM_PITCHES, 8), dtype=bool), 4))
    assert picture.shape == (NUM_PITCHES * CELL_HEIGHT, pictures.LABEL_MARGIN + 8 * CELL_WIDTH, 3)
    margin = picture[:, : pictures.LABEL_MARGIN]
    written = (margin != pictures.BACKGROUND).any(axis=(1, 2))
    for pitch in range(24, 127, 12):  # C1 .. C9: text over the row's middle
        assert written[pixel_row(pitch)], pitch
    for pitch in (30, 66, 78, 102):  # F#s, half-way between two Cs: no text there
        assert not written[pixel_row(pitch)], pitch
    # The name says the octave: C4 and C5 are different text.
    c4, c5 = (margin[pixel_row(pitch) - 4 : pixel_row(pitch) + 5] for pitch in (60, 72))
    assert not np.array_equal(c4, c5)


def test_bar_and_beat_lines_go_where_the_positions_put_them():
    roll = np.zeros((NUM_PITCHES, 24), dtype=bool)
    waltz = np.asarray(pictures.roll_picture(roll, 4, positions=frame_positions(Meter.from_steps([(0, 3, 4)], 4), 24)))
    common = np.asarray(pictures.roll_picture(roll, 4))  # no positions: 4/4
    assert [column_colour(waltz, step) for step in (0, 4, 12, 16)] == [
        pictures.BAR_LINE, pictures.BEAT_LINE, pictures.BAR_LINE, pictures.BEAT_LINE,
    ]  # fmt: skip
    assert [column_colour(common, step) for step in (0, 4, 12, 16)] == [
        pictures.BAR_LINE, pictures.BEAT_LINE, pictures.BEAT_LINE, pictures.BAR_LINE,
    ]  # fmt: skip
    assert column_colour(waltz, 2) == pictures.BACKGROUND  # between beats: no line


def test_the_primer_is_shaded_and_a_line_marks_where_the_model_takes_over():
    roll = np.zeros((NUM_PITCHES, 16), dtype=bool)
    roll[60 - LOWEST_PITCH, :] = True  # one C4 through primer and generated steps
    picture = np.asarray(pictures.roll_picture(roll, 4, primer_steps=6))
    note_row = pixel_row(60)
    assert tuple(picture[note_row, pictures.LABEL_MARGIN + 2 * CELL_WIDTH + 1]) == pictures.PRIMER_NOTE
    assert tuple(picture[note_row, pictures.LABEL_MARGIN + 10 * CELL_WIDTH + 1]) == pictures.NOTE
    assert column_colour(picture, 2) == pictures.PRIMER_BACKGROUND
    assert column_colour(picture, 10) == pictures.BACKGROUND
    assert column_colour(picture, 6) == pictures.PRIMER_END  # not a beat line: the primer's end
    plain = np.asarray(pictures.roll_picture(roll, 4))
    assert column_colour(plain, 2) == pictures.BACKGROUND and column_colour(plain, 6) == pictures.BACKGROUND


def test_the_step_a_note_is_struck_is_brighter_than_the_steps_it_is_held():
    levels = np.zeros((NUM_PITCHES, 8), dtype=np.uint8)
    levels[60 - LOWEST_PITCH] = [ONSET, HELD, HELD, HELD, ONSET, HELD, HELD, HELD]  # a C4 struck twice
    picture = np.asarray(pictures.roll_picture(levels, 4, primer_steps=2))

    def cell(step: int) -> tuple:
        return tuple(picture[pixel_row(60), pictures.LABEL_MARGIN + step * CELL_WIDTH + 1])

    assert [cell(step) for step in (0, 1, 4, 5)] == [
        pictures.PRIMER_NOTE_ONSET, pictures.PRIMER_NOTE, pictures.NOTE_ONSET, pictures.NOTE,
    ]  # fmt: skip
    # A bool roll has no onsets: each run is struck at its first step, as it reads back as notes.
    runs = np.asarray(pictures.roll_picture(levels > 0, 4))
    assert tuple(runs[pixel_row(60), pictures.LABEL_MARGIN + 4 * CELL_WIDTH + 1]) == pictures.NOTE
    assert tuple(runs[pixel_row(60), pictures.LABEL_MARGIN + 1]) == pictures.NOTE_ONSET
