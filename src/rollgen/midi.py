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

DRUM_CHANNEL = 9  # MIDI channel 10, counted from zero as in the file


class MidiError(ValueError):
    """A MIDI file rollgen cannot use; the message is the reason recorded in the manifest."""


@dataclass(frozen=True)
class Piece:
    """The notes of one MIDI file, sorted by onset then pitch. Times are ticks; see `ticks_per_quarter`."""

    ticks_per_quarter: int
    pitches: np.ndarray  # MIDI note numbers 0..127
    starts: np.ndarray  # onset, ticks from the start of the file
    ends: np.ndarray  # release, ticks from the start of the file
    dropped: Counter = field(default_factory=Counter)  # notes left out, by reason
    repaired: Counter = field(default_factory=Counter)  # notes kept after a fix-up, by reason

    @property
    def length_quarters(self) -> Fraction:
        """Time from the start of the file to the last release, in quarter notes."""
        last = int(self.ends.max()) if len(self.ends) else 0
        return Fraction(last, self.ticks_per_quarter)


def unwrap_riff(data: bytes) -> bytes:
    """The Standard MIDI File inside a RIFF 'RMID' wrapper (.rmi), or `data` unchanged."""
    if data[:4] != b"RIFF" or data[8:12] != b"RMID":
        return data
    position = 12
    while position + 8 <= len(data):
        chunk_id, size = data[position : position + 4], int.from_bytes(data[position + 4 : position + 8], "little")
        if chunk_id == b"data":
            return data[position + 8 : position + 8 + size]
        position += 8 + size + (size & 1)  # RIFF chunks are padded to even lengths
    raise MidiError("RIFF MIDI without a 'data' chunk")


def check_structure(data: bytes) -> None:
    """Raises MidiError unless `data` has a sane MIDI header and every track chunk lies inside the file.

    py_midicsv trusts chunk lengths (a length of 0xFFFFFFFF makes it allocate 4 GiB), so look first.
    """
    if len(data) < 14 or data[:4] != b"MThd":
        raise MidiError("not a MIDI file (no MThd header)")
    header_length = int.from_bytes(data[4:8], "big")
    if header_length != 6:
        raise MidiError(f"bad MIDI header length {header_length} (expected 6)")
    file_format = int.from_bytes(data[8:10], "big")
    if file_format not in (0, 1, 2):
        raise MidiError(f"unknown MIDI format {file_format}")
    division = int.from_bytes(data[12:14], "big")
    if division & 0x8000:
        raise MidiError("SMPTE time division not supported")
    if division == 0:
        raise MidiError("time division of 0 ticks per quarter note")
    position, track = 14, 0
    while position + 8 <= len(data):
        chunk_length = int.from_bytes(data[position + 4 : position + 8], "big")
        if position + 8 + chunk_length > len(data):
            name = "track" if data[position : position + 4] == b"MTrk" else "chunk"
            raise MidiError(f"truncated {name} {track + 1}: declares {chunk_length} bytes, file has fewer")
        track += data[position : position + 4] == b"MTrk"
        position += 8 + chunk_length
    if track == 0:
        raise MidiError("no MTrk track chunk")


def read_midi(data: bytes, include_drums: bool = False) -> Piece:
    """The notes of a MIDI file given as bytes.

    Policies (why: real files do all of these): a note-on with velocity 0 is a note-off; a second
    note-on of a sounding pitch on the same track and channel ends the first one there (retrigger);
    a note never switched off ends at its track's end; a note-off with nothing sounding is ignored.
    """
    data = unwrap_riff(data)
    check_structure(data)
    try:
        rows = py_midicsv.midi_to_csv(io.BytesIO(data), strict=True)
    except (AssertionError, ValueError, TypeError, IndexError, KeyError, EOFError) as error:
        detail = str(error) or type(error).__name__
        raise MidiError(f"unreadable MIDI events: {detail}") from error

    ticks_per_quarter = 0
    open_notes: dict[tuple[int, int, int], int] = {}
    track_end: dict[int, int] = {}
    pitches: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    dropped: Counter = Counter()
    repaired: Counter = Counter()

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
            track, tick = int(fields[0]), int(fields[1])
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
            track, tick = int(fields[0]), int(fields[1])
            track_end[track] = max(track_end.get(track, 0), tick)
            for key in [key for key in open_notes if key[0] == track]:
                repaired["never switched off (ended at track end)"] += 1
                close(key, track_end[track])
        elif kind == "Header":
            ticks_per_quarter = int(fields[3].split(",")[-1])
    for key in list(open_notes):  # a track whose End_track event is missing
        repaired["never switched off (ended at track end)"] += 1
        close(key, track_end.get(key[0], 0))

    order = np.lexsort((np.asarray(pitches, dtype=np.int64), np.asarray(starts, dtype=np.int64)))
    return Piece(
        ticks_per_quarter=ticks_per_quarter,
        pitches=np.asarray(pitches, dtype=np.int16)[order],
        starts=np.asarray(starts, dtype=np.int64)[order],
        ends=np.asarray(ends, dtype=np.int64)[order],
        dropped=dropped,
        repaired=repaired,
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
