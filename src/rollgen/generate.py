"""Autoregressive generation: every piece advances together, one model call per step for the whole batch."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rollgen import files, paths
from rollgen.audio import render_wav
from rollgen.images import image_to_roll
from rollgen.midi import MidiError, read_midi
from rollgen.pictures import save_roll_picture
from rollgen.quality import best_scale, piece_features, pitch_class_histogram, quality_report, relative_minor
from rollgen.roll import NUM_PITCHES, piece_to_roll, roll_to_midi
from rollgen.sampling import Sampler, check_autoregressive_caps, make_sampler
from rollgen.windows import load_split


def step_function(model, jit_compile: bool):
    """One compiled TensorFlow function per generation step for a window batch (pieces, context, pitches).

    Factorised models: window -> probabilities. Autoregressive (NADE) models: (window, levels) -> frame, the
    whole chord drawn pitch by pitch inside the compiled step.
    """
    import tensorflow as tf

    from rollgen.models import is_autoregressive, nade_parts

    if not is_autoregressive(model):
        return tf.function(lambda window: model(window, training=False), jit_compile=jit_compile)
    encoder, head = nade_parts(model)

    def draw(window, levels, temperature):
        frame, _ = head.sample(encoder(window, training=False), levels, temperature)
        return frame

    return tf.function(draw, jit_compile=jit_compile)


def sample_frames(
    model,
    primers: np.ndarray,
    steps: int,
    sampler: Sampler,
    rng: np.random.Generator,
    progress: bool = True,
    jit_compile: bool = False,
) -> np.ndarray:
    """`steps` new frames per primer window: uint8 0/1 of shape (pieces, steps, pitches).

    primers: float windows (pieces, context, pitches) in 0..1. Each new frame joins the end of the window
    and the oldest frame leaves, as in the article's loop. jit_compile: XLA-compile the model call; off by
    default, since on CPU its compile (~1-2 s) costs more than it saves on 64 pieces x 256 steps
    (benchmarks/generate.py), and on a GPU Keras picks cuDNN's LSTM kernel, which XLA does not compile.
    """
    import tensorflow as tf

    from rollgen.models import is_autoregressive

    window = np.asarray(primers, dtype=np.float32).copy()
    call = step_function(model, jit_compile)
    autoregressive = is_autoregressive(model)
    temperature = tf.constant(sampler.temperature, tf.float32)
    frames = np.zeros((len(window), steps, window.shape[2]), dtype=np.uint8)
    for step in tqdm(range(steps), desc="generate", unit="step", disable=not progress):
        if autoregressive:
            levels = sampler.levels(window[:, 0].shape, step, rng)
            frames[:, step] = call(tf.constant(window), tf.constant(levels), temperature).numpy()
        else:
            frames[:, step] = sampler(call(tf.constant(window)).numpy(), step, rng)
        window = np.concatenate([window[:, 1:], frames[:, step, None].astype(np.float32)], axis=1)
    return frames


def choose_primers(test_x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` random test windows (uint8) as float primers in 0..1."""
    if len(test_x) == 0:
        raise SystemExit("generate: the test split has no windows to start from")
    return test_x[rng.integers(len(test_x), size=count)].astype(np.float32) / 255.0


def midi_primers(path: Path, context: int, count: int, steps_per_quarter: int = 4) -> np.ndarray:
    """The first `context` steps of a MIDI file's roll, as `count` identical float primers (count, context, 106).

    The roll starts at the file's time 0, so a file that opens with rests gives a primer with silent steps.
    """
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"primer {path}: no such file")
    try:
        roll, _ = piece_to_roll(read_midi(path.read_bytes()), steps_per_quarter=steps_per_quarter)
    except MidiError as error:
        raise SystemExit(f"primer {path}: {error}") from error
    if roll.shape[1] < context:
        raise SystemExit(
            f"primer {path}: too short: {roll.shape[1]} steps of music at {steps_per_quarter} steps per quarter note;"
            f" the model needs {context} steps of context"
        )
    window = roll[:, :context].T.astype(np.float32)
    return np.repeat(window[None], count, axis=0)


def make_primers(
    primer: str | Path,
    count: int,
    context: int,
    rng: np.random.Generator,
    test_x: np.ndarray | None = None,
    steps_per_quarter: int = 4,
) -> np.ndarray:
    """Primers (count, context, 106) in 0..1: `primer` 'test' draws random test windows `test_x` with `rng`;
    anything else is a MIDI file whose start begins every piece."""
    if str(primer) != "test":
        return midi_primers(Path(primer), context, count, steps_per_quarter)
    if test_x is None:
        raise SystemExit("generate: primer 'test' needs the test windows")
    if test_x.shape[1:] != (context, NUM_PITCHES):
        raise SystemExit(
            f"generate: test windows have shape {test_x.shape[1:]}, the model takes {(context, NUM_PITCHES)}"
        )
    return choose_primers(test_x, count, rng)


def model_context(model) -> int:
    """Frames of context the model takes (the length of its window input)."""
    return int(model.inputs[0].shape[1])


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
    """The sampler `generate.*` params describe (caps 0 or missing = off)."""
    return make_sampler(
        params["sampling"],
        threshold=params["threshold"],
        temperature=params["temperature"],
        vanish_proof=params["vanish_proof"],
        vanish_inc=params["vanish_inc"],
        max_notes=params.get("max_notes", 0),
        min_notes=params.get("min_notes", 0),
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
        settings.update(max_notes=params.get("max_notes", 0) or "off", min_notes=params.get("min_notes", 0) or "off")
    settings.update(primer=params.get("primer", "test"), seed=params["seed"])
    return settings


def run(
    params: dict,
    model_path: Path = paths.MODEL,
    windows_dir: Path = paths.WINDOWS_DIR,
    out_dir: Path = paths.GENERATED,
    metrics_path: Path = paths.GENERATE_METRICS,
    steps_per_quarter: int = 4,
) -> dict:
    """Generates `params['pieces']` pieces into `out_dir` (replaced as a whole) and compares them with the
    test pieces in `metrics_path` (see rollgen.quality.quality_report)."""
    from rollgen.models import is_autoregressive, load_model

    rng = np.random.default_rng(params["seed"])
    test = load_split("test", windows_dir)
    model = load_model(model_path)
    sampler = sampler_from_params(params)
    if is_autoregressive(model):
        check_autoregressive_caps(params.get("max_notes", 0), params.get("min_notes", 0))
    primer = params.get("primer", "test")
    primers = make_primers(primer, params["pieces"], model_context(model), rng, test["x"], steps_per_quarter)
    frames = sample_frames(model, primers, params["steps"], sampler, rng)
    rolls = [piece.T.astype(bool) for piece in frames]
    with files.atomic_dir(out_dir) as folder:
        write_pieces(rolls, folder, steps_per_quarter, params["tempo"], params["soundfont"], sampling_settings(params))
    offsets = test["frame_offsets"]
    test_rolls = [image_to_roll(test["frames"][start:end]).T for start, end in zip(offsets[:-1], offsets[1:])]
    metrics = {**quality_report(rolls, test_rolls, steps_per_quarter), "sampling": params["sampling"], "primer": primer}
    files.write_json(metrics_path, metrics)
    return metrics
