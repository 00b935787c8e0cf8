"""Piano rolls: a (pitch, step) grid of sounding notes, 106 pitches (MIDI 21..126) as the article."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from rollgen.midi import MidiError, Piece, write_midi

LOWEST_PITCH = 21
NUM_PITCHES = 106  # MIDI 21..126: the article's image height


@dataclass(frozen=True)
class RollNotes:
    """Notes read back from a roll; times in grid steps (`steps_per_quarter` steps per quarter note)."""

    pitches: np.ndarray  # MIDI note numbers
    starts: np.ndarray  # first step that sounds
    lengths: np.ndarray  # number of steps that sound

    def quarter_lengths(self, steps_per_quarter: int) -> tuple[list[Fraction], list[Fraction]]:
        """Onsets and durations in quarter notes."""
        return (
            [Fraction(int(step), steps_per_quarter) for step in self.starts],
            [Fraction(int(length), steps_per_quarter) for length in self.lengths],
        )


def piece_to_roll(piece: Piece, steps_per_quarter: int = 4, max_steps: int = 100_000) -> tuple[np.ndarray, Counter]:
    """The piece's roll, bool of shape (NUM_PITCHES, steps), and the notes left out by reason.

    Grid as the article's midi2image: onset step = floor(onset in quarters * steps_per_quarter) and
    length = floor(duration in quarters * steps_per_quarter), so a note shorter than one step vanishes.
    Row i is MIDI pitch LOWEST_PITCH + i.
    """
    dropped: Counter = Counter()
    tpq = piece.ticks_per_quarter
    starts = piece.starts * steps_per_quarter // tpq
    lengths = (piece.ends - piece.starts) * steps_per_quarter // tpq
    rows = piece.pitches.astype(np.int64) - LOWEST_PITCH
    in_range = (rows >= 0) & (rows < NUM_PITCHES)
    if (~in_range).sum():
        dropped[f"pitch outside {LOWEST_PITCH}..{LOWEST_PITCH + NUM_PITCHES - 1}"] += int((~in_range).sum())
    audible = lengths > 0
    if (in_range & ~audible).sum():
        dropped["shorter than one step"] += int((in_range & ~audible).sum())
    keep = in_range & audible
    starts, lengths, rows = starts[keep], lengths[keep], rows[keep]
    steps = int((starts + lengths).max()) if len(starts) else 0
    if steps > max_steps:
        raise MidiError(f"too long: {steps} steps (limit {max_steps})")
    roll = np.zeros((NUM_PITCHES, steps), dtype=bool)
    if int(lengths.sum()) <= roll.size:
        # Every sounding cell's index in the flat roll, all notes at once: each note's first cell, repeated
        # over its length, plus 0, 1, 2, ... within the note (no more indices than the roll has cells).
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        roll.reshape(-1)[np.repeat(rows * steps + starts, lengths) + within] = True
        return roll, dropped
    # Notes piled on one another (more note cells than the roll has): count note starts minus note ends per
    # cell, then a running sum along each row: memory in proportion to the roll, not to the notes.
    width = steps + 1
    cells = NUM_PITCHES * width
    change = np.bincount(rows * width + starts, minlength=cells)
    change -= np.bincount(rows * width + starts + lengths, minlength=cells)
    return np.cumsum(change.reshape(NUM_PITCHES, width), axis=1)[:, :steps] > 0, dropped


def roll_to_notes(roll: np.ndarray) -> RollNotes:
    """The notes of a bool roll (NUM_PITCHES, steps): each run of sounding steps of one pitch is one note,
    as the article's image2midi merges consecutive white pixels."""
    padded = np.pad(np.asarray(roll, dtype=np.int8), ((0, 0), (1, 1)))
    change = np.diff(padded, axis=1)
    on_rows, on_steps = np.nonzero(change == 1)
    _, off_steps = np.nonzero(change == -1)  # same row-major order, so the i-th off closes the i-th on
    return RollNotes(
        pitches=(on_rows + LOWEST_PITCH).astype(np.int16),
        starts=on_steps.astype(np.int64),
        lengths=(off_steps - on_steps).astype(np.int64),
    )


def roll_to_midi(roll: np.ndarray, steps_per_quarter: int = 4, tempo_bpm: float = 120.0) -> bytes:
    """MIDI bytes (music21, piano) for a bool roll (NUM_PITCHES, steps)."""
    notes = roll_to_notes(roll)
    starts, durations = notes.quarter_lengths(steps_per_quarter)
    return write_midi(notes.pitches.tolist(), starts, durations, tempo_bpm=tempo_bpm)
