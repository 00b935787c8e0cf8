"""Scores exported to MIDI (rollgen.music.corpus): pickups carry a time signature of their own length."""

from fractions import Fraction

import pytest

from rollgen.music.corpus import mark_pickups, score_to_midi
from rollgen.music.smf import check_structure


def plain_export(path) -> bytes:
    """The score's MIDI as music21 writes it, pickups unmarked."""
    from music21 import converter
    from music21.midi import translate

    return translate.music21ObjectToMidiFile(converter.parse(path, forceSource=True)).writestr()


def note_events(data: bytes) -> tuple[list[int], list[int], list[int]]:
    structure = check_structure(data)
    return structure.note_ticks.tolist(), structure.note_tracks.tolist(), structure.note_codes.tolist()


def in_quarters(data: bytes) -> list[tuple[Fraction, int, int]]:
    """A file's time signatures, (quarter notes from the start, numerator, denominator), without repeats."""
    structure = check_structure(data)
    signatures = [(Fraction(tick, structure.ticks_per_quarter), n, d) for tick, n, d in structure.time_signatures]
    return sorted(set(signatures))


def test_pickups_get_their_own_time_signature_and_no_note_moves(chorale_files):
    for path in chorale_files[:4]:  # bwv1.6 (a pickup), bwv10.7 (none), bwv101.7 and bwv102.7 (mid-piece too)
        before, after = plain_export(path), score_to_midi(path)
        assert note_events(after) == note_events(before), path.name
        if path.name == "bwv10.7.mxl":  # no pickup: the very same file
            assert after == before
    bwv1_6 = score_to_midi(chorale_files[0])
    assert in_quarters(plain_export(chorale_files[0])) == [(0, 4, 4)]  # the export's own: one beat off
    assert in_quarters(bwv1_6) == [(0, 1, 4), (1, 4, 4)]  # a 1/4 pickup, then the real 4/4
    # Phrases split at fermatas: a 3-beat bar, then a 1-beat pickup to the next phrase.
    assert in_quarters(score_to_midi(chorale_files[2])) == [
        *((0, 1, 4), (1, 4, 4)),
        *((16, 1, 4), (17, 4, 4)),
        *((32, 1, 4), (33, 4, 4)),
    ]


@pytest.mark.parametrize(
    ("meter", "pickup", "marked"),
    [("4/4", 1, "1/4"), ("6/8", Fraction(1, 2), "1/8"), ("6/8", Fraction(3, 2), "3/8"), ("2/2", 1, "1/4")],
)
def test_a_pickup_is_as_long_as_its_time_signature(meter, pickup, marked):
    from music21 import meter as m21meter
    from music21 import note, stream

    part = stream.Part()
    first = stream.Measure(number=0)
    first.timeSignature = m21meter.TimeSignature(meter)
    first.append(note.Note(60, quarterLength=pickup))
    first.paddingLeft = first.timeSignature.barDuration.quarterLength - pickup
    full = stream.Measure(number=1)
    full.append(note.Note(62, quarterLength=first.timeSignature.barDuration.quarterLength))
    part.append([first, full])
    assert mark_pickups(part) == 1
    assert (first.timeSignature.ratioString, full.timeSignature.ratioString) == (marked, meter)
