"""Reading MIDI into notes (smf's events; py_midicsv as the reference) and writing notes back (music21)."""

from fractions import Fraction

import numpy as np
import pytest

from rollgen.music.midi import OFF_BEFORE_ON, PARSERS, MidiError, read_midi, write_midi
from rollgen.music.smf import check_structure
from tests.conftest import build_midi
from tests.defaults import TEMPO_BPM


def notes_of(piece):
    return list(zip(piece.pitches.tolist(), piece.starts.tolist(), piece.ends.tolist()))


@pytest.mark.parametrize("parser", PARSERS)
def test_known_events_give_known_notes(parser):
    data = build_midi(
        [
            ["0, Tempo, 500000"],
            [
                "0, Note_on_c, 0, 60, 90",
                "480, Note_on_c, 0, 60, 0",  # velocity 0 ends the note
                "480, Note_on_c, 0, 64, 90",
                "720, Note_on_c, 0, 64, 80",  # retrigger: the first E ends here
                "960, Note_off_c, 0, 64, 0",
                "960, Note_on_c, 0, 67, 90",  # never switched off: ends at the track's end
                "960, Note_on_c, 9, 36, 100",  # drums are left out by default
                "960, Note_off_c, 0, 50, 0",  # a note-off with nothing sounding is ignored
                "1440, Note_off_c, 9, 36, 0",
            ],
        ]
    )
    piece = read_midi(data, parser=parser)
    assert piece.ticks_per_quarter == 480
    assert notes_of(piece) == [(60, 0, 480), (64, 480, 720), (64, 720, 960), (67, 960, 1440)]
    assert piece.dropped == {"drums (channel 10)": 1}
    assert piece.repaired == {"never switched off (ended at track end)": 1}
    assert piece.length_quarters == 3
    with_drums = read_midi(data, include_drums=True, parser=parser)
    assert (36, 960, 1440) in notes_of(with_drums)


@pytest.mark.parametrize("parser", PARSERS)
def test_a_note_off_written_before_its_note_on_is_a_zero_length_note(parser):
    # music21 writes a grace note (0 quarter lengths) as a note-off, then a note-on, at one tick: the off first.
    data = build_midi(
        [
            [
                "0, Note_on_c, 0, 60, 90",
                "480, Note_off_c, 0, 60, 0",
                "480, Note_off_c, 0, 74, 0",  # a grace D, the last D of the track: no note-off will follow
                "480, Note_on_c, 0, 74, 90",
                "480, Note_on_c, 0, 72, 90",
                "960, Note_off_c, 0, 72, 0",
                "960, Note_off_c, 0, 72, 0",  # a grace C right after a C: ended only by the next C's note-on
                "960, Note_on_c, 0, 72, 90",
                "1440, Note_on_c, 0, 72, 90",
                "1920, Note_off_c, 0, 72, 0",
            ]
        ]
    )
    piece = read_midi(data, parser=parser)
    assert notes_of(piece) == [(60, 0, 480), (72, 480, 960), (72, 1440, 1920)]  # not held to the end, nor to 1440
    assert piece.dropped == {OFF_BEFORE_ON: 2} and not piece.repaired


@pytest.mark.parametrize("parser", PARSERS)
def test_a_stray_note_off_does_not_swallow_the_next_note(parser):
    data = build_midi(
        [
            [
                "0, Note_on_c, 0, 64, 90",
                "0, Note_on_c, 0, 64, 90",  # two voices in unison: the second note-on retriggers the first
                "480, Note_off_c, 0, 64, 0",
                "480, Note_off_c, 0, 64, 0",  # finds nothing sounding
                "480, Note_on_c, 0, 64, 90",  # the next note, ended by a note-off of its own: a real note
                "960, Note_off_c, 0, 64, 0",
            ]
        ]
    )
    piece = read_midi(data, parser=parser)
    assert notes_of(piece) == [(64, 0, 480), (64, 480, 960)]
    assert piece.dropped == {"zero length": 1}


def test_both_parsers_read_chorales_alike(chorale_midi_dir):
    for path in sorted(chorale_midi_dir.iterdir()):
        fast, reference = (read_midi(path.read_bytes(), parser=parser) for parser in PARSERS)
        assert notes_of(fast) == notes_of(reference) and len(notes_of(fast)) > 100
        assert (fast.dropped, fast.repaired, fast.seconds) == (reference.dropped, reference.repaired, reference.seconds)
        assert fast.time_signatures == reference.time_signatures and fast.time_signatures


def test_notes_on_several_tracks_are_merged_and_sorted():
    data = build_midi(
        [
            ["240, Note_on_c, 1, 72, 90", "480, Note_off_c, 1, 72, 0"],
            ["0, Note_on_c, 0, 48, 90", "480, Note_off_c, 0, 48, 0"],
        ]
    )
    assert notes_of(read_midi(data)) == [(48, 0, 480), (72, 240, 480)]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a MIDI file"),
        (b"hello, this is text, not music", "not a MIDI file"),
        (b"MThd\x00\x00\x00\x07\x00\x01\x00\x01\x01\xe0\x00", "bad MIDI header length 7"),
        (b"MThd\x00\x00\x00\x06\x00\x05\x00\x01\x01\xe0", "unknown MIDI format 5"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\xe7\x28MTrk\x00\x00\x00\x04\x00\xff\x2f\x00", "SMPTE"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x00\x00MTrk\x00\x00\x00\x04\x00\xff\x2f\x00", "0 ticks"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\xff\xff\xff\xff\x00\x90", "truncated track 1"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0", "no MTrk"),
    ],
)
def test_broken_files_are_rejected_with_their_reason(data, reason):
    with pytest.raises(MidiError, match=reason):
        check_structure(data)
    for parser in PARSERS:
        with pytest.raises(MidiError, match=reason):
            read_midi(data, parser=parser)


