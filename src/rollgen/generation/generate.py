"""Autoregressive generation: every piece advances together, one model step per frame for the whole batch."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rollgen import files, paths
from rollgen.data.archive import Sequences, load_sequences, sounding
from rollgen.errors import RollgenError
from rollgen.evaluation.quality import best_scale, piece_features, pitch_class_histogram, quality_report, relative_minor
from rollgen.models import frame_model
from rollgen.models.frame_model import FrameModel
from rollgen.models.sampling import Sampler, make_sampler
from rollgen.music import meter
from rollgen.music.audio import render_wav
from rollgen.music.midi import MidiError, read_midi
from rollgen.music.pictures import save_roll_picture
from rollgen.music.roll import NUM_PITCHES, piece_to_roll, roll_to_midi
from rollgen.params import validate

PROGRESS_STEPS = 256  # the progress bar moves on every this many generated steps


def sample_frames(
    model: FrameModel,
    primers: np.ndarray,
    positions: np.ndarray,
    steps: int,
    sampler: Sampler,
    rng: np.random.Generator,
    progress: bool = True,
) -> np.ndarray:
    """`steps` new frames per primer: uint8 0/1 of shape (pieces, steps, pitches).

    primers: float frames (pieces, primer steps, pitches) in 0..1, read once; positions: int (pieces, primer
    steps + 1, 4), the bar positions of the primer's frames and of the first new one (rollgen.music.meter). Then
    one model step per new frame for all pieces at once: a window model slides its window (the article's
    loop), a sequence model carries its state, so a step costs the same however long the piece has run.
    """
    model.check(sampler)
    state = model.start(primers, positions)
    frames = np.zeros((len(primers), steps, primers.shape[2]), dtype=np.uint8)
    with tqdm(total=steps, desc="generate", unit="step", disable=not progress) as bar:
        for first in range(0, steps, PROGRESS_STEPS):
            count = min(PROGRESS_STEPS, steps - first)
            frames[:, first : first + count], state = model.generate(state, sampler, count, rng, first_step=first)
            bar.update(count)
    return frames


def excerpt_primers(data: Sequences, count: int, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` random excerpts of `steps` frames from the sequences of `data` long enough for them (all as
    long as the longest sequence where none is), as float primers, and their positions."""
    lengths = np.diff(data.offsets)
    if len(lengths) == 0 or lengths.max() == 0:
        raise RollgenError("the split has no frames to start from")
    steps = min(steps, int(lengths.max()))
    eligible = np.flatnonzero(lengths >= steps)
    sequences = eligible[rng.integers(len(eligible), size=count)]
    primers = np.zeros((count, steps, data.frames.shape[1]), np.float32)
    positions = np.zeros((count, steps + 1, data.positions.shape[1]), np.int32)
    for row, sequence in enumerate(sequences):
        first = data.offsets[sequence] + rng.integers(lengths[sequence] - steps + 1)
        primers[row] = data.frames[first : first + steps] / 255.0
        positions[row, :steps] = data.positions[first : first + steps]
        # the first new frame's position: the step after the primer's (or, with no primer, the excerpt's first)
        positions[row, steps] = meter.next_position(positions[row, steps - 1]) if steps else data.positions[first]
    return primers, positions


def midi_primers(
    path: Path, steps: int, count: int, steps_per_quarter: int = 4, grid: str = "nearest"
) -> tuple[np.ndarray, np.ndarray]:
    """The first `steps` steps of a MIDI file's roll (all of it when shorter), as `count` identical float
    primers, and their bar positions from the file's time signatures.

    The roll starts at the file's time 0, so a file that opens with rests gives a primer with silent steps.
    """
    path = Path(path)
    if not path.is_file():
        raise RollgenError(f"primer {path}: no such file")
    try:
        return primers_from_midi(path.read_bytes(), steps, count, steps_per_quarter, grid)
    except (MidiError, ValueError) as error:
        raise RollgenError(f"primer {path}: {error}") from error


def primers_from_midi(
    data: bytes, steps: int, count: int, steps_per_quarter: int = 4, grid: str = "nearest"
) -> tuple[np.ndarray, np.ndarray]:
    """As `midi_primers`, from the bytes of a MIDI file; raises MidiError for a file rollgen cannot read and
    ValueError for one without notes in range."""
    piece = read_midi(data)
    roll, _ = piece_to_roll(piece, steps_per_quarter=steps_per_quarter, grid=grid)
    if roll.shape[1] == 0:
        raise ValueError("no notes in range to start from")
    steps = min(steps, roll.shape[1])
    where = meter.frame_positions(meter.Meter.from_piece(piece, steps_per_quarter), steps + 1)
    window = roll[:, :steps].T.astype(np.float32)
    return np.repeat(window[None], count, axis=0), np.repeat(where[None], count, axis=0).astype(np.int32)


