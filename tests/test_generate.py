"""Generation with a real (untrained) Keras model: batched steps, seeded, written as MIDI, WAV and PNG."""

import json
import wave
from html.parser import HTMLParser

import keras
import numpy as np
import pytest
from PIL import Image

from rollgen import files, generate
from rollgen.audio import AudioError, render_wav
from rollgen.midi import read_midi
from rollgen.models import build_model, build_seed
from rollgen.sampling import make_sampler
from rollgen.stats import roll_stats
from tests.conftest import build_midi


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_seed()


def test_all_pieces_advance_together_and_the_seed_fixes_the_music(model):
    primers = np.random.default_rng(1).random((3, 9, 106)).astype(np.float32)
    runs = [
        generate.sample_frames(model, primers, 12, make_sampler("bernoulli"), np.random.default_rng(9), progress=False)
        for _ in range(2)
    ]
    assert runs[0].shape == (3, 12, 106) and runs[0].dtype == np.uint8
    assert (runs[0] == runs[1]).all()
    assert set(np.unique(runs[0])) <= {0, 1}


def test_vanish_proof_generation_sounds_where_the_plain_cast_is_silent(model):
    primers = np.zeros((2, 9, 106), np.float32)
    plain = generate.sample_frames(
        model,
        primers,
        5,
        make_sampler("vanish_proof", vanish_proof=0.0),
        np.random.default_rng(0),
        progress=False,
    )
    assert plain.sum() == 0  # sigmoid outputs below 1 cast to 0: the article's silence
    boosted = generate.sample_frames(
        model, primers, 5, make_sampler("vanish_proof"), np.random.default_rng(0), progress=False
    )
    assert boosted.sum() > 0


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


def primer_midi(quarters: int) -> bytes:
    """A MIDI file of rising quarter notes C4, D4, E4, ... lasting `quarters` quarter notes (4 steps each)."""
    pitches = [60, 62, 64, 65, 67, 69, 71, 72][:quarters]
    events = []
    for number, pitch in enumerate(pitches):
        events += [f"{number * 480}, Note_on_c, 0, {pitch}, 90", f"{(number + 1) * 480}, Note_off_c, 0, {pitch}, 0"]
    return build_midi([events])


def test_a_midi_primer_is_the_start_of_the_file_for_every_piece(tmp_path):
    song = tmp_path / "song.mid"
    song.write_bytes(primer_midi(4))  # 16 steps: C4 C4 C4 C4 D4 D4 D4 D4 E4 ...
    primers = generate.make_primers(song, count=3, context=9, rng=np.random.default_rng(0))
    assert primers.shape == (3, 9, 106) and primers.dtype == np.float32
    assert (primers[0] == primers[2]).all()
    sounding = [np.flatnonzero(frame).tolist() for frame in primers[0]]
    assert sounding == [[60 - 21]] * 4 + [[62 - 21]] * 4 + [[64 - 21]]


def test_a_short_or_broken_midi_primer_is_a_clear_error(tmp_path):
    song = tmp_path / "short.mid"
    song.write_bytes(primer_midi(2))  # 8 steps, one fewer than the context
    with pytest.raises(SystemExit, match="short.mid: too short: 8 steps .* needs 9 steps of context"):
        generate.midi_primers(song, context=9, count=1)
    (tmp_path / "bad.mid").write_bytes(b"nope")
    with pytest.raises(SystemExit, match="bad.mid: not a MIDI file"):
        generate.midi_primers(tmp_path / "bad.mid", context=9, count=1)
    with pytest.raises(SystemExit, match="no such file"):
        generate.midi_primers(tmp_path / "none.mid", context=9, count=1)


def test_note_caps_hold_in_every_generated_frame(model):
    primers = np.random.default_rng(1).random((4, 9, 106)).astype(np.float32)
    sampler = make_sampler("bernoulli", temperature=1.5, min_notes=2, max_notes=3)
    frames = generate.sample_frames(model, primers, 10, sampler, np.random.default_rng(0), progress=False)
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
    model.save(tmp_path / "model.keras")
    frames = np.zeros((40, 106), np.uint8)
    frames[:, 60 - 21] = 255
    frames[20:, 64 - 21] = 255
    windows = tmp_path / "windows"
    files.write_npz(
        windows / "test.npz",
        x=np.stack([frames[i : i + 9] for i in range(5)]),
        frames=frames,
        frame_offsets=np.array([0, 20, 40]),
    )
    params = {
        "pieces": 2, "steps": 12, "sampling": "threshold", "temperature": 1.0, "threshold": 0.5,
        "min_notes": 1, "max_notes": 2, "primer": "test", "vanish_proof": 0.65, "vanish_inc": 1.001,
        "tempo": 100, "soundfont": "auto", "seed": 3,
    }  # fmt: skip
    out = tmp_path / "generated"
    metrics = generate.run(params, tmp_path / "model.keras", windows, out, tmp_path / "generate.json")
    assert sorted(path.name for path in out.iterdir()) == [
        "000.mid", "000.png", "000.wav", "001.mid", "001.png", "001.wav", "index.html",
    ]  # fmt: skip
    assert metrics == json.loads((tmp_path / "generate.json").read_text())
    assert metrics["test"]["pieces"] == 2 and metrics["test"]["pitch_range"] == pytest.approx((0 + 4) / 2)
    assert metrics["generated"]["silent_fraction"] == 0  # min_notes 1
    assert metrics["generated"]["mean_polyphony"] <= 2  # max_notes 2
    assert set(metrics["overlap"]) >= {"notes_per_step", "pitch_range"}


@pytest.mark.parametrize("name", ["nade", "convnade"])
def test_a_nade_model_generates_whole_chords_seeded(name):
    keras.utils.set_random_seed(4)
    nade = build_model(name, context=9)
    primers = np.random.default_rng(2).random((3, 9, 106)).astype(np.float32)
    runs = [
        generate.sample_frames(nade, primers, 6, make_sampler("bernoulli"), np.random.default_rng(8), progress=False)
        for _ in range(2)
    ]
    assert runs[0].shape == (3, 6, 106) and (runs[0] == runs[1]).all() and runs[0].sum() > 0
    never = make_sampler("threshold", threshold=1.0)
    greedy = generate.sample_frames(nade, primers, 2, never, np.random.default_rng(0), progress=False)
    assert greedy.sum() == 0  # no probability exceeds 1
    with pytest.raises(ValueError, match="nade"):
        capped = make_sampler("bernoulli", max_notes=3)
        generate.sample_frames(nade, primers, 2, capped, np.random.default_rng(0), progress=False)
