"""Generated pieces as files people open: MIDI, WAV and PNG per piece, and an index page that shows them all."""

import wave
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from rollgen.generation import gallery
from rollgen.music.audio import AudioError, render_wav
from rollgen.music.midi import read_midi
from rollgen.params import GenerateParams


def test_a_piece_is_written_as_midi_wav_and_picture(tmp_path):
    roll = np.zeros((106, 32), dtype=bool)
    roll[60 - 21, 0:8] = roll[64 - 21, 8:16] = roll[67 - 21, 16:32] = True
    gallery.write_piece(roll, tmp_path / "000", steps_per_quarter=4, tempo_bpm=120, soundfont="auto")
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
    page = gallery.write_pieces(rolls, tmp_path, 4, params, progress=False)
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


def test_the_page_names_the_knobs_of_the_sampling_it_used():
    article = GenerateParams(sampling="vanish_proof", seed=3)
    assert gallery.sampling_settings(article) == {
        "sampling": "vanish_proof", "offset": article.vanish_proof, "growth": article.vanish_inc,
        "primer": article.primer, "primer_steps": article.primer_steps, "seed": 3,
    }  # fmt: skip  # no note caps: the article's loop ignores them
    bernoulli = gallery.sampling_settings(GenerateParams(temperature=0.5, max_notes=4))
    assert (bernoulli["temperature"], bernoulli["max_notes"], bernoulli["min_notes"]) == (0.5, 4, "off")
