"""Where every frame sits in the beat and the bar: a piece's time signatures as a map in grid steps.

Units. A *step* is one column of the piano roll, 1/steps_per_quarter of a quarter note (rollgen.music.roll's
grid); frame t covers steps [t, t + 1) and its position is that of its start, step t. Time signatures
come from MIDI in ticks (`Piece.time_signatures`) and start at step tick * steps_per_quarter /
ticks_per_quarter, kept as an exact Fraction: one off the grid starts between two frames. Lengths are in
steps too, exact: a bar is numerator * 4 / denominator quarter notes, so 3/8 at 1 step per quarter is a
bar of 3/2 steps.

Rules.
- A segment runs from one time signature to the next. A file with none is 4/4 from step 0, and so is the
  time before its first one (a segment like any other). Every time signature starts a bar (MIDI writes
  them on bar lines); of several at one tick the last in file order holds.
- The beat is the denominator's note value, except in compound meters (numerator divisible by 3 and above
  3: 6/8, 9/8, 12/8, 6/4, 6/16 ... as music21 counts them), whose beat is three of them (a dotted value).
  Beats count from the bar line. A bar is always a whole number of beats.
- Anacrusis: a segment exactly one bar long whose bar is shorter than the bar of the segment after it is a
  pickup: its steps are the last steps of a bar of the meter that follows, counted in that meter's beats.
  Notation programs export a pickup so (rollgen.music.corpus.mark_pickups writes the scores' pickups so), and
  after repeat expansion, or at a phrase split after a fermata, the same shape turns up mid-piece.
- A position is four integers, `POSITION_COLUMNS`: the step in the beat and the beat's length, the step in
  the bar and the bar's length. The step in the bar is the floor of the exact phase (steps since the bar
  line); the step in the beat is the floor of the phase within its beat; a length is max(1, ceil(exact
  length)). So 3/8 at 1 step per quarter (bars of 1.5 steps) gives steps_per_bar 2, and frames 0, 1, 2, 3
  at phases 0, 1, 0.5, 0 read step_in_bar 0, 1, 0, 0: always in range, bar lines where they fall.
- Frames are the roll's steps, whatever the images' mode: in `article` mode an image's 106 columns are 100
  steps stretched, not frames.

meters.csv (written by the images stage, `METER_COLUMNS`) holds one row per segment per piece, the piece's
first at step 0: its exact start step as a Fraction string ("12", "25/2"), numerator and denominator.
`positions_from_rows` rebuilds the positions from them, given the images stage's steps_per_quarter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # only the type: a stage that rebuilds positions from meters.csv needs no MIDI reader
    from rollgen.music.midi import Piece

POSITION_COLUMNS = ("step_in_beat", "steps_per_beat", "step_in_bar", "steps_per_bar")
STEP_IN_BEAT, STEPS_PER_BEAT, STEP_IN_BAR, STEPS_PER_BAR = range(4)
METER_COLUMNS = ["piece", "step", "numerator", "denominator"]
DEFAULT = (4, 4)  # the time signature of a file that has none, as MIDI's specification says
_INT16_MAX = np.iinfo(np.int16).max


@dataclass(frozen=True)
class TimeSignature:
    """A time signature from `step` on (steps from the start of the piece); `denominator` is a note value
    (4 = quarter)."""

    step: Fraction
    numerator: int
    denominator: int

    @property
    def compound(self) -> bool:
        return self.numerator % 3 == 0 and self.numerator > 3

    def bar_steps(self, steps_per_quarter: int) -> Fraction:
        """The bar's length in steps, exact."""
        return Fraction(self.numerator * 4 * steps_per_quarter, self.denominator)

    def beat_steps(self, steps_per_quarter: int) -> Fraction:
        """The beat's length in steps, exact: the denominator's note value, three of them when compound."""
        return Fraction((3 if self.compound else 1) * 4 * steps_per_quarter, self.denominator)


