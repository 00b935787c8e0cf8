"""Piano-roll pictures a person can read: pitch up, time right, every C named with its octave (C4 is middle C),
a line on every beat and a brighter one on every bar where the frames' bar positions put them, and the primer a
generated piece starts from shaded, with a line where the model takes over. The step a note is struck is drawn
brighter than the steps it is held, so a re-struck note shows as two."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rollgen import files
from rollgen.music import meter
from rollgen.music.roll import LOWEST_PITCH, onsets, sounding, strike_runs

BACKGROUND = (22, 24, 32)
C_LINE = (44, 48, 62)  # a faint line under every C, to find octaves
BEAT_LINE = (52, 56, 72)
BAR_LINE = (96, 102, 128)
NOTE = (250, 200, 90)  # a held step
NOTE_ONSET = (255, 244, 190)  # the step a note is struck
PRIMER_BACKGROUND = (24, 38, 56)  # the primer's steps: real music the model read, not music it made
PRIMER_C_LINE = (44, 60, 84)
PRIMER_NOTE = (140, 190, 240)
PRIMER_NOTE_ONSET = (215, 238, 255)
PRIMER_END = (90, 170, 255)  # the line where the model's own steps begin
LABEL = (170, 176, 196)
LABEL_MARGIN = 18  # pixels left of the roll for the pitch names (the bitmap font's "C8" is 12 wide)


def roll_picture(
    roll: np.ndarray,
    steps_per_quarter: int,
    positions: np.ndarray | None = None,
    primer_steps: int = 0,
    cell_width: int = 4,
    cell_height: int = 3,
) -> Image.Image:
    """An RGB picture of a roll (pitches, steps) of uint8 levels (rollgen.music.roll; a bool roll's runs are
    struck at their first step): one cell per pitch and step, highest pitch on top, onsets brighter.

    `positions` (steps, 4) are the frames' bar positions (rollgen.music.meter): beat and bar lines go where
    they say; without them, 4/4 from the first step. The first `primer_steps` steps are drawn as a primer.
    """
    pitches, steps = roll.shape
    if positions is None:
        positions = meter.default_positions(steps, steps_per_quarter)
    canvas = np.empty((pitches, max(steps, 1), 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    canvas[:, :primer_steps] = PRIMER_BACKGROUND
    c_rows = [row for row in range(pitches) if (LOWEST_PITCH + row) % 12 == 0]
    canvas[c_rows] = C_LINE
    canvas[np.ix_(c_rows, range(min(primer_steps, steps)))] = PRIMER_C_LINE
    roll = np.asarray(roll)
    levels = strike_runs(roll, time_axis=1) if roll.dtype == bool else roll
    in_primer = np.arange(steps) < primer_steps
    for cells, colour, primer_colour in (
        (sounding(levels), NOTE, PRIMER_NOTE),
        (onsets(levels), NOTE_ONSET, PRIMER_NOTE_ONSET),
    ):
        canvas[cells & ~in_primer] = colour
        canvas[cells & in_primer] = primer_colour
    canvas = canvas[::-1].repeat(cell_height, axis=0).repeat(cell_width, axis=1)
    blank_colours = np.array([BACKGROUND, C_LINE, PRIMER_BACKGROUND, PRIMER_C_LINE], dtype=np.uint8)
    positions = np.asarray(positions)
    for step in range(steps):
        if primer_steps and step == primer_steps:
            line = PRIMER_END
        elif positions[step, meter.STEP_IN_BAR] == 0:
            line = BAR_LINE
        elif positions[step, meter.STEP_IN_BEAT] == 0:
            line = BEAT_LINE
        else:
            continue
        column = canvas[:, step * cell_width]
        blank = (column[:, None, :] == blank_colours[None]).all(axis=2).any(axis=1)
        column[blank] = line
    picture = Image.new("RGB", (LABEL_MARGIN + canvas.shape[1], canvas.shape[0]), BACKGROUND)
    picture.paste(Image.fromarray(canvas, mode="RGB"), (LABEL_MARGIN, 0))
    draw_pitch_names(picture, c_rows, pitches, cell_height)
    return picture


def draw_pitch_names(picture: Image.Image, rows: list[int], pitches: int, cell_height: int) -> None:
    """Writes C1, C2, ... in the left margin beside the rows of the roll they name (PIL's bitmap font)."""
    font = ImageFont.load_default_imagefont()
    draw = ImageDraw.Draw(picture)
    for row in rows:
        pitch = LOWEST_PITCH + row
        name = f"C{pitch // 12 - 1}"  # MIDI 60 is C4
        middle = (pitches - 1 - row) * cell_height + cell_height // 2
        _, top, _, bottom = font.getbbox(name)
        draw.text((2, middle - (top + bottom) // 2), name, fill=LABEL, font=font)


def save_roll_picture(
    roll: np.ndarray,
    target: Path,
    steps_per_quarter: int,
    positions: np.ndarray | None = None,
    primer_steps: int = 0,
) -> Path:
    """Writes the roll's picture (see `roll_picture`) as PNG, atomically."""
    with files.atomic_path(target) as tmp:
        roll_picture(roll, steps_per_quarter, positions, primer_steps).save(tmp, format="PNG")
    return Path(target)