def make_primers(
    primer: str | Path,
    count: int,
    steps: int,
    rng: np.random.Generator,
    data: Sequences | None = None,
    steps_per_quarter: int = 4,
    grid: str = "nearest",
) -> tuple[np.ndarray, np.ndarray]:
    """Primers (count, steps, 106) in 0..1 and their positions (count, steps + 1, 4): `primer` 'test' (or
    'val') draws random excerpts of `data` with `rng`; 'none' starts from nothing at a bar line; anything
    else is a MIDI file whose start begins every piece."""
    if str(primer) == "none":
        start = meter.default_positions(1, steps_per_quarter)
        return np.zeros((count, 0, NUM_PITCHES), np.float32), np.repeat(start[None], count, axis=0).astype(np.int32)
    if str(primer) not in ("test", "val"):
        return midi_primers(Path(primer), steps, count, steps_per_quarter, grid)
    if data is None:
        raise RollgenError(f"primer '{primer}' needs that split's archive")
    return excerpt_primers(data, count, steps, rng)


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
    rolls: list[np.ndarray],
    folder: Path,
    steps_per_quarter: int,
    tempo_bpm: float,
    soundfont: str,
    settings: dict[str, object],
    progress: bool = True,
) -> Path:
    """Writes NNN.mid, NNN.wav and NNN.png per bool roll into `folder`, then index.html; gives the page's path."""
    folder = Path(folder)
    stems = [f"{number:03d}" for number in range(len(rolls))]
    for stem, roll in zip(tqdm(stems, desc="write", unit="piece", disable=not progress), rolls):
        write_piece(roll, folder / stem, steps_per_quarter, tempo_bpm, soundfont)
    summaries = [piece_summary(roll, steps_per_quarter, tempo_bpm) for roll in rolls]
    page = folder / "index.html"
    files.write_text(page, index_page(stems, summaries, settings))
    return page


def sampler_from_params(params: dict) -> Sampler:
    """The sampler the `generate` params describe, every key given (GenerateParams dumped; caps 0 = off)."""
    return make_sampler(
        params["sampling"],
        threshold=params["threshold"],
        temperature=params["temperature"],
        vanish_proof=params["vanish_proof"],
        vanish_inc=params["vanish_inc"],
        max_notes=params["max_notes"],
        min_notes=params["min_notes"],
    )


def sampling_settings(params: dict) -> dict[str, object]:
    """The params that shaped the music, for the index page."""
    mode = params["sampling"]
    settings: dict[str, object] = {"sampling": mode}
    if mode == "bernoulli":
        settings["temperature"] = params["temperature"]
    elif mode == "threshold":
        settings["threshold"] = params["threshold"]
    else:
        settings.update(offset=params["vanish_proof"], growth=params["vanish_inc"])
    if mode != "vanish_proof":
        settings.update(max_notes=params["max_notes"] or "off", min_notes=params["min_notes"] or "off")
    settings.update(primer=params["primer"], primer_steps=params["primer_steps"], seed=params["seed"])
    return settings


def run(
    params: dict,
    model_path: Path = paths.MODEL,
    windows_dir: Path = paths.WINDOWS_DIR,
    out_dir: Path = paths.GENERATED,
    metrics_path: Path = paths.GENERATE_METRICS,
) -> dict:
    """Generates `params['pieces']` pieces into `out_dir` (replaced as a whole) on the grid the model was
    trained on, and compares them with the test pieces in `metrics_path`
    (see rollgen.evaluation.quality.quality_report).
    `params` are checked, missing keys taking their defaults (rollgen.params.GenerateParams)."""
    params = validate("generate", params).model_dump()
    rng = np.random.default_rng(params["seed"])
    test = load_sequences("test", windows_dir)
    model = frame_model.load(model_path)
    steps_per_quarter = model.steps_per_quarter
    sampler = sampler_from_params(params)
    model.check(sampler)
    primer = params["primer"]
    source = load_sequences(primer, windows_dir) if primer in ("test", "val") else None
    primers, positions = make_primers(
        primer, params["pieces"], params["primer_steps"], rng, source, steps_per_quarter, model.grid
    )
    frames = sample_frames(model, primers, positions, params["steps"], sampler, rng)
    rolls = [piece.T.astype(bool) for piece in frames]
    with files.atomic_dir(out_dir) as folder:
        write_pieces(rolls, folder, steps_per_quarter, params["tempo"], params["soundfont"], sampling_settings(params))
    test_rolls = [sounding(test.sequence(number).T) for number in range(len(test))]
    metrics = {**quality_report(rolls, test_rolls, steps_per_quarter), "sampling": params["sampling"], "primer": primer}
    files.write_json(metrics_path, metrics)
    return metrics
