"""Piano rolls: a (pitch, step) grid of notes struck and held, 106 pitches (MIDI 21..126) as the article.

The grid. A step is 1/`steps_per_quarter` of a quarter note; notes come in ticks (`Piece.ticks_per_quarter`
a quarter) and are put on steps with integer arithmetic only, so no time is ever a float. Two grids
(`grid=`, params.yaml's `images.grid`):

- `nearest` (the default): a note's onset and its release each go to the nearest step, a time exactly
  half-way to the later one (half up): step = floor(ticks * steps_per_quarter / ticks_per_quarter + 1/2),
  computed as (2 * ticks * steps_per_quarter + ticks_per_quarter) // (2 * ticks_per_quarter). A note that
  sounds in the file but whose onset and release round to one step keeps one step, from its rounded onset:
  a staccato 16th of 0.2 quarters, a 32nd, a grace note written with a length all draw a cell. Only a
  note of zero length in the file draws nothing (rollgen.music.midi drops it on reading). One more rule keeps
  the file's gaps: where the file has a gap between a note and the next onset of its pitch and the rounded
  release reaches that onset, the note ends one step before it instead, as long as it keeps one step
  (detached repeated eighths, released at 90% of their length, keep a silent step between them as `floor`
  draws them).
- `sample`: a step holds the notes sounding at its start, as the published quarter-note sets (JSB Chorales,
  Boulanger-Lewandowski et al. 2012) sample their rolls: a note from onset a to release b (ticks) sounds at
  steps ceil(a) .. ceil(b) - 1 in step units. An eighth passing tone between two beats draws nothing at
  quarter notes (counted `too_short`: it sounds at no step's start); the chord on each beat is whole.
- `floor`: the article's midi2image arithmetic: onset step = floor(onset * steps_per_quarter), length =
  floor(duration * steps_per_quarter) (the duration's, not the release's: a note from 0.9 to 2.1 steps
  lasts 1 step, from step 0), so a note shorter than one step vanishes. `images.mode: article` requires it.

Triplets do not fit 4 steps per quarter. Eighth triplets, at 0, 1.33 and 2.67 steps, start at steps 0, 1
(1.33 -> 1) and 3 (2.67 -> 3) under `nearest` and last 1, 2 and 1 steps, as their releases round too, so
no gap opens; under `floor` they start at 0, 1, 2 and last 1 step each, with a silent step 3 after them.
`steps_per_quarter: 12` (or 3, 6) draws them exactly.

A roll keeps onsets: a cell is 0 (silent), HELD (sounds, held from the step before) or ONSET (the step a
note is struck), uint8. `sounding` reads what sounds (anything bright, as the article's image2midi), and
that is the whole article picture (`images.mode: article` draws `sounding(roll) * 255`). `roll_to_notes`
reads a note from each ONSET cell through the HELD cells after it, so a note ends where its pitch falls
silent or is struck again: a re-struck note (a repeated quarter whose release is the next one's onset, a
piano key struck again while it sounds) stays two notes, the first ending where the second is struck.
`piece_to_roll` counts every note once. Walk the in-range notes of each pitch by onset in ticks (ties: the
longer first): a note whose grid onset is the onset of the note before it is *merged* (it adds its cells,
no onset); any other note is *drawn*, its onset cell ONSET, its other cells HELD unless another note is
struck there. So the drawn notes are exactly the notes `roll_to_notes` reads back, by pitch and onset
step. A merged note is `MERGED_IN_FILE` when it starts at the same tick as the note before it: a unison
(two voices on one note), which no roll shows at any resolution; else `MERGED_BY_GRID`: two onsets the
grid rounds to one step (repeated 32nd notes on a grid of 16ths). What sounds is the same as without
onsets: every note's cells, merged or drawn.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from rollgen.music.midi import MidiError, Piece, write_midi

if TYPE_CHECKING:  # only the type: writing a roll needs no meter code
    from rollgen.music.meter import Meter

LOWEST_PITCH = 21
NUM_PITCHES = 106  # MIDI 21..126: the article's image height
GRIDS = ("nearest", "sample", "floor")
# Why a note read from the file is not drawn as a note of its own (Piece.dropped has the reasons of reading)
PITCH_RANGE = f"{LOWEST_PITCH}..{LOWEST_PITCH + NUM_PITCHES - 1}"
OUT_OF_RANGE = f"pitch outside {PITCH_RANGE}"
TOO_SHORT = "shorter than one step"  # grid: floor only
NOT_SAMPLED = "sounds at no step's start"  # grid: sample only
MERGED_IN_FILE = "merged: a unison in the file"  # struck at the same tick as another note of its pitch
MERGED_BY_GRID = "merged: struck on another's step by the grid"  # a later tick, rounded onto the same step
# Cell levels of a roll that keeps onsets, as its images and archives store them (uint8). Anything brighter than
# half white sounds, as the article's image2midi reads a picture; the brightest level marks the step a note is
# struck, so a re-struck note stays two notes. A roll without onsets (bool, or 0/255 as in article mode) has
# every run of sounding cells start one note (`strike_runs`).
HELD = 170
ONSET = 255
SOUNDS_ABOVE = 255 / 2  # a cell brighter than half white sounds
STRIKES_ABOVE = (HELD + ONSET) / 2  # and one nearer ONSET than HELD is struck


def sounding(levels: np.ndarray) -> np.ndarray:
    """Which cells sound (bool, same shape) in uint8 levels (0, HELD, ONSET; 0/255 pictures too): those brighter
    than half white, as the article's image2midi decided (its resized images hold grays). A bool roll is what
    sounds already."""
    levels = np.asarray(levels)
    return levels.copy() if levels.dtype == bool else levels > SOUNDS_ABOVE


def onsets(levels: np.ndarray) -> np.ndarray:
    """Which cells strike a note (bool, same shape) in uint8 levels: those at ONSET, not HELD."""
    return np.asarray(levels) > STRIKES_ABOVE


def strike_runs(sounds: np.ndarray, time_axis: int) -> np.ndarray:
    """uint8 levels from a roll without onsets (bool, or anything `sounding` reads): each run of sounding cells
    along `time_axis` struck at its first cell (ONSET) and held after it (HELD), as image2midi reads runs."""
    sounds = sounding(sounds)
    before = np.zeros_like(sounds)
    moved = np.moveaxis(before, time_axis, 0)
    moved[1:] = np.moveaxis(sounds, time_axis, 0)[:-1]
    return np.where(sounds, np.where(before, HELD, ONSET), 0).astype(np.uint8)


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


def check_grid(grid: str) -> None:
    """Raises ValueError naming the param unless `grid` is one of GRIDS."""
    if grid not in GRIDS:
        raise ValueError(f"images.grid must be one of {GRIDS}, not '{grid}'")


def ticks_to_steps(ticks: np.ndarray, ticks_per_quarter: int, steps_per_quarter: int, grid: str) -> np.ndarray:
    """Grid steps (int64) of times in ticks: the nearest step, ties half up; the first step starting at or
    after them (sample); or the step they fall in (floor)."""
    check_grid(grid)
    ticks = np.asarray(ticks, dtype=np.int64)
    if grid == "nearest":
        return (2 * ticks * steps_per_quarter + ticks_per_quarter) // (2 * ticks_per_quarter)
    if grid == "sample":
        return -(-ticks * steps_per_quarter // ticks_per_quarter)
    return ticks * steps_per_quarter // ticks_per_quarter


def max_steps_for(max_quarters: float, steps_per_quarter: int) -> int:
    """The most steps a piece of at most `max_quarters` quarter notes takes on either grid: its last
    release, rounded up, and one more for a note that keeps one step from an onset rounded to that end."""
    return math.ceil(max_quarters * steps_per_quarter) + 1


def _keep_gaps(
    rows: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    file_starts: np.ndarray,
    file_ends: np.ndarray,
    ticks_per_quarter: int,
    steps_per_quarter: int,
) -> np.ndarray:
    """Grid ends (`ends`, rounded) moved back to one step before the next onset of the note's pitch where
    the file has a gap before that onset and rounding closed it, as far as the note keeps one step."""
    span = int(file_ends.max()) + 2 if len(file_ends) else 1
    onsets = np.sort(rows * span + file_starts)  # every onset, pitch by pitch
    following = np.searchsorted(onsets, rows * span + file_ends, side="right")  # first onset after the release
    has_next = following < len(onsets)
    next_onset = onsets[np.minimum(following, len(onsets) - 1)]
    has_next &= next_onset // span == rows
    next_step = ticks_to_steps(next_onset - rows * span, ticks_per_quarter, steps_per_quarter, "nearest")
    closed = has_next & (ends >= next_step)
    return np.where(closed, np.maximum(starts + 1, next_step - 1), ends)


def _repeats_onset(rows: np.ndarray, starts: np.ndarray, order: np.ndarray) -> np.ndarray:
    """For notes taken in `order` (by row, then onset), whether each has the same row and start as the note
    before it in that order."""
    repeats = np.zeros(len(order), dtype=bool)
    repeats[1:] = (rows[order][1:] == rows[order][:-1]) & (starts[order][1:] == starts[order][:-1])
    out = np.empty_like(repeats)
    out[order] = repeats
    return out


def piece_to_roll(
    piece: Piece, steps_per_quarter: int, *, grid: str, max_steps: int = 100_000
) -> tuple[np.ndarray, Counter]:
    """The piece's roll, uint8 levels (0, HELD, ONSET) of shape (NUM_PITCHES, steps), and the notes not drawn as
    notes of their own, by reason (OUT_OF_RANGE, TOO_SHORT, NOT_SAMPLED, MERGED_IN_FILE, MERGED_BY_GRID; see
    the module docstring).

    Row i is MIDI pitch LOWEST_PITCH + i; the roll ends at the last note's last step. The notes the piece
    holds are the drawn ones plus these; a roll longer than `max_steps` raises MidiError (a guard against a huge
    roll; the ingest and images stages pass theirs, from ingest.max_quarters).
    """
    check_grid(grid)
    dropped: Counter = Counter()
    tpq = piece.ticks_per_quarter
    rows = piece.pitches.astype(np.int64) - LOWEST_PITCH
    in_range = (rows >= 0) & (rows < NUM_PITCHES)
    if outside := int((~in_range).sum()):
        dropped[OUT_OF_RANGE] = outside
    rows, file_starts, file_ends = rows[in_range], piece.starts[in_range], piece.ends[in_range]
    starts = ticks_to_steps(file_starts, tpq, steps_per_quarter, grid)
    if grid == "nearest":
        ends = np.maximum(ticks_to_steps(file_ends, tpq, steps_per_quarter, grid), starts + 1)
        lengths = _keep_gaps(rows, starts, ends, file_starts, file_ends, tpq, steps_per_quarter) - starts
    else:
        if grid == "sample":
            lengths, reason = ticks_to_steps(file_ends, tpq, steps_per_quarter, grid) - starts, NOT_SAMPLED
        else:
            lengths, reason = (file_ends - file_starts) * steps_per_quarter // tpq, TOO_SHORT
        audible = lengths > 0
        if short := int((~audible).sum()):
            dropped[reason] = short
        rows, starts, lengths = rows[audible], starts[audible], lengths[audible]
        file_starts, file_ends = file_starts[audible], file_ends[audible]
    steps = int((starts + lengths).max()) if len(starts) else 0
    if steps > max_steps:
        raise MidiError(f"too long: {steps} steps (limit {max_steps})")
    order = np.lexsort((-file_ends, file_starts, rows))  # by pitch, onset, the longer first
    merged = _repeats_onset(rows, starts, order)
    in_file = _repeats_onset(rows, file_starts, order)  # a unison: the same tick as the note before it
    if count := int((merged & in_file).sum()):
        dropped[MERGED_IN_FILE] = count
    if count := int((merged & ~in_file).sum()):
        dropped[MERGED_BY_GRID] = count
    roll = _draw(rows, starts, lengths, steps).astype(np.uint8) * np.uint8(HELD)
    roll[rows, starts] = ONSET  # a merged note's onset is its drawn note's: it adds no onset
    return roll, dropped


def _draw(rows: np.ndarray, starts: np.ndarray, lengths: np.ndarray, steps: int) -> np.ndarray:
    """The bool roll (NUM_PITCHES, steps) of notes placed on the grid (row, first step, steps that sound)."""
    roll = np.zeros((NUM_PITCHES, steps), dtype=bool)
    if int(lengths.sum()) <= roll.size:
        # Every sounding cell's index in the flat roll, all notes at once: each note's first cell, repeated
        # over its length, plus 0, 1, 2, ... within the note (no more indices than the roll has cells).
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        roll.reshape(-1)[np.repeat(rows * steps + starts, lengths) + within] = True
        return roll
    # Notes piled on one another (more note cells than the roll has): count note starts minus note ends per
    # cell, then a running sum along each row: memory in proportion to the roll, not to the notes.
    width = steps + 1
    cells = NUM_PITCHES * width
    change = np.bincount(rows * width + starts, minlength=cells)
    change -= np.bincount(rows * width + starts + lengths, minlength=cells)
    return np.cumsum(change.reshape(NUM_PITCHES, width), axis=1)[:, :steps] > 0


def roll_to_notes(roll: np.ndarray) -> RollNotes:
    """The notes of a roll (NUM_PITCHES, steps): uint8 levels, a note from each ONSET cell (or HELD after silence)
    through the HELD cells after it; or a bool roll, each run of sounding steps one note, as the article's
    image2midi merges consecutive white pixels (`strike_runs`). A 0/255 picture is read as `sounding` first."""
    roll = np.asarray(roll)
    levels = strike_runs(roll, time_axis=1) if roll.dtype == bool else roll
    sounds = sounding(levels)
    # A held cell after silence strikes too (a roll's first column, or a picture cut from a longer one).
    struck = onsets(levels) | (sounds & ~np.pad(sounds, ((0, 0), (1, 0)))[:, :-1])
    on_rows, on_steps = np.nonzero(struck)
    # A note ends where its pitch falls silent or is struck again: the cell after its last does not continue it.
    continues = np.pad(sounds & ~struck, ((0, 0), (0, 1)))[:, 1:]
    _, off_steps = np.nonzero(sounds & ~continues)  # each note's last cell, in the same row-major order
    return RollNotes(
        pitches=(on_rows + LOWEST_PITCH).astype(np.int16),
        starts=on_steps.astype(np.int64),
        lengths=(off_steps + 1 - on_steps).astype(np.int64),
    )


def roll_to_midi(roll: np.ndarray, steps_per_quarter: int, *, tempo_bpm: float, meter: Meter | None = None) -> bytes:
    """MIDI bytes (music21, piano) for a roll (NUM_PITCHES, steps) of uint8 levels, each note as `roll_to_notes`
    reads it (a re-struck note is two MIDI notes), or a bool roll (a note per run), with the time signatures of
    `meter` (a map in steps of the same grid; rollgen.music.meter), or 4/4 without one."""
    notes = roll_to_notes(roll)
    starts, durations = notes.quarter_lengths(steps_per_quarter)
    signatures = []
    if meter is not None:
        if meter.steps_per_quarter != steps_per_quarter:
            raise ValueError(f"a meter of {meter.steps_per_quarter} steps a quarter for a roll of {steps_per_quarter}")
        signatures = [
            (signature.step / steps_per_quarter, signature.numerator, signature.denominator)
            for signature in meter.signatures
        ]
    return write_midi(notes.pitches.tolist(), starts, durations, tempo_bpm=tempo_bpm, time_signatures=signatures)
