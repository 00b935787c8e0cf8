"""Standard MIDI File structure, checked event by event before py_midicsv reads the bytes.

py_midicsv trusts what a file says: a track length of 0xFFFFFFFF makes it allocate 4 GiB, it reads the
payload of a meta event it does not know as further events (phantom notes), ends a truncated track
silently and validates with `assert`. music21 guesses at running status without a status byte and drops
data bytes above 127 without a word. So every track is walked here first: what is broken is rejected with
a reason a person can act on, and what is merely odd is repaired and counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from py_midicsv.midi.events import EventRegistry

# Meta events py_midicsv decodes; any other is dropped here (its time folded into the next event).
KNOWN_META = frozenset(EventRegistry.MetaEvents)
END_OF_TRACK = 0x2F
TEMPO = 0x51
DEFAULT_TEMPO = 500_000  # microseconds per quarter note when a file sets none (120 bpm)


class MidiError(ValueError):
    """A MIDI file rollgen cannot use; the message is the reason recorded in the manifest."""


@dataclass
class Structure:
    """What the walk found: the bytes to parse (repaired), and the file's timing."""

    data: bytes
    file_format: int
    ticks_per_quarter: int
    tracks: int
    last_tick: int  # latest event time, in ticks (tracks one after another for format 2)
    track_offsets: list[int] = field(default_factory=list)  # each track's start tick (non-zero in format 2 only)
    tempo_changes: list[tuple[int, int]] = field(default_factory=list)  # (tick, microseconds per quarter)
    repaired: Counter = field(default_factory=Counter)

    @property
    def quarters(self) -> float:
        return self.last_tick / self.ticks_per_quarter

    def seconds(self) -> float:
        """Length in seconds under the tempo map (format 0/1: tempo events of any track apply to all)."""
        total, tick, tempo = 0.0, 0, DEFAULT_TEMPO
        for change_tick, change_tempo in sorted(self.tempo_changes):
            if change_tick >= self.last_tick:
                break
            total += (change_tick - tick) * tempo
            tick, tempo = change_tick, change_tempo
        total += (self.last_tick - tick) * tempo
        return total / self.ticks_per_quarter / 1e6


def unwrap_riff(data: bytes) -> bytes:
    """The Standard MIDI File inside a RIFF 'RMID' wrapper (.rmi files), or `data` unchanged."""
    if data[:4] != b"RIFF" or data[8:12] != b"RMID":
        return data
    position = 12
    while position + 8 <= len(data):
        chunk_id, size = data[position : position + 4], int.from_bytes(data[position + 4 : position + 8], "little")
        if chunk_id == b"data":
            if position + 8 + size > len(data):
                raise MidiError("truncated RIFF 'data' chunk")
            return data[position + 8 : position + 8 + size]
        position += 8 + size + (size & 1)  # RIFF chunks are padded to even lengths
    raise MidiError("RIFF file without a MIDI 'data' chunk")


def _variable_length(data: bytes, position: int, end: int, track: int) -> tuple[int, int]:
    """A variable-length quantity (delta time or length) at `position`: its value and the next position."""
    value = 0
    for count in range(4):
        if position >= end:
            raise MidiError(f"truncated track {track}")
        byte = data[position]
        position += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, position
        if count == 3:
            break
    raise MidiError(f"track {track}: variable-length number longer than 4 bytes")


