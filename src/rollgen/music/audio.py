"""MIDI -> WAV with the FluidSynth program and a General MIDI SoundFont, as the article listened."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from rollgen import files
from rollgen.errors import RollgenError

# Debian's fluid-soundfont-gm (best), timgm6mb-soundfont (small), then the distribution default.
SOUNDFONT_CANDIDATES = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/soundfonts/default.sf2"),
)
INSTALL_HINT = "install it with: sudo apt-get install fluidsynth fluid-soundfont-gm"


class AudioError(RollgenError, RuntimeError):
    """FluidSynth or a SoundFont is missing, or rendering failed."""


def find_soundfont(soundfont: str | Path) -> Path:
    """The SoundFont to use: the given file, checked to be one, or (`auto`) the first General MIDI one installed."""
    if str(soundfont) != "auto":
        path = Path(soundfont)
        if not path.is_file():
            raise AudioError(f"SoundFont '{path}' does not exist")
        check_soundfont(path)
        return path
    for path in SOUNDFONT_CANDIDATES:
        if path.is_file():
            return path
    raise AudioError(f"no General MIDI SoundFont found in {[str(p) for p in SOUNDFONT_CANDIDATES]}; {INSTALL_HINT}")


def check_soundfont(path: Path) -> None:
    """AudioError unless `path` starts as a SoundFont 2 file does (a RIFF chunk of form 'sfbk'): FluidSynth
    skips a file it cannot read as one and plays its own default SoundFont instead, without a word."""
    with open(path, "rb") as handle:
        header = handle.read(12)
    if header[:4] != b"RIFF" or header[8:12] != b"sfbk":
        raise AudioError(f"SoundFont '{path}' is not a SoundFont 2 (.sf2) file: it has no RIFF 'sfbk' header")


def render_wav(
    midi_path: Path,
    wav_path: Path,
    *,
    soundfont: str | Path,
    sample_rate: int = 44_100,
    gain: float = 0.5,
) -> Path:
    """Renders `midi_path` to a 16-bit WAV at `sample_rate` with the fluidsynth program; returns `wav_path`."""
    program = shutil.which("fluidsynth")
    if program is None:
        raise AudioError(f"the fluidsynth program is not installed; {INSTALL_HINT}")
    if Path(wav_path).is_dir():
        raise AudioError(f"{wav_path} is a folder: name the .wav file to write")
    font = find_soundfont(soundfont)
    with files.atomic_path(wav_path) as tmp:
        # Absolute paths: fluidsynth would read a file named `-x.mid` as an option (and it takes no `--`).
        command = [
            program, "-n", "-i", "-q",
            "-F", str(tmp.absolute()), "-T", "wav", "-O", "s16",
            "-r", str(sample_rate), "-g", str(gain),
            str(font.absolute()), str(Path(midi_path).absolute()),
        ]  # fmt: skip
        # An argument list, no shell, for the fluidsynth that shutil.which found.
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)  # noqa: S603 - see above
        if result.returncode != 0 or tmp.stat().st_size <= 44:
            said = " ".join((result.stderr.strip() or result.stdout.strip()).split())  # one line
            raise AudioError(f"fluidsynth failed on {midi_path}: {said}")
    return wav_path
