"""Scores that are not MIDI (music21's bundled corpus, MusicXML, Humdrum, ABC) exported to MIDI bytes."""

from __future__ import annotations

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
    return Path(corpus.__file__).parent, files


def score_to_midi(path: Path) -> bytes:
    """MIDI bytes of a score file, converted by music21 as the article did."""
    from music21 import converter
    from music21.midi import translate

    score = converter.parse(path, forceSource=True)
    return translate.music21ObjectToMidiFile(score).writestr()
