"""rollgen's rolls against the article's music21 path (benchmarks/article.py), on chorales and on known notes: the
article's grid is rollgen's `floor` grid."""

from pathlib import Path

import numpy as np
import pytest

from benchmarks.article import article_images, article_roll, rolls_equal
from rollgen.data.images import roll_to_images
from rollgen.music.corpus import music21_corpus_files, score_to_midi
from rollgen.music.midi import OFF_BEFORE_ON, read_midi
from rollgen.music.roll import LOWEST_PITCH, TOO_SHORT, piece_to_roll, sounding
from tests.conftest import build_midi

# Chorales whose rolls agree cell for cell, and one of each kind that does not (see benchmarks/article.py).
AGREEING = ("bwv1.6", "bwv10.7", "bwv101.7", "bwv102.7", "bwv103.6")
WITH_32ND_NOTES = "bwv432"
WITH_A_LAST_GRACE_NOTE = "bwv315"
WITH_AN_EARLIER_GRACE_NOTE = "bwv299"  # and a last one


@pytest.fixture(scope="module")
def chorale_midi(tmp_path_factory) -> dict[str, Path]:
    """Some chorales of music21's corpus exported to MIDI files, by name."""
    _, scores = music21_corpus_files("bach")
    wanted = {*AGREEING, WITH_32ND_NOTES, WITH_A_LAST_GRACE_NOTE, WITH_AN_EARLIER_GRACE_NOTE}
    folder = tmp_path_factory.mktemp("article")
    midi = {}
    for score in scores:
        if score.stem in wanted and score.suffix == ".mxl":
            midi[score.stem] = folder / f"{score.stem}.mid"
            midi[score.stem].write_bytes(score_to_midi(score))
    assert set(midi) == wanted
    return midi


def rollgen_roll(path: Path, grid: str = "floor") -> np.ndarray:
    """What sounds in rollgen's roll (bool): the article's roll has no onsets."""
    roll, _ = piece_to_roll(read_midi(path.read_bytes()), 4, grid=grid)
    return sounding(roll)


def write_midi_events(tmp_path: Path, events: list[str]) -> Path:
    """A one-track MIDI file at 480 ticks per quarter (120 ticks = one 16th-note step)."""
    path = tmp_path / "notes.mid"
    path.write_bytes(build_midi([events]))
    return path


@pytest.mark.parametrize("name", AGREEING)
def test_rollgen_draws_the_article_roll(chorale_midi, name):
    article = article_roll(chorale_midi[name])
    rollgen = rollgen_roll(chorale_midi[name])
    assert article.shape == rollgen.shape
    assert (article == rollgen).all()


def test_article_images_are_rollgens_article_mode(chorale_midi):
    path = chorale_midi[AGREEING[0]]
    images = article_images(path)
    expected = roll_to_images(rollgen_roll(path), mode="article", chunk_steps=100)
    assert len(images) == len(expected) > 1
    assert all(image.shape == (106, 106) and image.dtype == np.uint8 for image in images)
    assert all((image == other).all() for image, other in zip(images, expected))


def test_a_32nd_note_draws_a_cell_only_after_music21s_quantisation(tmp_path):
    path = write_midi_events(
        tmp_path,
        [
            "0, Note_on_c, 0, 60, 90",
            "480, Note_off_c, 0, 60, 0",
            "480, Note_on_c, 0, 62, 90",
            "540, Note_off_c, 0, 62, 0",  # a 32nd note: half a step
            "960, Note_on_c, 0, 64, 90",
            "1440, Note_off_c, 0, 64, 0",
        ],
    )
    article, rollgen = article_roll(path), rollgen_roll(path)
    assert article[62 - LOWEST_PITCH].nonzero()[0].tolist() == [4]  # music21 made it a 16th
    assert not rollgen[62 - LOWEST_PITCH].any()  # shorter than one step, as the grid says
    # rollgen's nearest grid keeps the note, a step from its onset, and here draws what music21 does.
    assert (rollgen_roll(path, grid="nearest") == article).all()
    article[62 - LOWEST_PITCH] = False
    assert rolls_equal(article, rollgen)


def test_chorale_32nd_notes_are_the_only_difference(chorale_midi):
    path = chorale_midi[WITH_32ND_NOTES]
    piece = read_midi(path.read_bytes())
    rollgen, dropped = piece_to_roll(piece, 4, grid="floor")
    rollgen, article = sounding(rollgen), article_roll(path)
    assert article.shape == rollgen.shape and not (rollgen & ~article).any()
    extra_rows, extra_steps = np.nonzero(article & ~rollgen)
    assert len(extra_rows) > 0 and dropped[TOO_SHORT] == len(extra_rows)
    # Each extra cell is one of the dropped notes, moved onto the 16th-note grid.
    quarter_ticks = piece.ticks_per_quarter
    short = (piece.ends - piece.starts) * 4 < quarter_ticks
    for row, step in zip(extra_rows, extra_steps):
        onsets = piece.starts[short & (piece.pitches == row + LOWEST_PITCH)] * 4 / quarter_ticks
        assert np.abs(onsets - step).min() <= 0.5


def test_grace_notes_exported_off_before_on_draw_nothing(chorale_midi):
    # music21 writes a grace note (0 quarter lengths) as a note-off, then a note-on, at one tick. rollgen reads the
    # pair as the zero-length note it is, so it draws nothing (the article's grid: int(0 * 4) == 0 steps).
    last = read_midi(chorale_midi[WITH_A_LAST_GRACE_NOTE].read_bytes())
    assert last.dropped == {OFF_BEFORE_ON: 1} and not last.repaired  # no longer held to the track's end
    # music21's reader drops a note-on that no note-off follows: here the two readers agree cell for cell.
    assert rolls_equal(
        article_roll(chorale_midi[WITH_A_LAST_GRACE_NOTE]), rollgen_roll(chorale_midi[WITH_A_LAST_GRACE_NOTE])
    )

    path = chorale_midi[WITH_AN_EARLIER_GRACE_NOTE]
    piece = read_midi(path.read_bytes())
    assert piece.dropped == {OFF_BEFORE_ON: 2} and not piece.repaired
    reference = read_midi(path.read_bytes(), parser="py_midicsv")
    assert all((getattr(piece, name) == getattr(reference, name)).all() for name in ("pitches", "starts", "ends"))
    # music21 ends an earlier grace note's note-on at the next note-off of its pitch, so it draws a B-flat the
    # score does not have (4 cells); rollgen's roll is the article's without them.
    rollgen, article = rollgen_roll(path), article_roll(path)
    assert article.shape == rollgen.shape and not (rollgen & ~article).any()
    rows, steps = np.nonzero(article & ~rollgen)
    assert set(rows.tolist()) == {70 - LOWEST_PITCH} and steps.tolist() == list(range(steps.min(), steps.min() + 4))


def test_notes_ending_one_step_apart_become_one_chord_in_music21(tmp_path):
    path = write_midi_events(
        tmp_path,
        [
            "0, Note_on_c, 0, 62, 90",
            "480, Note_off_c, 0, 62, 0",  # 4 steps
            "0, Note_on_c, 0, 67, 90",
            "360, Note_off_c, 0, 67, 0",  # 3 steps: within music21's chord tolerance of one 16th
        ],
    )
    article, rollgen = article_roll(path), rollgen_roll(path)
    assert rollgen[62 - LOWEST_PITCH].sum() == 4 and rollgen[67 - LOWEST_PITCH].sum() == 3
    assert article[62 - LOWEST_PITCH].sum() == article[67 - LOWEST_PITCH].sum()  # one chord, one duration