@dataclass(frozen=True)
class Meter:
    """A piece's time-signature map in grid steps: sorted by step, the first at step 0, one per step."""

    steps_per_quarter: int
    signatures: tuple[TimeSignature, ...]

    def __post_init__(self) -> None:
        steps = [signature.step for signature in self.signatures]
        if not steps or steps[0] != 0 or any(later <= earlier for earlier, later in zip(steps, steps[1:])):
            raise ValueError(f"a meter's time signatures start at step 0 and increase, not at steps {steps}")
        for signature in self.signatures:
            if signature.numerator < 1 or signature.denominator < 1:
                raise ValueError(f"time signature {signature.numerator}/{signature.denominator} at {signature.step}")

    @classmethod
    def from_steps(cls, signatures: Iterable[tuple[Fraction, int, int]], steps_per_quarter: int) -> Meter:
        """The meter of (start step, numerator, denominator) triples in any order: 4/4 before the first (and
        where there are none), the last given of several at one step."""
        by_step = {Fraction(0): TimeSignature(Fraction(0), *DEFAULT)}
        for step, numerator, denominator in sorted(signatures, key=lambda signature: signature[0]):
            by_step[Fraction(step)] = TimeSignature(Fraction(step), int(numerator), int(denominator))
        return cls(steps_per_quarter, tuple(by_step[step] for step in sorted(by_step)))

    @classmethod
    def from_piece(cls, piece: Piece, steps_per_quarter: int) -> Meter:
        """The meter of a piece's time signatures (ticks) on a grid of `steps_per_quarter` steps a quarter."""
        return cls.from_steps(
            (
                (Fraction(tick * steps_per_quarter, piece.ticks_per_quarter), numerator, denominator)
                for tick, numerator, denominator in piece.time_signatures
            ),
            steps_per_quarter,
        )

    def to_rows(self) -> list[tuple[str, int, int]]:
        """(start step as a Fraction string, numerator, denominator) per segment: meters.csv's columns."""
        return [(str(signature.step), signature.numerator, signature.denominator) for signature in self.signatures]

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence], steps_per_quarter: int) -> Meter:
        """The meter of `to_rows`' rows (the step as a Fraction string, int or Fraction)."""
        signatures = ((Fraction(str(step)), numerator, denominator) for step, numerator, denominator in rows)
        return cls.from_steps(signatures, steps_per_quarter)


def frame_positions(meter: Meter, steps: int) -> np.ndarray:
    """Each frame's position in its beat and bar: int16 of shape (steps, 4), columns `POSITION_COLUMNS`.

    Exact arithmetic per segment (Fractions, a few per time signature), then integers over its frames.
    """
    positions = np.zeros((steps, 4), dtype=np.int16)
    signatures, steps_per_quarter = meter.signatures, meter.steps_per_quarter
    for number, signature in enumerate(signatures):
        first = math.ceil(signature.step)  # the first frame that starts inside the segment
        following = signatures[number + 1] if number + 1 < len(signatures) else None
        last = steps if following is None else min(steps, math.ceil(following.step))
        if first >= last:
            continue
        counted, phase = signature, Fraction(first) - signature.step  # steps since the bar line at frame `first`
        if following is not None and following.step - signature.step == signature.bar_steps(steps_per_quarter):
            if signature.bar_steps(steps_per_quarter) < following.bar_steps(steps_per_quarter):  # a pickup
                counted = following
                phase += following.bar_steps(steps_per_quarter) - signature.bar_steps(steps_per_quarter)
        bar, beat = counted.bar_steps(steps_per_quarter), counted.beat_steps(steps_per_quarter)
        if math.ceil(bar) > _INT16_MAX:
            raise ValueError(f"a bar of {counted.numerator}/{counted.denominator} is {math.ceil(bar)} steps (int16)")
        # In units of 1/scale steps every length is an integer: phase, bar and beat lengths, frame starts.
        scale = math.lcm(bar.denominator, beat.denominator, phase.denominator)
        in_bar = (np.arange(last - first, dtype=np.int64) * scale + int(phase * scale)) % int(bar * scale)
        frames = positions[first:last]
        frames[:, STEP_IN_BEAT] = in_bar % int(beat * scale) // scale
        frames[:, STEPS_PER_BEAT] = max(1, math.ceil(beat))
        frames[:, STEP_IN_BAR] = in_bar // scale
        frames[:, STEPS_PER_BAR] = max(1, math.ceil(bar))
    return positions


def next_position(positions: np.ndarray) -> np.ndarray:
    """The position of the step after each row of `positions` (n, 4), in the same meter: for generation that
    goes on from a primer's last frame.

    The step in the bar goes on by one and wraps at the bar's length; the step in the beat is then the step
    in the bar modulo the beat's length. In an integer meter (bar and beat whole numbers of steps) this is
    exactly the next row of `frame_positions` within a segment, and across a pickup's last step into its
    bar. In a fractional one it continues bars of steps_per_bar whole steps, so it drifts from the piece's
    bar lines by ceil(bar) - bar steps a bar (3/8 at 1 step per quarter: every bar 2 steps, not 1.5).
    """
    positions = np.asarray(positions)
    following = positions.copy()
    in_bar = (positions[..., STEP_IN_BAR].astype(np.int64) + 1) % positions[..., STEPS_PER_BAR]
    following[..., STEP_IN_BAR] = in_bar
    following[..., STEP_IN_BEAT] = in_bar % positions[..., STEPS_PER_BEAT]
    return following


def default_positions(steps: int, steps_per_quarter: int) -> np.ndarray:
    """`frame_positions` of 4/4 from a bar line at step 0, for callers without a meter."""
    return frame_positions(Meter.from_steps((), steps_per_quarter), steps)


def positions_after(position: np.ndarray, steps: int) -> np.ndarray:
    """The positions (steps, 4) of `steps` frames from one at `position` on: what `next_position` gives, frame
    after frame, as generation goes on from a primer."""
    position = np.asarray(position)
    in_bar = (int(position[STEP_IN_BAR]) + np.arange(steps)) % int(position[STEPS_PER_BAR])
    positions = np.repeat(position[None], steps, axis=0)
    positions[:, STEP_IN_BAR] = in_bar
    positions[:, STEP_IN_BEAT] = in_bar % int(position[STEPS_PER_BEAT])
    return positions


