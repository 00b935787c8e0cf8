"""MIDI files <-> notes: reading with py_midicsv (fast, exact ticks), writing with music21 (as the article)."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import py_midicsv

from rollgen.smf import MidiError, check_structure

DRUM_CHANNEL = 9  # MIDI channel 10, counted from zero as in the file


@dataclass(frozen=True)
class Piece:
    """The notes of one MIDI file, sorted by onset then pitch. Times are ticks; see `ticks_per_quarter`."""

    ticks_per_quarter: int
    pitches: np.ndarray  # MIDI note numbers 0..127
    starts: np.ndarray  # onset, ticks from the start of the file
    ends: np.ndarray  # release, ticks from the start of the file
    dropped: Counter = field(default_factory=Counter)  # notes left out, by reason
    repaired: Counter = field(default_factory=Counter)  # fix-ups of notes and events, by reason
    seconds: float = 0.0  # length under the file's tempo map

    @property
    def length_quarters(self) -> Fraction:
        """Time from the start of the file to the last release, in quarter notes."""
        last = int(self.ends.max()) if len(self.ends) else 0
        return Fraction(last, self.ticks_per_quarter)


def read_midi(data: bytes, include_drums: bool = False, max_quarters: float = 1_000_000) -> Piece:
    """The notes of a MIDI file given as bytes (type 0, 1, or 2 with its tracks played one after another).

    The structure is checked first (rollgen.smf); a file longer than `max_quarters` is rejected there,
    before anything its size is allocated. Policies (why: real files do all of these): a note-on with
    velocity 0 is a note-off; a second note-on of a sounding pitch on the same track and channel ends
    the first one there (retrigger); a note never switched off ends at its track's end; a note-off with
    nothing sounding is ignored. Times stay in ticks: tempo changes do not move the grid.
    """
    structure = check_structure(data, max_quarters=max_quarters)
    offsets = structure.track_offsets
    try:
        rows = py_midicsv.midi_to_csv(io.BytesIO(structure.data), strict=True)
    except (AssertionError, ValueError, TypeError, IndexError, KeyError, EOFError) as error:
        detail = str(error) or type(error).__name__
        raise MidiError(f"unreadable MIDI events: {detail}") from error

    open_notes: dict[tuple[int, int, int], int] = {}
    track_end: dict[int, int] = {}
    pitches: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    dropped: Counter = Counter()
    repaired: Counter = Counter(structure.repaired)

    def close(key: tuple[int, int, int], tick: int) -> None:
        start = open_notes.pop(key)
        if tick > start:
            pitches.append(key[2])
            starts.append(start)
            ends.append(tick)
        else:
            dropped["zero length"] += 1

    for row in rows:
        fields = row.split(",", 3)
        if len(fields) < 3:
            continue
        kind = fields[2].strip()
        if kind in ("Note_on_c", "Note_off_c"):
            track = int(fields[0])
            tick = int(fields[1]) + offsets[track - 1]
            channel, pitch, velocity = (int(value) for value in fields[3].split(","))
            track_end[track] = max(track_end.get(track, 0), tick)
            if channel == DRUM_CHANNEL and not include_drums:
                if kind == "Note_on_c" and velocity > 0:
                    dropped["drums (channel 10)"] += 1
                continue
            key = (track, channel, pitch)
            if key in open_notes:  # its note-off, or a retrigger of a sounding pitch
                close(key, tick)
            if kind == "Note_on_c" and velocity > 0:
                open_notes[key] = tick
        elif kind == "End_track":
            track = int(fields[0])
            tick = int(fields[1]) + offsets[track - 1]
            track_end[track] = max(track_end.get(track, 0), tick)
            for key in [key for key in open_notes if key[0] == track]:
                repaired["never switched off (ended at track end)"] += 1
                close(key, track_end[track])
    for key in list(open_notes):  # a track whose End_track event is missing
        repaired["never switched off (ended at track end)"] += 1
        close(key, track_end.get(key[0], 0))

    order = np.lexsort((np.asarray(pitches, dtype=np.int64), np.asarray(starts, dtype=np.int64)))
    return Piece(
        ticks_per_quarter=structure.ticks_per_quarter,
        pitches=np.asarray(pitches, dtype=np.int16)[order],
        starts=np.asarray(starts, dtype=np.int64)[order],
        ends=np.asarray(ends, dtype=np.int64)[order],
        dropped=dropped,
        repaired=repaired,
        seconds=structure.seconds(),
    )


def notes_fingerprint(piece: Piece) -> str:
    """A hash of the music alone (pitches and times in quarter notes), to spot one piece in two files."""
    digest = hashlib.sha256()
    for pitch, start, end in zip(piece.pitches.tolist(), piece.starts.tolist(), piece.ends.tolist()):
        digest.update(
            f"{pitch}:{Fraction(start, piece.ticks_per_quarter)}:{Fraction(end, piece.ticks_per_quarter)};".encode()
        )
    return digest.hexdigest()


def write_midi(
    pitches: Sequence[int],
    starts: Sequence[Fraction],
    durations: Sequence[Fraction],
    tempo_bpm: float = 120.0,
) -> bytes:
    """MIDI bytes for notes given in quarter notes, written with music21 (piano, one track)."""
    from music21 import instrument, note, stream, tempo
    from music21.midi import translate

    part = stream.Stream()
    part.insert(0, instrument.Piano())
    part.insert(0, tempo.MetronomeMark(number=tempo_bpm))
    for pitch, start, duration in zip(pitches, starts, durations):
        sounding = note.Note(int(pitch), quarterLength=duration)
        part.insert(start, sounding)
    return translate.music21ObjectToMidiFile(part).writestr()
