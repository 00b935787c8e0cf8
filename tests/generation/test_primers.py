"""What a generated piece starts from: `generate.primer`'s words read by primer_source, then the frames and bar
positions make_primers gives for an archive (random excerpts), a MIDI file (its start) or nothing."""

from pathlib import Path

import numpy as np
import pytest

from rollgen.data.archive import Sequences
from rollgen.errors import RollgenError
from rollgen.generation import primers as primer
from rollgen.music import meter
from rollgen.music.roll import HELD, ONSET
from tests.archives import random_pieces, sequences, write_archive
from tests.conftest import build_midi
from tests.defaults import STEPS_PER_QUARTER

GRID = {"steps_per_quarter": 4, "grid": "nearest"}  # the grid of the default model (images: in params.yaml)


def primer_midi(quarters: int, three_four: bool = False) -> bytes:
    """A MIDI file of rising quarter notes C4, D4, E4, ... lasting `quarters` quarter notes (4 steps each)."""
    pitches = [60, 62, 64, 65, 67, 69, 71, 72][:quarters]
    events = ["0, Time_signature, 3, 2, 24, 8"] if three_four else []
    for number, pitch in enumerate(pitches):
        events += [f"{number * 480}, Note_on_c, 0, {pitch}, 90", f"{(number + 1) * 480}, Note_off_c, 0, {pitch}, 0"]
    return build_midi([events])


def test_the_primer_words_name_a_split_s_archive_nothing_or_a_midi_file(tmp_path):
    windows = tmp_path / "windows"
    write_archive(windows / "test.npz", sequences(random_pieces(2, 20, seed=1)))
    write_archive(windows / "val.npz", sequences(random_pieces(3, 20, seed=2)))
    val = primer.primer_source("val", windows)
    assert isinstance(val, Sequences) and len(val) == 3  # the folder's val.npz
    assert len(primer.primer_source("test", windows)) == 2
    assert len(primer.primer_source("val", windows / "test.npz")) == 2  # an archive file named itself
    assert primer.primer_source("none", windows) is None
    assert primer.primer_source("song.mid", windows) == Path("song.mid")
    with pytest.raises(RollgenError, match=r"primer 'val': .*elsewhere[/\\]val.npz does not exist"):
        primer.primer_source("val", tmp_path / "elsewhere")


def test_a_midi_primer_is_the_start_of_the_file_for_every_piece_at_its_bar_positions(tmp_path):
    song = tmp_path / "song.mid"
    song.write_bytes(primer_midi(4, three_four=True))  # 16 steps in 3/4: C4 C4 C4 C4 D4 D4 D4 D4 E4 ...
    primers, positions = primer.make_primers(song, 3, 9, np.random.default_rng(0), **GRID)
    assert primers.shape == (3, 9, 106) and primers.dtype == np.uint8 and positions.shape == (3, 10, 4)
    assert (primers[0] == primers[2]).all() and (positions[0] == positions[2]).all()
    sounding = [np.flatnonzero(frame).tolist() for frame in primers[0]]
    assert sounding == [[60 - 21]] * 4 + [[62 - 21]] * 4 + [[64 - 21]]
    assert positions[0, :, meter.STEPS_PER_BAR].tolist() == [12] * 10  # the file's 3/4, not 4/4
    assert positions[0, :, meter.STEP_IN_BAR].tolist() == list(range(10))
    # The file's bytes, as a request to the served model sends them, give the same primers.
    from_bytes = primer.make_primers(song.read_bytes(), 3, 9, np.random.default_rng(0), **GRID)
    np.testing.assert_array_equal(from_bytes[0], primers)
    np.testing.assert_array_equal(from_bytes[1], positions)


def test_a_primer_holds_the_levels_a_model_reads_a_restruck_note_from(tmp_path):
    # Two quarters of C4, the second struck where the first is released; an archive of them as the windows
    # stage writes it (levels, onsets kept), and one written before onsets were kept (0/255: runs struck).
    events = [
        "0, Note_on_c, 0, 60, 90",
        "480, Note_off_c, 0, 60, 0",
        "480, Note_on_c, 0, 60, 90",
        "960, Note_off_c, 0, 60, 0",
    ]
    primers, _ = primer.make_primers(build_midi([events]), 1, 8, np.random.default_rng(0), **GRID)
    assert primers.dtype == np.uint8 and primers[0, :, 60 - 21].tolist() == [ONSET, HELD, HELD, HELD] * 2
    levels = primers[0]
    for stored, onsets, first_again in ((levels, True, ONSET), (np.where(levels > 0, 255, 0), None, HELD)):
        write_archive(tmp_path / "val.npz", sequences([stored.astype(np.uint8)]), onsets=onsets)
        excerpts, _ = primer.make_primers(primer.primer_source("val", tmp_path), 1, 8, np.random.default_rng(0), **GRID)
        assert excerpts.dtype == np.uint8 and excerpts[0, [0, 4], 60 - 21].tolist() == [ONSET, first_again]


