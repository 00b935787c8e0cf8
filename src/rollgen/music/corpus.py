"""Scores that are not MIDI (music21's bundled corpus, MusicXML, Humdrum, ABC) exported to MIDI bytes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

MUSIC21_PREFIX = "music21:"
# Files music21 reads as scores; .rntxt (Roman-numeral analyses) are harmony sketches, not chorales.
SCORE_SUFFIXES = frozenset({".mxl", ".xml", ".musicxml", ".krn", ".abc"})


def music21_corpus_files(composer: str) -> tuple[Path, list[Path]]:
    """The corpus folder and the score files music21 ships for `composer` (e.g. 'bach'), sorted."""
    from music21 import corpus

    files = sorted(path for path in corpus.getComposer(composer) if path.suffix.lower() in SCORE_SUFFIXES)
    if not files:
        raise ValueError(f"music21's corpus has no scores for composer '{composer}'")
    return Path(corpus.__file__).resolve().parent, files


def score_to_midi(path: Path) -> bytes:
    """MIDI bytes of a score file, converted by music21 as the article did, with its pickups marked
    (`mark_pickups`) so the file's time signatures put the bar lines where the score has them."""
    from music21 import converter
    from music21.midi import translate

    score = converter.parse(path, forceSource=True)
    mark_pickups(score)
    return translate.music21ObjectToMidiFile(score).writestr()


def mark_pickups(score) -> int:
    """The number of pickups marked in `score` (a music21 Score, Opus or Part), in place: every partial measure
    (paddingLeft > 0: a pickup, at the start or after a phrase split at a fermata) gets a time signature of
    its own length (1/4; 1/8 for half a beat), and the measure after it the real one, explicitly.

    music21's MIDI export writes only the time signatures the measures carry, so a one-beat pickup in 4/4
    becomes 4/4 from tick 0 and every later bar line lands a beat off. Marked, the pickup is a one-bar
    segment shorter than the bar that follows: rollgen.music.meter counts it as the end of that bar. Repeat
    expansion (in the export) copies the marks with the measures. Notes are not touched.
    """
    from music21 import meter, stream

    is_part = isinstance(score, stream.Part)
    parts = [score] if is_part else score.recurse(streamsOnly=True).getElementsByClass(stream.Part)
    marked = 0
    for part in parts:
        measures = list(part.getElementsByClass(stream.Measure))
        real = meter.TimeSignature("4/4")  # music21's default when a part has none
        for number, measure in enumerate(measures):
            if measure.timeSignature is not None:
                real = measure.timeSignature
            length = Fraction(measure.duration.quarterLength)
            if not measure.paddingLeft > 0 or not 0 < length < Fraction(real.barDuration.quarterLength):
                continue
            own = _time_signature_of_length(length, real.denominator)
            if own is None:  # not a whole number of 1/64 notes (a tuplet's length): leave it unmarked
                continue
            if number + 1 < len(measures) and measures[number + 1].timeSignature is None:
                measures[number + 1].timeSignature = meter.TimeSignature(real.ratioString)
            measure.timeSignature = meter.TimeSignature(own)
            marked += 1
    return marked


def _time_signature_of_length(quarters: Fraction, denominator: int) -> str | None:
    """'N/D' lasting `quarters` quarter notes, with D the piece's own denominator or the first finer one that
    fits (1/4, 1/8 for half a beat ...), or None when no denominator up to 64 does."""
    while denominator <= 64:
        numerator = quarters * denominator / 4
        if numerator.denominator == 1:
            return f"{numerator.numerator}/{denominator}"
        denominator *= 2
    return None
