"""Generation with real (untrained) Keras models: every piece advances together, seeded; the article's loop;
primers from the test pieces, a MIDI file or nothing; written as MIDI, WAV and PNG."""

import json
import wave
from html.parser import HTMLParser

import keras
import numpy as np
import pytest
from PIL import Image

from rollgen.errors import RollgenError
from rollgen.evaluation.stats import roll_stats
from rollgen.generation import generate
from rollgen.models import frame_model
from rollgen.models.sampling import make_sampler
from rollgen.music import meter
from rollgen.music.audio import AudioError, render_wav
from rollgen.music.midi import read_midi
from rollgen.params import TrainParams
from tests.archives import random_pieces, sequences, write_archive
from tests.conftest import build_midi
from tests.tiny import CONTEXT, PITCHES, tiny


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return frame_model.build(TrainParams(model="article"), context=9)


def four_four(pieces: int, steps: int) -> np.ndarray:
    """Positions (pieces, steps, 4) of 4/4 from a bar line."""
    return np.repeat(meter.default_positions(steps)[None], pieces, axis=0).astype(np.int32)


def test_all_pieces_advance_together_and_the_seed_fixes_the_music(model):
    primers = np.random.default_rng(1).random((3, 9, 106)).astype(np.float32)
    runs = [
        generate.sample_frames(
            model, primers, four_four(3, 10), 12, make_sampler("bernoulli"), np.random.default_rng(9), progress=False
        )  # fmt: skip
        for _ in range(2)
    ]
    assert runs[0].shape == (3, 12, 106) and runs[0].dtype == np.uint8
    assert (runs[0] == runs[1]).all() and runs[0].sum() > 0
    assert set(np.unique(runs[0])) <= {0, 1}
    threshold = make_sampler("threshold", threshold=0.3)
    together = generate.sample_frames(model, primers, four_four(3, 10), 6, threshold, None, progress=False)
    for piece in range(3):  # a piece in a batch is the piece alone
        alone = generate.sample_frames(model, primers[piece : piece + 1], four_four(1, 10), 6, threshold, None,
                                       progress=False)  # fmt: skip
        np.testing.assert_array_equal(together[piece], alone[0])


def test_vanish_proof_generation_is_the_articles_loop(model):
    """The article's loop over the Keras model by hand: add the growing offset, cast, slide the window."""
    primers = np.random.default_rng(3).random((2, 9, 106)).astype(np.float32)
    frames = generate.sample_frames(model, primers, four_four(2, 10), 20, make_sampler("vanish_proof"),
                                    np.random.default_rng(0), progress=False)  # fmt: skip
    keras_model, window, offset = model.keras, primers, 0.65
    for step in range(20):
        pred = np.asarray(keras_model(window)) + np.float32(offset)
        offset *= 1.001
        notes = pred.astype(np.uint8)
        np.testing.assert_array_equal(frames[:, step], notes)
        window = np.concatenate([window[:, 1:], notes[:, None].astype(np.float32)], axis=1)
    assert frames.sum() > 0


def test_a_piece_is_written_as_midi_wav_and_picture(tmp_path):
    roll = np.zeros((106, 32), dtype=bool)
    roll[60 - 21, 0:8] = roll[64 - 21, 8:16] = roll[67 - 21, 16:32] = True
    generate.write_piece(roll, tmp_path / "000", steps_per_quarter=4, tempo_bpm=120, soundfont="auto")
    piece = read_midi((tmp_path / "000.mid").read_bytes())
    assert piece.pitches.tolist() == [60, 64, 67]
    with wave.open(str(tmp_path / "000.wav")) as audio:
        assert (audio.getframerate(), audio.getsampwidth()) == (44_100, 2)
        samples = np.frombuffer(audio.readframes(audio.getnframes()), dtype=np.int16)
    assert np.abs(samples).max() > 1000  # audible, not silence
    assert Image.open(tmp_path / "000.png").size[1] == 106 * 3


