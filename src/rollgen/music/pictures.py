"""Piano-roll pictures a person can read: pitch up, time right, beat and bar lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from rollgen import files
from rollgen.music.roll import LOWEST_PITCH

BACKGROUND = (22, 24, 32)
C_LINE = (44, 48, 62)  # a faint line under every C, to find octaves
BEAT_LINE = (52, 56, 72)
BAR_LINE = (96, 102, 128)
NOTE = (250, 200, 90)


def roll_picture(
    roll: np.ndarray,
    steps_per_quarter: int = 4,
    beats_per_bar: int = 4,
    cell_width: int = 4,
    cell_height: int = 3,
) -> Image.Image:
    """An RGB picture of a bool roll (pitches, steps): one cell per pitch and step, highest pitch on top."""
    pitches, steps = roll.shape
    canvas = np.empty((pitches, max(steps, 1), 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    for row in range(pitches):
        if (LOWEST_PITCH + row) % 12 == 0:
            canvas[row] = C_LINE
    canvas[np.asarray(roll, dtype=bool)] = NOTE
    canvas = canvas[::-1].repeat(cell_height, axis=0).repeat(cell_width, axis=1)
    for step in range(0, steps, steps_per_quarter):
        is_bar = step % (steps_per_quarter * beats_per_bar) == 0
        column = canvas[:, step * cell_width]
        blank = (column == BACKGROUND).all(axis=1) | (column == C_LINE).all(axis=1)
        column[blank] = BAR_LINE if is_bar else BEAT_LINE
    return Image.fromarray(canvas, mode="RGB")


def save_roll_picture(roll: np.ndarray, target: Path, steps_per_quarter: int = 4) -> Path:
    """Writes the roll's picture as PNG, atomically."""
    with files.atomic_path(target) as tmp:
        roll_picture(roll, steps_per_quarter=steps_per_quarter).save(tmp, format="PNG")
    return Path(target)
