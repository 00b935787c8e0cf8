"""Generated pieces as files people open: MIDI, WAV and PNG per piece, and an index page that shows them all."""

import wave
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from rollgen.generation import gallery
from rollgen.generation.piece import GeneratedPiece
from rollgen.music import meter
from rollgen.music.audio import AudioError, render_wav
from rollgen.music.midi import read_midi
from rollgen.params import GenerateParams
from tests.defaults import SOUNDFONT, STEPS_PER_QUARTER


def unprimed(roll: np.ndarray) -> GeneratedPiece:
    """A piece generated from nothing, in 4/4 from a bar line."""
    return GeneratedPiece(
        np.zeros((106, 0), dtype=bool), roll, meter.default_positions(roll.shape[1], STEPS_PER_QUARTER)
    )


def test_a_piece_is_written_as_midi_wav_and_picture_with_its_primer(tmp_path):
    primer = np.zeros((106, 8), dtype=bool)
    primer[60 - 21, 0:8] = True
    roll = np.zeros((106, 24), dtype=bool)
    roll[64 - 21, 0:8] = roll[67 - 21, 8:24] = True
    waltz = meter.frame_positions(meter.Meter.from_steps([(0, 3, 4)], STEPS_PER_QUARTER), 32)
    piece = GeneratedPiece(primer, roll, waltz)
    gallery.write_piece(piece, tmp_path / "000", steps_per_quarter=4, params=GenerateParams(tempo=120))
    written = read_midi((tmp_path / "000.mid").read_bytes())
    assert written.pitches.tolist() == [60, 64, 67] and written.time_signatures == ((0, 3, 4),)
    with wave.open(str(tmp_path / "000.wav")) as audio:
        assert (audio.getframerate(), audio.getsampwidth()) == (44_100, 2)
        samples = np.frombuffer(audio.readframes(audio.getnframes()), dtype=np.int16)
    assert np.abs(samples).max() > 1000  # audible, not silence
    assert Image.open(tmp_path / "000.png").size[1] == 106 * 3
    gallery.write_piece(piece, tmp_path / "001", 4, GenerateParams(tempo=120, include_primer=False))
    assert read_midi((tmp_path / "001.mid").read_bytes()).pitches.tolist() == [64, 67]  # the new steps alone
    assert Image.open(tmp_path / "001.png").size[0] < Image.open(tmp_path / "000.png").size[0]


def test_missing_fluidsynth_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "a.mid").write_bytes(b"")
    with pytest.raises(AudioError, match="apt-get install fluidsynth"):
        render_wav(tmp_path / "a.mid", tmp_path / "a.wav", soundfont=SOUNDFONT)


def test_missing_soundfont_file_is_a_clear_error(tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        render_wav(tmp_path / "a.mid", tmp_path / "a.wav", soundfont=tmp_path / "none.sf2")


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
    params = GenerateParams(sampling="threshold", threshold=0.4, primer="<odd> & song.mid")
    pieces = [
        unprimed(rolls[0]),
        GeneratedPiece(rolls[0][:, :5], rolls[1], meter.default_positions(21, STEPS_PER_QUARTER)),
    ]
    page = gallery.write_pieces(pieces, tmp_path, 4, params, progress=False)
    parser = Links()
    parser.feed(page.read_text())
    sources = {tag: sorted(link for t, link in parser.links if t == tag) for tag in ("img", "audio")}
    assert sources == {"img": ["000.png", "001.png"], "audio": ["000.wav", "001.wav"]}
    for _, link in parser.links:  # every link is relative and its file exists
        assert "://" not in link and not link.startswith("/")
        assert (tmp_path / link).is_file()
    assert "script" not in parser.tags and "link" not in parser.tags
    assert "sampling threshold, threshold 0.4, max_notes off" in page.read_text()  # the params that shaped it
    assert "primer &lt;odd&gt; &amp; song.mid" in page.read_text()  # settings are escaped
    assert "none: generated from the first step" in page.read_text()
    assert "5 steps, shaded blue, before the blue line" in page.read_text()  # the primer, where it is


def test_the_page_names_the_knobs_of_the_sampling_it_used():
    article = GenerateParams(sampling="vanish_proof", seed=3)
    assert gallery.sampling_settings(article) == {
        "sampling": "vanish_proof", "offset": article.vanish_proof, "growth": article.vanish_inc,
        "primer": article.primer, "primer_steps": article.primer_steps, "seed": 3,
    }  # fmt: skip  # no note caps: the article's loop ignores them
    bernoulli = gallery.sampling_settings(GenerateParams(temperature=0.5, max_notes=4))
    assert (bernoulli["temperature"], bernoulli["max_notes"], bernoulli["min_notes"]) == (0.5, 4, "off")


def test_the_page_says_an_auto_temperature_was_chosen_and_how_it_did():
    curve = {"0.8": {"gates_passed": 4}, "0.9": {"gates_passed": 6}}
    settings = gallery.sampling_settings(GenerateParams(temperature=0.9), {"value": 0.9, "auto": True, "curve": curve})
    assert settings["temperature"] == "0.9 (auto: chosen among 2 on the validation pieces, 6 quality gates passed)"
    assert gallery.sampling_settings(GenerateParams(temperature=0.9), {"value": 0.9, "auto": False})[
        "temperature"
    ] == 0.9  # fmt: skip


def test_the_temperature_curve_is_drawn(tmp_path):
    curve = {"0.8": {"gates_passed": 4, "gates_distance": 1.5}, "1.0": {"gates_passed": 6, "gates_distance": None}}
    picture = gallery.save_temperature_curve(curve, tmp_path / "curve.png")
    assert Image.open(picture).format == "PNG" and Image.open(picture).size[0] > 300
