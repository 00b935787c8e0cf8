"""Autoregressive generation: every piece advances together, one model call per step for the whole batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from rollgen import files, paths
from rollgen.audio import render_wav
from rollgen.images import image_to_roll
from rollgen.pictures import save_roll_picture
from rollgen.roll import roll_to_midi
from rollgen.sampling import Sampler, make_sampler
from rollgen.stats import roll_stats
from rollgen.windows import load_split


def sample_frames(
    model, primers: np.ndarray, steps: int, sampler: Sampler, rng: np.random.Generator, progress: bool = True
) -> np.ndarray:
    """`steps` new frames per primer window: uint8 0/1 of shape (pieces, steps, pitches).

    primers: float windows (pieces, context, pitches) in 0..1. Each new frame joins the end of the window
    and the oldest frame leaves, as in the article's loop.
    """
    import tensorflow as tf

    step_function = tf.function(lambda window: model(window, training=False))
    window = np.asarray(primers, dtype=np.float32).copy()
    frames = np.zeros((len(window), steps, window.shape[2]), dtype=np.uint8)
    for step in tqdm(range(steps), desc="generate", unit="step", disable=not progress):
        probabilities = np.asarray(step_function(tf.constant(window)))
        frames[:, step] = sampler(probabilities, step, rng)
        window = np.concatenate([window[:, 1:], frames[:, step, None].astype(np.float32)], axis=1)
    return frames


def choose_primers(test_x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` random test windows (uint8) as float primers in 0..1."""
    if len(test_x) == 0:
        raise SystemExit("generate: the test split has no windows to start from")
    return test_x[rng.integers(len(test_x), size=count)].astype(np.float32) / 255.0


def write_piece(roll: np.ndarray, stem: Path, steps_per_quarter: int, tempo_bpm: float, soundfont: str) -> None:
    """Writes stem.mid (music21), stem.wav (FluidSynth) and stem.png (readable roll) for one bool roll."""
    midi_path = stem.with_suffix(".mid")
    files.write_bytes(midi_path, roll_to_midi(roll, steps_per_quarter=steps_per_quarter, tempo_bpm=tempo_bpm))
    render_wav(midi_path, stem.with_suffix(".wav"), soundfont=soundfont)
    save_roll_picture(roll, stem.with_suffix(".png"), steps_per_quarter=steps_per_quarter)


def run(
    params: dict,
    model_path: Path = paths.MODEL,
    windows_dir: Path = paths.WINDOWS_DIR,
    out_dir: Path = paths.GENERATED,
    metrics_path: Path = paths.GENERATE_METRICS,
    steps_per_quarter: int = 4,
) -> dict:
    """Generates `params['pieces']` pieces into `out_dir` and compares them with the test pieces."""
    from rollgen.models import load_model

    rng = np.random.default_rng(params["seed"])
    test = load_split("test", windows_dir)
    sampler = make_sampler(
        params["sampling"],
        threshold=params["threshold"],
        temperature=params["temperature"],
        vanish_proof=params["vanish_proof"],
        vanish_inc=params["vanish_inc"],
    )
    primers = choose_primers(test["x"], params["pieces"], rng)
    frames = sample_frames(load_model(model_path), primers, params["steps"], sampler, rng)
    rolls = [piece.T.astype(bool) for piece in frames]
    with files.atomic_dir(out_dir) as folder:
        for number, roll in enumerate(tqdm(rolls, desc="write", unit="piece")):
            write_piece(roll, folder / f"{number:03d}", steps_per_quarter, params["tempo"], params["soundfont"])
    offsets = test["frame_offsets"]
    test_rolls = [image_to_roll(test["frames"][start:end]).T for start, end in zip(offsets[:-1], offsets[1:])]
    metrics = {"generated": roll_stats(rolls), "test": roll_stats(test_rolls), "sampling": params["sampling"]}
    files.write_json(metrics_path, metrics)
    return metrics