def test_missing_fluidsynth_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "a.mid").write_bytes(b"")
    with pytest.raises(AudioError, match="apt-get install fluidsynth"):
        render_wav(tmp_path / "a.mid", tmp_path / "a.wav")


def test_missing_soundfont_file_is_a_clear_error(tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        render_wav(tmp_path / "a.mid", tmp_path / "a.wav", soundfont=tmp_path / "none.sf2")


def test_roll_stats_count_silence_onsets_and_polyphony():
    roll = np.zeros((106, 4), dtype=bool)
    roll[0, 0:2] = roll[1, 0:2] = roll[2, 3] = True  # frames: 2 notes, 2 notes, silent, 1 note
    stats = roll_stats([roll])
    assert stats == {"frames": 4, "silent_fraction": 0.25, "notes_per_step": 0.75, "mean_polyphony": 5 / 3}


def primer_midi(quarters: int, three_four: bool = False) -> bytes:
    """A MIDI file of rising quarter notes C4, D4, E4, ... lasting `quarters` quarter notes (4 steps each)."""
    pitches = [60, 62, 64, 65, 67, 69, 71, 72][:quarters]
    events = ["0, Time_signature, 3, 2, 24, 8"] if three_four else []
    for number, pitch in enumerate(pitches):
        events += [f"{number * 480}, Note_on_c, 0, {pitch}, 90", f"{(number + 1) * 480}, Note_off_c, 0, {pitch}, 0"]
    return build_midi([events])


def test_a_midi_primer_is_the_start_of_the_file_for_every_piece_at_its_bar_positions(tmp_path):
    song = tmp_path / "song.mid"
    song.write_bytes(primer_midi(4, three_four=True))  # 16 steps in 3/4: C4 C4 C4 C4 D4 D4 D4 D4 E4 ...
    primers, positions = generate.make_primers(song, count=3, steps=9, rng=np.random.default_rng(0))
    assert primers.shape == (3, 9, 106) and primers.dtype == np.float32 and positions.shape == (3, 10, 4)
    assert (primers[0] == primers[2]).all() and (positions[0] == positions[2]).all()
    sounding = [np.flatnonzero(frame).tolist() for frame in primers[0]]
    assert sounding == [[60 - 21]] * 4 + [[62 - 21]] * 4 + [[64 - 21]]
    assert positions[0, :, meter.STEPS_PER_BAR].tolist() == [12] * 10  # the file's 3/4, not 4/4
    assert positions[0, :, meter.STEP_IN_BAR].tolist() == list(range(10))


def test_a_short_midi_primer_gives_what_it_has_and_a_broken_one_is_a_clear_error(tmp_path):
    song = tmp_path / "short.mid"
    song.write_bytes(primer_midi(2))  # 8 steps, fewer than asked for
    primers, positions = generate.midi_primers(song, steps=16, count=1)
    assert primers.shape == (1, 8, 106) and positions.shape == (1, 9, 4)
    (tmp_path / "bad.mid").write_bytes(b"nope")
    with pytest.raises(RollgenError, match="bad.mid: not a MIDI file"):
        generate.midi_primers(tmp_path / "bad.mid", steps=9, count=1)
    with pytest.raises(RollgenError, match="no such file"):
        generate.midi_primers(tmp_path / "none.mid", steps=9, count=1)
    (tmp_path / "low.mid").write_bytes(build_midi([["0, Note_on_c, 0, 10, 90", "480, Note_off_c, 0, 10, 0"]]))
    with pytest.raises(RollgenError, match="low.mid: no notes in range to start from"):
        generate.midi_primers(tmp_path / "low.mid", steps=9, count=1)


def test_excerpt_primers_are_stretches_of_the_pieces_at_their_positions():
    data = sequences(random_pieces(3, [40, 5, 30], seed=2))
    primers, positions = generate.excerpt_primers(data, 6, 12, np.random.default_rng(4))
    assert primers.shape == (6, 12, 106) and positions.shape == (6, 13, 4)
    starts = set()
    for primer, where in zip(primers, positions):
        found = [s for s in range(len(data.frames) - 11) if np.array_equal(data.frames[s : s + 12] / 255.0, primer)]
        start = next(s for s in found if np.searchsorted(data.offsets, s, "right") == np.searchsorted(
            data.offsets, s + 11, "right"))  # fmt: skip  # within one piece
        starts.add(start)
        np.testing.assert_array_equal(where[:12], data.positions[start : start + 12])
        np.testing.assert_array_equal(where[12], meter.next_position(data.positions[start + 11]))
    assert len(starts) > 1  # random excerpts, not one
    again, _ = generate.excerpt_primers(data, 6, 12, np.random.default_rng(4))
    np.testing.assert_array_equal(again, primers)  # seeded
    longest, _ = generate.excerpt_primers(data, 2, 100, np.random.default_rng(0))
    assert longest.shape == (2, 40, 106)  # no piece is 100 steps long: the longest one whole


def test_no_primer_starts_from_silence_at_a_bar_line():
    primers, positions = generate.make_primers("none", count=2, steps=16, rng=np.random.default_rng(0))
    assert primers.shape == (2, 0, 106) and positions.tolist() == [[[0, 4, 0, 16]]] * 2
    with pytest.raises(RollgenError, match="primer 'test' needs that split's archive"):
        generate.make_primers("test", count=2, steps=16, rng=np.random.default_rng(0))


def test_note_caps_hold_in_every_generated_frame(model):
    primers = np.random.default_rng(1).random((4, 9, 106)).astype(np.float32)
    sampler = make_sampler("bernoulli", temperature=1.5, min_notes=2, max_notes=3)
    frames = generate.sample_frames(model, primers, four_four(4, 10), 10, sampler, np.random.default_rng(0),
                                    progress=False)  # fmt: skip
    counts = frames.sum(axis=2)
    assert counts.min() >= 2 and counts.max() <= 3


class Links(HTMLParser):
    """Collects the tags and the src/href links of an HTML page."""

    def __init__(self):
        super().__init__()
        self.tags, self.links = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [(tag, value) for name, value in attrs if name in ("src", "href")]


def test_the_index_page_shows_every_piece_with_its_picture_and_player(tmp_path):
    rolls = [np.zeros((106, 16), dtype=bool) for _ in range(2)]
    rolls[0][60 - 21, :8] = rolls[1][64 - 21, 4:] = True
    page = generate.write_pieces(rolls, tmp_path, 4, 120, "auto", {"sampling": "bernoulli", "<odd>": "&"})
    parser = Links()
    parser.feed(page.read_text())
    sources = {tag: sorted(link for t, link in parser.links if t == tag) for tag in ("img", "audio")}
    assert sources == {"img": ["000.png", "001.png"], "audio": ["000.wav", "001.wav"]}
    for _, link in parser.links:  # every link is relative and its file exists
        assert "://" not in link and not link.startswith("/")
        assert (tmp_path / link).is_file()
    assert "script" not in parser.tags and "link" not in parser.tags
    assert "&lt;odd&gt; &amp;" in page.read_text()  # settings are escaped


def test_run_writes_pieces_page_and_quality_report(tmp_path, model):
    model.keras.save(tmp_path / "model.keras")
    frames = np.zeros((40, 106), np.uint8)
    frames[:, 60 - 21] = 255
    frames[20:, 64 - 21] = 255
    windows = tmp_path / "windows"
    write_archive(windows / "test.npz", sequences([frames[:20], frames[20:]]))
    params = {
        "pieces": 2, "steps": 12, "sampling": "threshold", "temperature": 1.0, "threshold": 0.5,
        "min_notes": 1, "max_notes": 2, "primer": "test", "primer_steps": 8, "vanish_proof": 0.65,
        "vanish_inc": 1.001, "tempo": 100, "soundfont": "auto", "seed": 3,
    }  # fmt: skip
    out = tmp_path / "generated"
    metrics = generate.run(params, tmp_path / "model.keras", windows, out, tmp_path / "generate.json")
    assert sorted(path.name for path in out.iterdir()) == [
        "000.mid", "000.png", "000.wav", "001.mid", "001.png", "001.wav", "index.html",
    ]  # fmt: skip
    assert metrics == json.loads((tmp_path / "generate.json").read_text())
    assert metrics["test"]["pieces"] == 2 and metrics["test"]["pitch_range"] == pytest.approx((0 + 4) / 2)
    assert metrics["test"]["frames"] == 40 and metrics["generated"]["frames"] == 2 * 12
    assert metrics["generated"]["silent_fraction"] == 0  # min_notes 1
    assert metrics["generated"]["mean_polyphony"] <= 2  # max_notes 2
    assert set(metrics["overlap"]) >= {"notes_per_step", "pitch_range"} and metrics["primer"] == "test"


@pytest.mark.parametrize(("name", "primer"), [("article", "none"), ("rnnnade", "val")])
def test_run_generates_from_nothing_or_the_validation_pieces(tmp_path, name, primer):
    keras.utils.set_random_seed(2)
    frame_model.build(TrainParams(model=name), context=9).keras.save(tmp_path / "model.keras")
    windows = tmp_path / "windows"
    write_archive(windows / "test.npz", sequences(random_pieces(2, 30, seed=1)))
    write_archive(windows / "val.npz", sequences(random_pieces(1, 30, seed=2)))
    params = {
        "pieces": 1, "steps": 20, "sampling": "bernoulli", "temperature": 1.0, "threshold": 0.5, "primer": primer,
        "primer_steps": 16, "vanish_proof": 0.65, "vanish_inc": 1.001, "tempo": 100, "soundfont": "auto", "seed": 3,
    }  # fmt: skip
    metrics = generate.run(params, tmp_path / "model.keras", windows, tmp_path / "out", tmp_path / "generate.json")
    assert metrics["primer"] == primer and metrics["generated"]["frames"] == 20
    assert (tmp_path / "out" / "000.mid").is_file()


def test_a_window_nade_draws_each_pitch_from_its_conditional_given_the_pitches_below():
    nade = frame_model.wrap(tiny("convnade", seed=4))
    biases = np.random.default_rng(0).normal(-1.0, 2.0, PITCHES).astype(np.float32)
    nade.head.visible_bias.assign(biases)  # some pitches likely, others not: frames with notes to check
    primers = (np.random.default_rng(2).random((5, CONTEXT, PITCHES)) < 0.3).astype(np.float32)
    positions = four_four(5, CONTEXT + 1)
    runs = [
        generate.sample_frames(
            nade, primers, positions, 6, make_sampler("bernoulli"), np.random.default_rng(8), progress=False
        )  # fmt: skip
        for _ in range(2)
    ]
    assert runs[0].shape == (5, 6, PITCHES) and (runs[0] == runs[1]).all() and runs[0].sum() > 0
    greedy = generate.sample_frames(nade, primers, positions, 8, make_sampler("threshold", threshold=0.5), None,
                                    progress=False)  # fmt: skip
    heard = np.concatenate([primers, greedy.astype(np.float32)], axis=1)
    for step in range(8):
        frame = greedy[:, step].astype(np.float32)
        conditionals = np.asarray(nade.keras([heard[:, step : step + CONTEXT], frame]))  # teacher-forced on the draw
        np.testing.assert_array_equal(frame, conditionals > 0.5)  # each pitch given the pitches drawn below it
    assert 0 < greedy.sum() < greedy.size  # notes, and silence: both sides checked


@pytest.mark.parametrize("name", ["nade", "rnnnade"])
def test_note_caps_are_refused_for_a_nade_model(name):
    nade = frame_model.build(TrainParams(model=name), context=9)
    primers = np.zeros((1, 4, 106), np.float32)
    with pytest.raises(ValueError, match="nade"):
        capped = make_sampler("bernoulli", max_notes=3)
        generate.sample_frames(nade, primers, four_four(1, 5), 2, capped, np.random.default_rng(0), progress=False)
