"""The generated pieces as files people open: NNN.mid, NNN.wav (FluidSynth) and NNN.png per piece, and
index.html, a static page that shows and plays them all with the numbers that describe each; and the picture
of how an auto temperature was chosen."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rollgen import files
from rollgen.evaluation.quality import best_scale, piece_features, pitch_class_histogram, relative_minor
from rollgen.generation.piece import GeneratedPiece
from rollgen.music.audio import render_wav
from rollgen.params import GenerateParams


def write_piece(piece: GeneratedPiece, stem: Path, steps_per_quarter: int, params: GenerateParams) -> None:
    """Writes stem.mid (music21, in the piece's meter), stem.wav (FluidSynth) and stem.png (readable roll) for
    one piece, its primer first unless `params.include_primer` is off."""
    midi_path = stem.with_suffix(".mid")
    files.write_bytes(midi_path, piece.midi(steps_per_quarter, params.tempo, params.include_primer))
    render_wav(midi_path, stem.with_suffix(".wav"), soundfont=params.soundfont)
    piece.save_picture(stem.with_suffix(".png"), steps_per_quarter, params.include_primer)


def piece_summary(piece: GeneratedPiece, steps_per_quarter: int, params: GenerateParams) -> dict[str, str]:
    """The numbers shown beside a piece on the index page, formatted: its primer, then the generated steps'
    numbers (never the primer's)."""
    roll, tempo_bpm = piece.roll, params.tempo
    features = piece_features(roll, steps_per_quarter)
    scale, in_scale = best_scale(pitch_class_histogram(roll))

    def show(value: float, pattern: str) -> str:
        return "–" if np.isnan(value) else pattern.format(value)

    steps = roll.shape[1]
    if not piece.primer_steps:
        primer = "none: generated from the first step"
    elif params.include_primer:
        primer = f"{piece.primer_steps} steps, shaded blue, before the blue line"
    else:
        primer = f"{piece.primer_steps} steps, read by the model, left out of the files"
    return {
        "primer": primer,
        "generated": f"{steps} steps, {steps / steps_per_quarter * 60 / tempo_bpm:.1f} s at {tempo_bpm:g} bpm",
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
        "<p>Piano rolls: pitch up (every C named, C4 is middle C), time right; a line every beat, a brighter one"
        " every bar, in the piece's meter; the primer the model read first is shaded blue, and the blue line is"
        " where its own steps begin. The numbers describe the generated steps only.</p>",
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
    pieces: list[GeneratedPiece],
    folder: Path,
    steps_per_quarter: int,
    params: GenerateParams,
    temperature: dict | None = None,
    progress: bool = True,
) -> Path:
    """Writes NNN.mid, NNN.wav and NNN.png per piece into `folder` at `params.tempo`, then index.html (with
    `temperature`, `with_temperature`'s record, where it was chosen); gives the page's path."""
    folder = Path(folder)
    stems = [f"{number:03d}" for number in range(len(pieces))]
    for stem, piece in zip(tqdm(stems, desc="write", unit="piece", disable=not progress), pieces):
        write_piece(piece, folder / stem, steps_per_quarter, params)
    summaries = [piece_summary(piece, steps_per_quarter, params) for piece in pieces]
    page = folder / "index.html"
    files.write_text(page, index_page(stems, summaries, sampling_settings(params, temperature)))
    return page


def sampling_settings(params: GenerateParams, temperature: dict | None = None) -> dict[str, object]:
    """The params that shaped the music, for the index page; an auto temperature says so and how it did."""
    settings: dict[str, object] = {"sampling": params.sampling}
    if params.sampling == "bernoulli":
        settings["temperature"] = params.temperature
        if temperature and temperature.get("auto"):
            passed = temperature["curve"][str(temperature["value"])]["gates_passed"]
            settings["temperature"] = (
                f"{temperature['value']:g} (auto: chosen among {len(temperature['curve'])} on the validation"
                f" pieces, {passed} quality gates passed)"
            )
        if onset := (temperature or {}).get("onset"):
            passed = onset["curve"][str(onset["value"])]["gates_passed"]
            settings["onset_temperature"] = (
                f"{onset['value']:g} (auto: fitted at that temperature, {passed} gates passed)"
            )
        elif params.onset_temperature != "auto":
            settings["onset_temperature"] = params.onset_temperature
    elif params.sampling == "threshold":
        settings["threshold"] = params.threshold
    else:
        settings.update(offset=params.vanish_proof, growth=params.vanish_inc)
    if params.sampling != "vanish_proof":
        settings.update(max_notes=params.max_notes or "off", min_notes=params.min_notes or "off")
    settings.update(primer=params.primer, primer_steps=params.primer_steps, seed=params.seed)
    return settings


def save_temperature_curve(curve: dict, target: Path, label: str = "temperature") -> Path:
    """A PNG of `fit_temperature`'s curve: the gates passed and the distance from the validation pieces per
    value tried of `label` (temperature, or onset temperature; matplotlib), for the training run."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    temperatures = [float(name) for name in curve]
    figure, passed_axis = pyplot.subplots(figsize=(6, 3.2), dpi=100)
    passed_axis.bar(temperatures, [entry["gates_passed"] for entry in curve.values()], width=0.03, color="#7aa6d6")
    passed_axis.set(xlabel=label, ylabel="quality gates passed (bars)")
    distance_axis = passed_axis.twinx()
    distances = [np.nan if entry["gates_distance"] is None else entry["gates_distance"] for entry in curve.values()]
    distance_axis.plot(temperatures, distances, "o-", color="#d68a2e")
    distance_axis.set(ylabel="distance from validation (line)")
    figure.tight_layout()
    with files.atomic_path(target) as tmp:
        figure.savefig(tmp, format="png")
    pyplot.close(figure)
    return Path(target)