def signature_of(steps_per_beat: int, steps_per_bar: int, steps_per_quarter: int) -> tuple[int, int] | None:
    """The time signature (numerator, denominator) whose beat and bar are these many steps, as
    `frame_positions` counts them: simple (the beat the denominator's note) or compound (three of them). At
    most one fits (a beat cannot be both a power-of-two note and three of one); None when neither does."""
    if steps_per_bar % steps_per_beat:
        return None
    beats = steps_per_bar // steps_per_beat
    for notes_per_beat in (1, 3):
        denominator = Fraction(notes_per_beat * 4 * steps_per_quarter, steps_per_beat)
        if denominator.denominator != 1 or not _power_of_two(denominator.numerator):
            continue
        signature = TimeSignature(Fraction(0), notes_per_beat * beats, denominator.numerator)
        if signature.compound == (notes_per_beat == 3):  # 6/4 is compound: its beat is no quarter
            return signature.numerator, signature.denominator
    return None


def bar_signature(steps: int, steps_per_quarter: int, preferred_denominator: int = 4) -> tuple[int, int] | None:
    """A time signature whose bar is `steps` steps exactly: `preferred_denominator` where it gives a whole
    numerator, else the smallest power of two that does; None when none does (a triplet grid's odd steps)."""
    denominators = (preferred_denominator, *(2**power for power in range(8)))
    for denominator in denominators:
        numerator = Fraction(steps * denominator, 4 * steps_per_quarter)
        if numerator.denominator == 1 and 1 <= numerator.numerator <= 255:  # MIDI keeps a numerator in a byte
            return numerator.numerator, denominator
    return None


def meter_from_positions(positions: np.ndarray, steps_per_quarter: int) -> Meter:
    """A meter whose `frame_positions` are `positions` (frames, 4): what written MIDI carries for frames
    that know their positions (generated ones, a primer's).

    A new time signature wherever the beat or bar length changes. A stretch that starts inside a bar (an
    excerpt) opens with a pickup, a bar as long as what is left of it, so the bar lines fall where the
    positions say. Exact for meters whose bar and beat are whole steps; where a length was rounded up
    (`frame_positions`), the bar keeps the rounded length, and where no signature has it, 4/4.
    """
    positions = np.asarray(positions)
    lengths = positions[:, [STEPS_PER_BEAT, STEPS_PER_BAR]]
    starts = [0, *(np.flatnonzero((lengths[1:] != lengths[:-1]).any(axis=1)) + 1).tolist()]
    signatures: list[tuple[Fraction, int, int]] = []
    for first, end in zip(starts, [*starts[1:], len(positions)]):
        beat, bar = int(lengths[first, 0]), int(lengths[first, 1])
        signature = signature_of(beat, bar, steps_per_quarter) or bar_signature(bar, steps_per_quarter) or DEFAULT
        left = bar - int(positions[first, STEP_IN_BAR])  # steps to the next bar line
        pickup = bar_signature(left, steps_per_quarter, signature[1]) if left < bar else None
        if pickup:
            signatures.append((Fraction(first), *pickup))
        if not pickup or first + left < end:  # a stretch that ends before its first bar line is its pickup
            signatures.append((Fraction(first + left if pickup else first), *signature))
    return Meter.from_steps(signatures, steps_per_quarter)


def commonest_bar(positions: np.ndarray) -> tuple[int, int] | None:
    """(steps_per_beat, steps_per_bar) of the most bars among frames' positions (an archive's), None where
    no bar starts; ties go to the shorter beat, then the shorter bar."""
    positions = np.asarray(positions)
    bar_starts = positions[positions[:, STEP_IN_BAR] == 0][:, [STEPS_PER_BEAT, STEPS_PER_BAR]]
    if not len(bar_starts):
        return None
    kinds, counts = np.unique(bar_starts, axis=0, return_counts=True)
    beat, bar = kinds[int(np.argmax(counts))].tolist()
    return beat, bar


def _power_of_two(number: int) -> bool:
    return number > 0 and number & (number - 1) == 0


def positions_from_rows(rows: Iterable[Sequence], steps: int, steps_per_quarter: int) -> np.ndarray:
    """`frame_positions` of one piece's meters.csv rows (step, numerator, denominator)."""
    return frame_positions(Meter.from_rows(rows, steps_per_quarter), steps)


def read_meters(path: Path, steps_per_quarter: int) -> dict[str, Meter]:
    """Every piece's meter from a meters.csv (the images stage's), by piece, in the file's order."""
    table = pd.read_csv(path, keep_default_na=False, dtype={"piece": str, "step": str})
    rows: dict[str, list[tuple[str, int, int]]] = {}
    for piece, step, numerator, denominator in table[METER_COLUMNS].itertuples(index=False):
        rows.setdefault(piece, []).append((step, numerator, denominator))
    return {piece: Meter.from_rows(piece_rows, steps_per_quarter) for piece, piece_rows in rows.items()}