def test_truncated_real_file_is_rejected(chorale_midi_dir):
    data = sorted(chorale_midi_dir.iterdir())[0].read_bytes()
    with pytest.raises(MidiError, match="truncated track"):
        read_midi(data[: len(data) // 2])


def test_written_midi_reads_back_as_the_same_notes():
    pitches = [60, 64, 67, 72]
    starts = [Fraction(0), Fraction(1, 4), Fraction(1, 2), Fraction(3, 2)]
    durations = [Fraction(1), Fraction(3, 4), Fraction(1, 4), Fraction(5, 2)]
    piece = read_midi(write_midi(pitches, starts, durations, tempo_bpm=90))
    quarters = [
        (pitch, Fraction(start, piece.ticks_per_quarter), Fraction(end - start, piece.ticks_per_quarter))
        for pitch, start, end in notes_of(piece)
    ]
    assert quarters == sorted(zip(pitches, starts, durations), key=lambda note: (note[1], note[0]))
    assert np.all(piece.ends > piece.starts)


def test_riff_wrapped_midi_is_unwrapped():
    inner = build_midi([["0, Note_on_c, 0, 60, 90", "480, Note_off_c, 0, 60, 0"]])
    if len(inner) % 2:
        inner += b"\0"
    data_chunk = b"data" + len(inner).to_bytes(4, "little") + inner
    wrapped = b"RIFF" + (4 + len(data_chunk)).to_bytes(4, "little") + b"RMID" + data_chunk
    assert notes_of(read_midi(wrapped)) == [(60, 0, 480)]


@pytest.mark.parametrize("parser", PARSERS)
def test_time_signatures_are_read_from_every_track_and_sorted_by_tick(parser):
    data = build_midi(
        [
            ["0, Time_signature, 4, 2, 24, 8", "3840, Time_signature, 3, 2, 24, 8"],  # 4/4, then 3/4 at bar 3
            ["0, Note_on_c, 0, 60, 90", "1920, Time_signature, 6, 3, 36, 8", "5760, Note_off_c, 0, 60, 0"],
        ]
    )
    piece = read_midi(data, parser=parser)
    assert piece.time_signatures == ((0, 4, 4), (1920, 6, 8), (3840, 3, 4))  # the denominator as a note value
    assert not piece.repaired


@pytest.mark.parametrize("parser", PARSERS)
def test_a_corrupt_time_signature_is_skipped_and_counted(parser):
    data = build_midi(
        [
            [
                "0, Time_signature, 0, 2, 24, 8",  # numerator 0
                "480, Time_signature, 3, 9, 24, 8",  # 3/512
                "960, Time_signature, 3, 2, 24, 8",
                "0, Note_on_c, 0, 60, 90",
                "1920, Note_off_c, 0, 60, 0",
            ]
        ]
    )
    piece = read_midi(data, parser=parser)
    assert piece.time_signatures == ((960, 3, 4),)
    assert piece.repaired == {
        "time signature with numerator 0 skipped": 1,
        "time signature with denominator 2^9 skipped": 1,
    }
    assert notes_of(piece) == [(60, 0, 1920)]


def test_time_signatures_of_format_2_tracks_count_from_the_file_start():
    events = ["0, Time_signature, 3, 2, 24, 8", "0, Note_on_c, 0, 60, 90", "1440, Note_off_c, 0, 60, 0"]
    single = build_midi([events])
    data = single[:8] + b"\x00\x02\x00\x02" + single[12:14] + single[14:] * 2  # the one track, twice, format 2
    assert read_midi(data).time_signatures == ((0, 3, 4), (1440, 3, 4))


def test_written_time_signatures_read_back_at_their_ticks():
    """A waltz stays a waltz: the time signatures given in quarter notes are in the written file (4/4 where
    none is given, as MIDI's default)."""
    signatures = [(Fraction(0), 3, 4), (Fraction(6), 6, 8), (Fraction(12), 1, 16)]
    piece = read_midi(write_midi([60], [Fraction(0)], [Fraction(13)], tempo_bpm=TEMPO_BPM, time_signatures=signatures))
    tick = piece.ticks_per_quarter
    assert piece.time_signatures == ((0, 3, 4), (6 * tick, 6, 8), (12 * tick, 1, 16))
    assert read_midi(write_midi([60], [Fraction(0)], [Fraction(1)], tempo_bpm=TEMPO_BPM)).time_signatures == (
        (0, 4, 4),
    )
    assert write_midi(
        [60], [Fraction(0)], [Fraction(1)], tempo_bpm=TEMPO_BPM, time_signatures=[(Fraction(0), 4, 4)]
    ) == write_midi(
        [60], [Fraction(0)], [Fraction(1)], tempo_bpm=TEMPO_BPM
    )  # 4/4 given is the file written without one, byte for byte
