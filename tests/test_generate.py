"""Generation with a real (untrained) Keras model: batched steps, seeded, written as MIDI, WAV and PNG."""

import wave

import keras
import numpy as np
import pytest
from PIL import Image

from rollgen import generate
from rollgen.audio import AudioError, render_wav
from rollgen.midi import read_midi
from rollgen.models import build_seed
from rollgen.sampling import make_sampler
from rollgen.stats import roll_stats


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