def encode_variable_length(value: int) -> bytes:
    """A delta time or length as a MIDI variable-length quantity (7 bits a byte, high bit = more follows)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _walk_track(
    data: bytes, start: int, end: int, track: int, offset: int, max_ticks: int, structure: Structure
) -> tuple[bytes, int]:
    """Checks one track's events; returns the track's (repaired) bytes and its last tick (from its start)."""
    out = bytearray()
    position, tick, carried_delta, running_status = start, 0, 0, None
    ended = False
    while position < end:
        delta, position = _variable_length(data, position, end, track)
        tick += delta
        if offset + tick > max_ticks:
            quarters, limit = (offset + tick) // structure.ticks_per_quarter, max_ticks // structure.ticks_per_quarter
            raise MidiError(f"absurd length: track {track} reaches {quarters} quarter notes (limit {limit})")
        if position >= end:
            raise MidiError(f"truncated track {track}")
        event_start = position
        status = data[position]
        if status & 0x80:
            position += 1
            if status < 0xF0:
                running_status = status
        elif running_status is None:
            raise MidiError(f"track {track}: data byte 0x{status:02X} where a status byte must be (no running status)")
        else:
            status = running_status
        keep = True
        if status < 0xF0:  # channel message: one or two data bytes
            count = 1 if 0xC0 <= status < 0xE0 else 2
            if position + count > end:
                raise MidiError(f"truncated track {track}")
            if any(byte & 0x80 for byte in data[position : position + count]):
                raise MidiError(f"track {track}: data byte above 127 in a channel message at tick {tick}")
            position += count
        elif status == 0xFF:
            if position >= end:
                raise MidiError(f"truncated track {track}")
            kind = data[position]
            length, position = _variable_length(data, position + 1, end, track)
            if position + length > end:
                raise MidiError(f"track {track}: meta event 0x{kind:02X} runs past the end of the track")
            payload = data[position : position + length]
            position += length
            if kind == TEMPO:
                if length != 3:
                    raise MidiError(f"track {track}: tempo event of {length} bytes (expected 3)")
                tempo = int.from_bytes(payload, "big")
                if tempo == 0:
                    raise MidiError(f"track {track}: tempo 0 at tick {tick}")
                structure.tempo_changes.append((offset + tick, tempo))
            if kind not in KNOWN_META:
                keep = False
                structure.repaired[f"unknown meta event 0x{kind:02X} skipped"] += 1
            ended = kind == END_OF_TRACK
        elif status in (0xF0, 0xF7):
            length, position = _variable_length(data, position, end, track)
            if position + length > end:
                raise MidiError(f"track {track}: SysEx event runs past the end of the track")
            position += length
        else:
            raise MidiError(f"track {track}: status byte 0x{status:02X} is not allowed in a MIDI file")
        if keep:
            out += encode_variable_length(carried_delta + delta) + data[event_start:position]
            carried_delta = 0
        else:
            carried_delta += delta
        if ended:
            break
    if not ended:
        structure.repaired["track without end-of-track event"] += 1
        out += encode_variable_length(carried_delta) + bytes([0xFF, END_OF_TRACK, 0])
    return bytes(out), tick


def check_structure(data: bytes, max_quarters: float = 1_000_000) -> Structure:
    """Walks the header and every event of a MIDI file (RIFF-wrapped or not).

    Raises MidiError for what cannot be read or is absurd (before anything the size of the music is
    allocated); returns the file rebuilt for py_midicsv with unknown meta events and foreign chunks left
    out and missing end-of-track events added, each repair counted.
    """
    data = unwrap_riff(data)
    if data[:4] != b"MThd":
        raise MidiError("not a MIDI file (no MThd header)")
    if len(data) < 14:
        raise MidiError(f"truncated header ({len(data)} bytes)")
    header_length = int.from_bytes(data[4:8], "big")
    if header_length != 6:
        raise MidiError(f"bad MIDI header length {header_length} (expected 6)")
    file_format = int.from_bytes(data[8:10], "big")
    if file_format not in (0, 1, 2):
        raise MidiError(f"unknown MIDI format {file_format}")
    declared_tracks = int.from_bytes(data[10:12], "big")
    division = int.from_bytes(data[12:14], "big")
    if division & 0x8000:
        raise MidiError("SMPTE time division not supported")
    if division == 0:
        raise MidiError("time division of 0 ticks per quarter note")
    structure = Structure(b"", file_format, division, 0, 0)
    max_ticks = int(max_quarters * division)
    tracks: list[bytes] = []
    position, offset = 14, 0
    while position + 8 <= len(data):
        chunk_id = data[position : position + 4]
        chunk_length = int.from_bytes(data[position + 4 : position + 8], "big")
        body = position + 8
        if body + chunk_length > len(data):
            name = f"track {len(tracks) + 1}" if chunk_id == b"MTrk" else f"chunk {chunk_id!r}"
            raise MidiError(f"truncated {name}: declares {chunk_length} bytes, {len(data) - body} remain")
        if chunk_id == b"MTrk":
            number = len(tracks) + 1
            track_bytes, last = _walk_track(data, body, body + chunk_length, number, offset, max_ticks, structure)
            tracks.append(track_bytes)
            structure.track_offsets.append(offset)
            structure.last_tick = max(structure.last_tick, offset + last)
            if file_format == 2:  # independent sequences, played one after another
                offset += last
        else:
            structure.repaired[f"foreign chunk {chunk_id!r} skipped"] += 1
        position = body + chunk_length
    if position < len(data):
        structure.repaired["trailing bytes after the last chunk ignored"] += 1
    if not tracks:
        raise MidiError("no MTrk track chunk")
    if declared_tracks != len(tracks):
        structure.repaired[f"header declares {declared_tracks} tracks, file has {len(tracks)}"] += 1
    header = data[:10] + len(tracks).to_bytes(2, "big") + data[12:14]
    structure.tracks = len(tracks)
    structure.data = header + b"".join(b"MTrk" + len(track).to_bytes(4, "big") + track for track in tracks)
    return structure
