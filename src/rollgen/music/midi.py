"""MIDI files <-> notes: reading from rollgen.music.smf's checked events (py_midicsv as the reference), exact ticks;
writing with music21 (as the article)."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import py_midicsv
from py_midicsv.midi.fileio import ParseError, ValidationError

from rollgen.music.smf import MidiError, Structure, check_structure

DRUM_CHANNEL = 9  # MIDI channel 10, counted from zero as in the file


@dataclass(frozen=True)
class Piece:
    """The notes of one MIDI file, sorted by onset, pitch, release. Times are ticks; see `ticks_per_quarter`."""

    ticks_per_quarter: int
    pitches: np.ndarray  # MIDI note numbers 0..127
    starts: np.ndarray  # onset, ticks from the start of the file
    ends: np.ndarray  # release, ticks from the start of the file
    dropped: Counter = field(default_factory=Counter)  # notes left out, by reason
    repaired: Counter = field(default_factory=Counter)  # fix-ups of notes and events, by reason
    seconds: float = 0.0  # length under the file's tempo map
    # (tick, numerator, denominator as a note value: 4 = quarter) from the file's time-signature events, sorted
    # by tick (file order among events at one tick); rollgen.music.meter turns them into positions in the bar
    time_signatures: tuple[tuple[int, int, int], ...] = ()

    @property
    def length_quarters(self) -> Fraction:
        """Time from the start of the file to the last release, in quarter notes."""
        last = int(self.ends.max()) if len(self.ends) else 0
        return Fraction(last, self.ticks_per_quarter)


PARSERS = ("fast", "py_midicsv")
# Why a note of the file is not in the Piece (Piece.dropped): rollgen.data.ingest tallies them by these names.
DRUMS = "drums (channel 10)"
ZERO_LENGTH = "zero length"
OFF_BEFORE_ON = "zero length (note-off written before its note-on)"
NEVER_SWITCHED_OFF = "never switched off (ended at track end)"


def read_midi(data: bytes, include_drums: bool = False, max_quarters: float = 1_000_000, parser: str = "fast") -> Piece:
    """The notes of a MIDI file given as bytes (type 0, 1, or 2 with its tracks played one after another).

    The structure is checked first (rollgen.music.smf); a file longer than `max_quarters` is rejected there,
    before anything its size is allocated. Policies (why: real files do all of these): a note-on with
    velocity 0 is a note-off; a second note-on of a sounding pitch on the same track and channel ends
    the first one there (retrigger); a note never switched off ends at its track's end; a note-off with
    nothing sounding is ignored. One exception: a note-on that comes right after such a note-off, of the
    same pitch at the same tick, and is never switched off itself (only a retrigger or the track's end
    ends it) is a zero-length note written off first, as music21 writes grace notes, and is dropped.
    Times stay in ticks: tempo changes do not move the grid. Time signatures are the structure check's,
    whichever parser (a corrupt one is skipped there and counted in `repaired`).

    `parser`: "fast" takes the note events the structure check decoded and pairs them with NumPy;
    "py_midicsv" parses the checked file again with py_midicsv and pairs its events one at a time. The
    second is the reference the first is tested against (identical pieces); the first is ~10x faster.
    """
    if parser == "fast":
        structure = check_structure(data, max_quarters=max_quarters)
        pitches, starts, ends, dropped, repaired = _pair_note_events(structure, include_drums)
    elif parser == "py_midicsv":
        structure = check_structure(data, max_quarters=max_quarters, rebuild=True)
        pitches, starts, ends, dropped, repaired = _pair_py_midicsv_events(structure, include_drums)
    else:
        raise ValueError(f"parser must be one of {PARSERS}, not '{parser}'")
    pitches = np.asarray(pitches, dtype=np.int16)
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    order = np.lexsort((ends, pitches, starts))  # onset, pitch, release: one order whichever parser
    return Piece(
        ticks_per_quarter=structure.ticks_per_quarter,
        pitches=pitches[order],
        starts=starts[order],
        ends=ends[order],
        dropped=dropped,
        repaired=repaired,
        seconds=structure.seconds(),
        time_signatures=tuple(sorted(structure.time_signatures, key=lambda signature: signature[0])),
    )


def _pair_note_events(structure: Structure, include_drums: bool) -> tuple:
    """Notes from the walk's note events, all at once: (pitches, starts, ends, dropped, repaired).

    Under the policies of `read_midi`, every note event ends the note its key (track, channel, pitch) had
    sounding, so after a stable sort by key each note-on is ended by the next event of its key, or by its
    track's end when there is none.
    """
    dropped: Counter = Counter()
    repaired: Counter = Counter(structure.repaired)
    codes, ticks, tracks = structure.note_codes, structure.note_ticks, structure.note_tracks
    status = codes >> 16
    channels = status & 0x0F
    is_on = (status >= 0x90) & ((codes & 0x7F) > 0)
    if not include_drums and (drums := channels == DRUM_CHANNEL).any():
        if count := int((drums & is_on).sum()):
            dropped[DRUMS] = count
        others = ~drums
        codes, ticks, tracks, channels, is_on = (array[others] for array in (codes, ticks, tracks, channels, is_on))
    pitches = (codes >> 8) & 0x7F
    keys = (tracks << 11) | (channels << 7) | pitches
    order = np.argsort(keys, kind="stable")  # by key, and in file order within a key
    keys = keys[order]
    ticks, tracks, is_on, pitches = ticks[order], tracks[order], is_on[order], pitches[order]
    # Each event's neighbours within its key: same_as_next[i] says event i + 1 is of the same key.
    same_as_next = np.zeros(len(keys), dtype=bool)
    same_as_next[:-1] = keys[1:] == keys[:-1]
    same_as_previous = np.zeros(len(keys), dtype=bool)
    same_as_previous[1:] = same_as_next[:-1]
    previous_is_on, next_is_on = np.zeros(len(keys), dtype=bool), np.zeros(len(keys), dtype=bool)
    previous_is_on[1:], next_is_on[:-1] = is_on[:-1], is_on[1:]
    ends = np.asarray(structure.track_ends, dtype=np.int64)[tracks]
    ends[:-1] = np.where(same_as_next[:-1], ticks[1:], ends[:-1])
    # A note-off with nothing sounding (the event before it of its key is no note-on), then a note-on of the
    # key at the same tick that no note-off ends: one zero-length note, written off first.
    silent_off = ~is_on & ~(same_as_previous & previous_is_on)
    after_silent_off = np.zeros(len(keys), dtype=bool)
    after_silent_off[1:] = silent_off[:-1] & same_as_previous[1:] & (ticks[1:] == ticks[:-1])
    zero_length = is_on & (ends == ticks)
    off_before_on = is_on & after_silent_off & ~(same_as_next & ~next_is_on) & ~zero_length
    sounding = is_on & ~off_before_on
    counts = {OFF_BEFORE_ON: int(off_before_on.sum()), ZERO_LENGTH: int(zero_length.sum())}
    dropped.update({reason: count for reason, count in counts.items() if count})
    if at_track_end := int((sounding & ~same_as_next).sum()):
        repaired[NEVER_SWITCHED_OFF] += at_track_end
    keep = sounding & (ends > ticks)
    return pitches[keep], ticks[keep], ends[keep], dropped, repaired


def _pair_py_midicsv_events(structure: Structure, include_drums: bool) -> tuple:
    """Notes from py_midicsv's parse of the rebuilt file, one event at a time: the reference reader.

    Long because it is one event loop over shared state (open notes, silent note-offs, track ends) with the
    two closures that end notes; cut into functions, that state would travel through every call."""
    try:
        rows = py_midicsv.midi_to_csv(io.BytesIO(structure.data), strict=True)
    except (
        *(AssertionError, ValueError, TypeError, IndexError, KeyError, EOFError),
        *(ParseError, ValidationError),
    ) as error:
        detail = str(error) or type(error).__name__
        raise MidiError(f"unreadable MIDI events: {detail}") from error

    offsets = structure.track_offsets
    open_notes: dict[tuple[int, int, int], tuple[int, bool]] = {}  # key -> (onset, written off first)
    silent_offs: dict[tuple[int, int, int], int] = {}  # key -> tick of a note-off with nothing sounding
    track_end: dict[int, int] = {}
    pitches: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    dropped: Counter = Counter()
    repaired: Counter = Counter(structure.repaired)

    def close(key: tuple[int, int, int], tick: int, by_note_off: bool) -> None:
        start, off_first = open_notes.pop(key)
        if tick <= start:
            dropped[ZERO_LENGTH] += 1
        elif off_first and not by_note_off:
            dropped[OFF_BEFORE_ON] += 1
        else:
            pitches.append(key[2])
            starts.append(start)
            ends.append(tick)

    def close_track(track: int) -> None:
        for key in [key for key in open_notes if key[0] == track]:
            start, off_first = open_notes[key]
            if not off_first or track_end[track] <= start:
                repaired[NEVER_SWITCHED_OFF] += 1
            close(key, track_end[track], by_note_off=False)

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
            is_on = kind == "Note_on_c" and velocity > 0
            if channel == DRUM_CHANNEL and not include_drums:
                if is_on:
                    dropped[DRUMS] += 1
                continue
            key = (track, channel, pitch)
            silent_off = silent_offs.pop(key, None)
            if key in open_notes:  # its note-off, or a retrigger of a sounding pitch
                close(key, tick, by_note_off=not is_on)
            elif not is_on:
                silent_offs[key] = tick
            if is_on:
                open_notes[key] = (tick, silent_off == tick)
        elif kind == "End_track":
            track = int(fields[0])
            tick = int(fields[1]) + offsets[track - 1]
            track_end[track] = max(track_end.get(track, 0), tick)
            close_track(track)
    for track in sorted({key[0] for key in open_notes}):  # a track whose End_track event is missing
        close_track(track)
    return pitches, starts, ends, dropped, repaired


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
    *,
    tempo_bpm: float,
    time_signatures: Sequence[tuple[Fraction, int, int]] = (),
) -> bytes:
    """MIDI bytes for notes given in quarter notes, written with music21 (piano, one track), with a time
    signature (numerator, denominator) from each start in quarter notes; 4/4 where none is given."""
    from music21 import instrument, meter, note, stream, tempo
    from music21.midi import translate

    part = stream.Stream()
    part.insert(0, instrument.Piano())
    part.insert(0, tempo.MetronomeMark(number=tempo_bpm))
    for start, numerator, denominator in time_signatures:
        part.insert(start, meter.TimeSignature(f"{numerator}/{denominator}"))
    for pitch, start, duration in zip(pitches, starts, durations):
        sounding = note.Note(int(pitch), quarterLength=duration)
        part.insert(start, sounding)
    return translate.music21ObjectToMidiFile(part).writestr()
