"""MIDI -> WAV with FluidSynth: the mistakes a user makes with file names and SoundFonts are said, not
rendered around."""

import wave
from pathlib import Path

import pytest

from rollgen.music.audio import AudioError, find_soundfont, render_wav
from tests.conftest import build_midi

MIDI = build_midi([["0, Note_on_c, 0, 60, 90", "480, Note_off_c, 0, 60, 0"]])


def seconds(path) -> float:
    with wave.open(str(path)) as audio:
        return audio.getnframes() / audio.getframerate()


def test_a_file_that_is_no_soundfont_is_an_error_not_the_default_soundfonts_sound(tmp_path):
    (tmp_path / "a.mid").write_bytes(MIDI)
    (tmp_path / "garbage.sf2").write_bytes(b"not a SoundFont at all")
    # FluidSynth skips what it cannot read and plays its own default SoundFont instead, exit status 0.
    with pytest.raises(AudioError, match="garbage.sf2' is not a SoundFont 2 .* no RIFF 'sfbk' header"):
        render_wav(tmp_path / "a.mid", tmp_path / "a.wav", soundfont=tmp_path / "garbage.sf2")
    assert not (tmp_path / "a.wav").exists()
    installed = find_soundfont("auto")  # a real one, named, passes the check
    assert render_wav(tmp_path / "a.mid", tmp_path / "a.wav", soundfont=installed) == tmp_path / "a.wav"


def test_a_midi_file_whose_name_starts_with_a_dash_is_rendered_not_read_as_an_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-dash.mid").write_bytes(MIDI)
    render_wav(Path("-dash.mid"), Path("-dash.wav"), soundfont="auto")  # relative names, as a user types them
    assert 0.5 < seconds(tmp_path / "-dash.wav")  # one quarter note at 120 bpm, and the release after it


def test_a_folder_as_the_wav_file_is_said_before_rendering(tmp_path):
    (tmp_path / "a.mid").write_bytes(MIDI)
    (tmp_path / "out").mkdir()
    with pytest.raises(AudioError, match="out is a folder: name the .wav file to write"):
        render_wav(tmp_path / "a.mid", tmp_path / "out", soundfont="auto")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.mid", "out"]  # no temporary file left
