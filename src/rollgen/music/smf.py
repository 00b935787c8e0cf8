"""Standard MIDI File structure, checked event by event; the note events are kept as the walk decodes them.

py_midicsv trusts what a file says: a track length of 0xFFFFFFFF makes it allocate 4 GiB, it reads the
payload of a meta event it does not know as further events (phantom notes), ends a truncated track
silently and validates with `assert`. music21 guesses at running status without a status byte and drops
data bytes above 127 without a word. So every track is walked here first: what is broken is rejected with
a reason a person can act on, and what is merely odd is repaired and counted.

The walk decodes every event to find the next one, so it keeps the note-on and note-off events it passes:
rollgen.music.midi reads the notes from them, in a single pass, about 10x faster than a py_midicsv parse of the
same bytes. On request (`rebuild=True`) the walk also writes the file out again with its repairs applied,
for py_midicsv, which stays as the reference reader the fast one is tested against.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from py_midicsv.midi.events import EventRegistry

from rollgen.errors import RollgenError

# Meta events py_midicsv decodes; any other is dropped here (its time folded into the next event).
KNOWN_META = frozenset(EventRegistry.MetaEvents)
# The payload lengths py_midicsv insists on (it raises otherwise): a known meta event of another length is
# dropped here too, except a tempo event, which must be right to time the file.
META_LENGTHS = {kind: event.length for kind, event in EventRegistry.MetaEvents.items() if isinstance(event.length, int)}
END_OF_TRACK = 0x2F
TEMPO = 0x51
TIME_SIGNATURE = 0x58  # numerator, denominator as a power of two, MIDI clocks per click, 32nds per quarter
MAX_DENOMINATOR_POWER = 6  # 1/64 notes; a larger power is a corrupt byte, not music
DEFAULT_TEMPO = 500_000  # microseconds per quarter note when a file sets none (120 bpm)


class MidiError(RollgenError, ValueError):
    """A MIDI file rollgen cannot use; the message is the reason recorded in the manifest."""


@dataclass
class Structure:
    """What the walk found: the file's timing, its note events and, when rebuilt, the bytes to parse."""

    data: bytes  # the file with its repairs applied (rebuild=True), else b""
    file_format: int
    ticks_per_quarter: int
    tracks: int
    last_tick: int  # latest event time, in ticks (tracks one after another for format 2)
    track_offsets: list[int] = field(default_factory=list)  # each track's start tick (non-zero in format 2 only)
    track_ends: list[int] = field(default_factory=list)  # each track's end tick, from the start of the file
    tempo_changes: list[tuple[int, int]] = field(default_factory=list)  # (tick, microseconds per quarter)
    # (tick, numerator, denominator as a note value: 4 = quarter), in file order; ticks from the file's start
    time_signatures: list[tuple[int, int, int]] = field(default_factory=list)
    repaired: Counter = field(default_factory=Counter)
    # Note-on and note-off events in file order (track by track), as decoded by the walk:
    note_ticks: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # ticks from the file's start
    note_tracks: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # track index, from 0
    note_codes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # status<<16 | pitch<<8 | velocity

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


def _rest_of_variable_length(body: bytes, position: int, first: int, track: int) -> tuple[int, int]:
    """A variable-length quantity whose first byte `first` (high bit set) was read before `position`: its
    value and the position after it. Runs past the track raise IndexError (a truncated track)."""
    value = first & 0x7F
    for _ in range(3):
        byte = body[position]
        position += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, position
    raise MidiError(f"track {track}: variable-length number longer than 4 bytes")


def _skip_payload(body: bytes, position: int, end: int, track: int, what: str) -> tuple[int, int]:
    """A meta or SysEx event's payload: reads its variable-length size at `position`, checks that it ends
    inside the track, and gives (size, position after the payload)."""
    length = body[position]
    position += 1
    if length > 0x7F:
        length, position = _rest_of_variable_length(body, position, length, track)
    if position + length > end:
        raise MidiError(f"track {track}: {what} runs past the end of the track")
    return length, position + length


