"""What a generated piece starts from: random excerpts of a split's pieces, the start of a MIDI file, or nothing.

`generate.primer` names it in words ('test', 'val', 'none' or a MIDI file's path); `primer_source` turns the
words into a `PrimerSource`, and `make_primers` turns that into the frames the model reads first and their
bar positions, which the written pieces keep (rollgen.generation.piece).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import numpy as np

from rollgen.data.archive import Sequences, read_sequences
from rollgen.errors import RollgenError
from rollgen.music import meter
from rollgen.music.midi import MidiError, read_midi
from rollgen.music.roll import NUM_PITCHES, piece_to_roll

SPLIT_PRIMERS = ("test", "val")  # generate.primer words that draw excerpts of that split's pieces


@dataclass(frozen=True)
class Silence:
    """No primer: the piece starts from nothing at a bar line of a meter whose beat and bar are these many
    steps (the training pieces' commonest, `commonest_meter`)."""

    steps_per_beat: int
    steps_per_bar: int


# A split's archive (random excerpts of its pieces), a MIDI file (its path, or its bytes as a request sends
# them), Silence, or None: nothing, the piece starts at a bar line of 4/4.
PrimerSource: TypeAlias = Sequences | Path | bytes | Silence | None


def primer_source(primer: str, windows: Path) -> PrimerSource:
    """What `generate.primer` names: for 'test' or 'val' that split's archive, `windows`/<split>.npz (or the
    archive file `windows` itself); for 'none' Silence in the training pieces' commonest meter
    (`commonest_meter`; 4/4 without them); else the path of a MIDI file."""
    if primer == "none":
        return commonest_meter(windows)
    if primer not in SPLIT_PRIMERS:
        return Path(primer)
    windows = Path(windows)
    archive = windows if windows.is_file() else windows / f"{primer}.npz"
    if not archive.is_file():
        raise RollgenError(
            f"primer '{primer}': {archive} does not exist (run `dvc repro windows`, or name the folder that holds it)"
        )
    return read_sequences(archive)


def make_primers(
    source: PrimerSource, count: int, steps: int, rng: np.random.Generator, steps_per_quarter: int, grid: str
) -> tuple[np.ndarray, np.ndarray]:
    """Primers (count, steps or fewer, 106) of uint8 levels (rollgen.music.roll: 0, HELD, ONSET) and their bar
    positions (count, primer steps + 1, 4): random excerpts of an archive drawn with `rng`; the start of a MIDI
    file, read on the model's grid (`steps_per_quarter`, `grid`), the same for every piece; or nothing, from a
    bar line (Silence's meter; 4/4 for None)."""
    if source is None or isinstance(source, Silence):
        start = meter.default_positions(1, steps_per_quarter)
        if source is not None:
            start[0, [meter.STEPS_PER_BEAT, meter.STEPS_PER_BAR]] = source.steps_per_beat, source.steps_per_bar
        return np.zeros((count, 0, NUM_PITCHES), np.uint8), np.repeat(start[None], count, axis=0).astype(np.int32)
    if isinstance(source, Sequences):
        return excerpt_primers(source, count, steps, rng)
    if isinstance(source, bytes):
        try:
            return primers_from_midi(source, steps, count, steps_per_quarter, grid)
        except (MidiError, ValueError) as error:
            raise RollgenError(f"primer: {error}") from error
    return midi_primers(source, steps, count, steps_per_quarter, grid)


def excerpt_primers(data: Sequences, count: int, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` random excerpts of `steps` frames from the sequences of `data` long enough for them (all as
    long as the longest sequence where none is), their levels as the archive holds them (a note sounding into
    an excerpt's first frame is held there, as it was), and their positions."""
    lengths = np.diff(data.offsets)
    if len(lengths) == 0 or lengths.max() == 0:
        raise RollgenError("the split has no frames to start from")
    steps = min(steps, int(lengths.max()))
    eligible = np.flatnonzero(lengths >= steps)
    sequences = eligible[rng.integers(len(eligible), size=count)]
    primers = np.zeros((count, steps, data.frames.shape[1]), np.uint8)
    positions = np.zeros((count, steps + 1, data.positions.shape[1]), np.int32)
    for row, sequence in enumerate(sequences):
        first = data.offsets[sequence] + rng.integers(lengths[sequence] - steps + 1)
        primers[row] = data.frames[first : first + steps]
        positions[row, :steps] = data.positions[first : first + steps]
        # the first new frame's position: the step after the primer's (or, with no primer, the excerpt's first)
        positions[row, steps] = meter.next_position(positions[row, steps - 1]) if steps else data.positions[first]
    return primers, positions


def midi_primers(
    path: Path, steps: int, count: int, steps_per_quarter: int, grid: str
) -> tuple[np.ndarray, np.ndarray]:
    """The first `steps` steps of a MIDI file's roll (all of it when shorter), as `count` identical primers of
    levels (each note struck at its onset, a re-struck note twice), and their bar positions from the file's time
    signatures.

    The roll starts at the file's time 0, so a file that opens with rests gives a primer with silent steps.
    """
    path = Path(path)
    if not path.is_file():
        raise RollgenError(f"primer {path}: no such file")
    try:
        return primers_from_midi(path.read_bytes(), steps, count, steps_per_quarter, grid)
    except (MidiError, ValueError) as error:
        raise RollgenError(f"primer {path}: {error}") from error


def primers_from_midi(
    data: bytes, steps: int, count: int, steps_per_quarter: int, grid: str
) -> tuple[np.ndarray, np.ndarray]:
    """As `midi_primers`, from the bytes of a MIDI file; raises MidiError for a file rollgen cannot read and
    ValueError for one without notes in range."""
    piece = read_midi(data)
    roll, _ = piece_to_roll(piece, steps_per_quarter=steps_per_quarter, grid=grid)
    if roll.shape[1] == 0:
        raise ValueError("no notes in range to start from")
    steps = min(steps, roll.shape[1])
    where = meter.frame_positions(meter.Meter.from_piece(piece, steps_per_quarter), steps + 1)
    window = roll[:, :steps].T
    return np.repeat(window[None], count, axis=0), np.repeat(where[None], count, axis=0).astype(np.int32)


def commonest_meter(windows: Path) -> Silence | None:
    """Silence in the commonest meter of the training pieces, train.npz in `windows` (or beside the archive
    file it names), counted in bars; None (4/4) where there is no such archive or it has no bar."""
    windows = Path(windows)
    archive = (windows.parent if windows.is_file() else windows) / "train.npz"
    if not archive.is_file():
        return None
    with np.load(archive, allow_pickle=False) as data:  # the positions alone: not a large archive's frames
        found = meter.commonest_bar(data["positions"])
    return Silence(*found) if found else None
