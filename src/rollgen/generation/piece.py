"""A generated piece: the primer the model read, the frames it drew after it, and where every frame of both sits
in its beat and bar, so the piece is written in the meter it was generated in, with its primer or without."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rollgen.music import meter
from rollgen.music.pictures import save_roll_picture
from rollgen.music.roll import roll_to_midi


@dataclass(frozen=True)
class GeneratedPiece:
    """Rolls (pitches, steps) of uint8 levels (rollgen.music.roll: 0, HELD, ONSET) on the model's grid, so a note
    struck again stays two notes in MIDI, and int positions (rollgen.music.meter)."""

    primer: np.ndarray  # (pitches, primer steps): the music the model read first (none: 0 steps)
    roll: np.ndarray  # (pitches, steps): the frames the model drew, the only ones its statistics describe
    positions: np.ndarray  # (primer steps + steps, 4): the bar position of every frame of both

    @property
    def primer_steps(self) -> int:
        return self.primer.shape[1]

    def written(self, include_primer: bool) -> tuple[np.ndarray, np.ndarray]:
        """The roll a file holds and its frames' positions: the primer then the new frames, or these alone."""
        if include_primer:
            return np.concatenate([self.primer, self.roll], axis=1), self.positions
        return self.roll, self.positions[self.primer_steps :]

    def midi(self, steps_per_quarter: int, tempo_bpm: float, include_primer: bool) -> bytes:
        """MIDI bytes (rollgen.music.roll.roll_to_midi) with the time signatures the positions say: the
        primer's meter carried on, and a pickup where the written roll starts inside a bar."""
        roll, positions = self.written(include_primer)
        signatures = meter.meter_from_positions(positions, steps_per_quarter)
        return roll_to_midi(roll, steps_per_quarter=steps_per_quarter, tempo_bpm=tempo_bpm, meter=signatures)

    def save_picture(self, target: Path, steps_per_quarter: int, include_primer: bool) -> Path:
        """A PNG of the written roll with its beat and bar lines, the primer shaded (rollgen.music.pictures)."""
        roll, positions = self.written(include_primer)
        primer_steps = self.primer_steps if include_primer else 0
        return save_roll_picture(roll, target, steps_per_quarter, positions, primer_steps)