def encode_variable_length(value: int) -> bytes:
    """A delta time or length as a MIDI variable-length quantity (7 bits a byte, high bit = more follows)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _walk_track(
    body: bytes,
    track: int,
    offset: int,
    max_ticks: int,
    structure: Structure,
    notes: tuple[list[int], list[int]],
    out: bytearray | None,
) -> int:
    """Checks the events of one track chunk (`body`, its bytes) and gives its last tick (from its start).

    Appends the tick and code (status<<16 | pitch<<8 | velocity) of every note event to `notes`; writes the
    track again, repaired, to `out` unless it is None. Long because it is one loop with the common cases
    inline: the hot path of reading MIDI.
    """
    note_ticks, note_codes = notes
    tick_limit = max_ticks - offset
    position, tick, running_status, carried_delta, end = 0, 0, 0, 0, len(body)
    ended = False
    try:
        while position < end:
            delta = body[position]
            position += 1
            if delta > 0x7F:  # two bytes inline (most deltas of a 480 or 10080 ticks-per-quarter file)
                second = body[position]
                if second > 0x7F:
                    delta, position = _rest_of_variable_length(body, position, delta, track)
                else:
                    delta = ((delta & 0x7F) << 7) | second
                    position += 1
            tick += delta
            if tick > tick_limit:
                quarters, limit = (
                    (offset + tick) // structure.ticks_per_quarter,
                    max_ticks // structure.ticks_per_quarter,
                )
                raise MidiError(f"absurd length: track {track} reaches {quarters} quarter notes (limit {limit})")
            event_start = position
            status = body[position]
            if status > 0x7F:
                position += 1
                if status < 0xF0:
                    running_status = status
            elif running_status:
                status = running_status
            else:
                raise MidiError(
                    f"track {track}: data byte 0x{status:02X} where a status byte must be (no running status)"
                )
            keep = True
            if status < 0xA0:  # note off (0x8n) or note on (0x9n): pitch, velocity
                code = (status << 16) | (body[position] << 8) | body[position + 1]
                if code & 0x8080:
                    raise MidiError(f"track {track}: data byte above 127 in a channel message at tick {tick}")
                position += 2
                note_ticks.append(tick)
                note_codes.append(code)
                if out is None:
                    continue
            elif status < 0xF0:  # other channel messages: one or two data bytes
                if 0xC0 <= status < 0xE0:
                    high = body[position] & 0x80
                    position += 1
                else:
                    high = (body[position] | body[position + 1]) & 0x80
                    position += 2
                if high:
                    raise MidiError(f"track {track}: data byte above 127 in a channel message at tick {tick}")
            elif status == 0xFF:
                kind = body[position]
                length, position = _skip_payload(body, position + 1, end, track, f"meta event 0x{kind:02X}")
                if kind == TEMPO:
                    if length != 3:
                        raise MidiError(f"track {track}: tempo event of {length} bytes (expected 3)")
                    tempo = int.from_bytes(body[position - 3 : position], "big")
                    if tempo == 0:
                        raise MidiError(f"track {track}: tempo 0 at tick {tick}")
                    structure.tempo_changes.append((offset + tick, tempo))
                elif kind == TIME_SIGNATURE and length == 4:  # rare: checked here, not on the note path
                    numerator, power = body[position - 4], body[position - 3]
                    if numerator == 0 or power > MAX_DENOMINATOR_POWER:
                        keep = False
                        what = "numerator 0" if numerator == 0 else f"denominator 2^{power}"
                        structure.repaired[f"time signature with {what} skipped"] += 1
                    else:
                        structure.time_signatures.append((offset + tick, numerator, 1 << power))
                elif kind == END_OF_TRACK:
                    ended = True
                    if length:  # written again without its data
                        keep = False
                        structure.repaired["end-of-track event with data"] += 1
                elif kind not in KNOWN_META:
                    keep = False
                    structure.repaired[f"unknown meta event 0x{kind:02X} skipped"] += 1
                elif META_LENGTHS.get(kind, length) != length:
                    keep = False
                    structure.repaired[f"meta event 0x{kind:02X} of length {length} skipped"] += 1
            elif status == 0xF0 or status == 0xF7:  # SysEx: a length, then that many bytes
                _, position = _skip_payload(body, position, end, track, "SysEx event")
            else:
                raise MidiError(f"track {track}: status byte 0x{status:02X} is not allowed in a MIDI file")
            if out is not None:
                if keep:
                    out += encode_variable_length(carried_delta + delta) + body[event_start:position]
                    carried_delta = 0
                else:
                    carried_delta += delta
            if ended:
                break
    except IndexError:  # an event, or a number in one, goes on past the end of the chunk
        raise MidiError(f"truncated track {track}") from None
    if not ended:
        structure.repaired["track without end-of-track event"] += 1
    if out is not None and (not ended or not keep):
        out += encode_variable_length(carried_delta) + bytes([0xFF, END_OF_TRACK, 0])
    return tick


def check_structure(data: bytes, max_quarters: float = 1_000_000, rebuild: bool = False) -> Structure:
    """Walks the header and every event of a MIDI file (RIFF-wrapped or not); gives its timing and note events.

    Raises MidiError for what cannot be read or is absurd (before anything the size of the music is
    allocated). With `rebuild`, `Structure.data` is the file written again for py_midicsv, with unknown or
    misshapen meta events and foreign chunks left out and missing end-of-track events added; each repair
    is counted either way.

    Long because the header, the chunk walk and the rebuilt file share one running offset and byte buffer;
    each track's events are walked by `_walk_track`.
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
    notes: tuple[list[int], list[int]] = ([], [])
    notes_per_track: list[int] = []
    position, offset = 14, 0
    while position + 8 <= len(data):
        chunk_id = data[position : position + 4]
        chunk_length = int.from_bytes(data[position + 4 : position + 8], "big")
        body = position + 8
        if body + chunk_length > len(data):
            name = f"track {len(structure.track_offsets) + 1}" if chunk_id == b"MTrk" else f"chunk {chunk_id!r}"
            raise MidiError(f"truncated {name}: declares {chunk_length} bytes, {len(data) - body} remain")
        if chunk_id == b"MTrk":
            number = len(structure.track_offsets) + 1
            out = bytearray() if rebuild else None
            before = len(notes[0])
            last = _walk_track(data[body : body + chunk_length], number, offset, max_ticks, structure, notes, out)
            notes_per_track.append(len(notes[0]) - before)
            if out is not None:
                tracks.append(bytes(out))
            structure.track_offsets.append(offset)
            structure.track_ends.append(offset + last)
            structure.last_tick = max(structure.last_tick, offset + last)
            if file_format == 2:  # independent sequences, played one after another
                offset += last
        else:
            structure.repaired[f"foreign chunk {chunk_id!r} skipped"] += 1
        position = body + chunk_length
    if position < len(data):
        structure.repaired["trailing bytes after the last chunk ignored"] += 1
    structure.tracks = len(structure.track_offsets)
    if not structure.tracks:
        raise MidiError("no MTrk track chunk")
    if declared_tracks != structure.tracks:
        structure.repaired[f"header declares {declared_tracks} tracks, file has {structure.tracks}"] += 1
    structure.note_tracks = np.repeat(np.arange(structure.tracks), notes_per_track)
    structure.note_ticks = (
        np.asarray(notes[0], dtype=np.int64) + np.asarray(structure.track_offsets)[structure.note_tracks]
    )
    structure.note_codes = np.asarray(notes[1], dtype=np.int64)
    if rebuild:
        header = data[:10] + structure.tracks.to_bytes(2, "big") + data[12:14]
        structure.data = header + b"".join(b"MTrk" + len(track).to_bytes(4, "big") + track for track in tracks)
    return structure