def test_a_short_midi_primer_gives_what_it_has_and_a_broken_one_is_a_clear_error(tmp_path):
    song = tmp_path / "short.mid"
    song.write_bytes(primer_midi(2))  # 8 steps, fewer than asked for
    primers, positions = primer.midi_primers(song, steps=16, count=1, **GRID)
    assert primers.shape == (1, 8, 106) and positions.shape == (1, 9, 4)
    (tmp_path / "bad.mid").write_bytes(b"nope")
    with pytest.raises(RollgenError, match="bad.mid: not a MIDI file"):
        primer.midi_primers(tmp_path / "bad.mid", steps=9, count=1, **GRID)
    with pytest.raises(RollgenError, match="no such file"):
        primer.midi_primers(tmp_path / "none.mid", steps=9, count=1, **GRID)
    (tmp_path / "low.mid").write_bytes(build_midi([["0, Note_on_c, 0, 10, 90", "480, Note_off_c, 0, 10, 0"]]))
    with pytest.raises(RollgenError, match="low.mid: no notes in range to start from"):
        primer.midi_primers(tmp_path / "low.mid", steps=9, count=1, **GRID)
    with pytest.raises(RollgenError, match="^primer: not a MIDI file"):  # bytes have no name to give
        primer.make_primers(b"nope", 1, 9, np.random.default_rng(0), **GRID)


def test_excerpt_primers_are_stretches_of_the_pieces_at_their_positions():
    data = sequences(random_pieces(3, [40, 5, 30], seed=2))
    primers, positions = primer.excerpt_primers(data, 6, 12, np.random.default_rng(4))
    assert primers.shape == (6, 12, 106) and positions.shape == (6, 13, 4)
    starts = set()
    for excerpt, where in zip(primers, positions):
        found = [s for s in range(len(data.frames) - 11) if np.array_equal(data.frames[s : s + 12], excerpt)]
        start = next(s for s in found if np.searchsorted(data.offsets, s, "right") == np.searchsorted(
            data.offsets, s + 11, "right"))  # fmt: skip  # within one piece
        starts.add(start)
        np.testing.assert_array_equal(where[:12], data.positions[start : start + 12])
        np.testing.assert_array_equal(where[12], meter.next_position(data.positions[start + 11]))
    assert len(starts) > 1  # random excerpts, not one
    again, _ = primer.excerpt_primers(data, 6, 12, np.random.default_rng(4))
    np.testing.assert_array_equal(again, primers)  # seeded
    longest, _ = primer.excerpt_primers(data, 2, 100, np.random.default_rng(0))
    assert longest.shape == (2, 40, 106)  # no piece is 100 steps long: the longest one whole
    same, _ = primer.make_primers(data, 6, 12, np.random.default_rng(4), **GRID)
    np.testing.assert_array_equal(same, primers)  # an archive as the source: its excerpts


def test_no_primer_starts_from_silence_at_a_bar_line():
    primers, positions = primer.make_primers(None, 2, 16, np.random.default_rng(0), **GRID)
    assert primers.shape == (2, 0, 106) and positions.tolist() == [[[0, 4, 0, 16]]] * 2


def test_nothing_starts_at_a_bar_line_of_the_training_pieces_commonest_meter(tmp_path):
    windows = tmp_path / "windows"
    waltzes = sequences(random_pieces(3, 36, seed=1))  # three bars of 3/4 each, and one 4/4 piece of two bars
    four_four = meter.default_positions(32, STEPS_PER_QUARTER)
    positions = [meter.frame_positions(meter.Meter.from_steps([(0, 3, 4)], STEPS_PER_QUARTER), 36)] * 3
    data = Sequences(np.concatenate([waltzes.frames, np.zeros((32, 106), np.uint8)]),
                     np.append(waltzes.offsets, waltzes.offsets[-1] + 32), np.concatenate([*positions, four_four]),
                     np.array(["a", "b", "c", "d"]))  # fmt: skip
    write_archive(windows / "train.npz", data)
    silence = primer.primer_source("none", windows)
    assert silence == primer.Silence(steps_per_beat=4, steps_per_bar=12)
    assert primer.primer_source("none", windows / "train.npz") == silence  # an archive file: the train.npz beside it
    primers, where = primer.make_primers(silence, 2, 16, np.random.default_rng(0), **GRID)
    assert primers.shape == (2, 0, 106) and where.tolist() == [[[0, 4, 0, 12]]] * 2
