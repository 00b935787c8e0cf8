"""The generated pieces as files people open: NNN.mid, NNN.wav (FluidSynth) and NNN.png per piece, and
index.html, a static page that shows and plays them all with the numbers that describe each."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rollgen import files
from rollgen.evaluation.quality import best_scale, piece_features, pitch_class_histogram, relative_minor
from rollgen.music.audio import render_wav
from rollgen.music.pictures import save_roll_picture
from rollgen.music.roll import roll_to_midi
from rollgen.params import GenerateParams


def write_piece(roll: np.ndarray, stem: Path, steps_per_quarter: int, tempo_bpm: float, soundfont: str) -> None:
    """Writes stem.mid (music21), stem.wav (FluidSynth) and stem.png (readable roll) for one bool roll."""
    midi_path = stem.with_suffix(".mid")
    files.write_bytes(midi_path, roll_to_midi(roll, steps_per_quarter=steps_per_quarter, tempo_bpm=tempo_bpm))
    render_wav(midi_path, stem.with_suffix(".wav"), soundfont=soundfont)
    save_roll_picture(roll, stem.with_suffix(".png"), steps_per_quarter=steps_per_quarter)


def piece_summary(roll: np.ndarray, steps_per_quarter: int, tempo_bpm: float) -> dict[str, str]:
    """The numbers shown beside a piece on the index page, formatted."""
    features = piece_features(roll, steps_per_quarter)
    scale, in_scale = best_scale(pitch_class_histogram(roll))

    def show(value: float, pattern: str) -> str:
        return "–" if np.isnan(value) else pattern.format(value)

    steps = roll.shape[1]
    return {
        "length": f"{steps} steps, {steps / steps_per_quarter * 60 / tempo_bpm:.1f} s at {tempo_bpm:g} bpm",
        "notes": f"{int(round(features['notes_per_step'] * steps))} ({features['notes_per_step']:.2f} per step)",
        "mean polyphony": show(features["mean_polyphony"], "{:.2f} pitches per sounding step"),
        "silent steps": f"{features['silent_fraction']:.1%}",
        "pitch range": show(features["pitch_range"], "{:.0f} semitones"),
        "best scale": f"{scale} / {relative_minor(scale)} ({in_scale:.0%} of the notes)" if scale else "–",
        "pitch-class entropy": show(features["pitch_class_entropy"], "{:.2f} bits"),
        "mean note length": show(features["mean_note_length"], "{:.1f} steps"),
    }


def index_page(stems: list[str], summaries: list[dict[str, str]], settings: dict[str, object]) -> str:
    """A static HTML page: every piece's roll picture, an audio player for its WAV, its MIDI and its numbers.
    Links are relative (the page sits beside the files); no script and nothing from outside."""
    escape = html.escape
    setting_text = ", ".join(f"{escape(str(key))} {escape(str(value))}" for key, value in settings.items())
    parts = [
        "<!doctype html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"><title>rollgen: generated pieces</title>',
        "<style>body{font-family:sans-serif;background:#16181f;color:#ddd;margin:2em}"
        "img{display:block;max-width:100%;image-rendering:pixelated}audio{width:100%;max-width:40em}"
        "section{margin-bottom:2.5em}th{text-align:left;font-weight:normal;color:#999;padding-right:1em}"
        "a{color:#fac85a}</style></head>",
        "<body>",
        f"<h1>{len(stems)} generated piece{'s' if len(stems) != 1 else ''}</h1>",
        f"<p>{setting_text}</p>",
        "<p>Piano rolls: pitch up, time right; a line every beat, a brighter one every bar.</p>",
    ]
    for stem, summary in zip(stems, summaries):
        name = escape(stem)
        rows = "".join(f"<tr><th>{escape(key)}</th><td>{escape(value)}</td></tr>" for key, value in summary.items())
        parts += [
            f'<section id="piece-{name}">',
            f"<h2>{name}</h2>",
            f'<img src="{name}.png" alt="piano roll of piece {name}">',
            f'<audio controls preload="none" src="{name}.wav"></audio>',
            f'<p><a href="{name}.wav">WAV</a> · <a href="{name}.mid">MIDI</a></p>',
            f"<table>{rows}</table>",
            "</section>",
        ]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def write_pieces(
    rolls: list[np.ndarray], folder: Path, steps_per_quarter: int, params: GenerateParams, progress: bool = True
) -> Path:
    """Writes NNN.mid, NNN.wav and NNN.png per bool roll (pitches, steps) into `folder` at `params.tempo`, then
    index.html; gives the page's path."""
    folder = Path(folder)
    stems = [f"{number:03d}" for number in range(len(rolls))]
    for stem, roll in zip(tqdm(stems, desc="write", unit="piece", disable=not progress), rolls):
        write_piece(roll, folder / stem, steps_per_quarter, params.tempo, params.soundfont)
    summaries = [piece_summary(roll, steps_per_quarter, params.tempo) for roll in rolls]
    page = folder / "index.html"
    files.write_text(page, index_page(stems, summaries, sampling_settings(params)))
    return page


def sampling_settings(params: GenerateParams) -> dict[str, object]:
    """The params that shaped the music, for the index page."""
    settings: dict[str, object] = {"sampling": params.sampling}
    if params.sampling == "bernoulli":
        settings["temperature"] = params.temperature
    elif params.sampling == "threshold":
        settings["threshold"] = params.threshold
    else:
        settings.update(offset=params.vanish_proof, growth=params.vanish_inc)
    if params.sampling != "vanish_proof":
        settings.update(max_notes=params.max_notes or "off", min_notes=params.min_notes or "off")
    settings.update(primer=params.primer, primer_steps=params.primer_steps, seed=params.seed)
    return settings
