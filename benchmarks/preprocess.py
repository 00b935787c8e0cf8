"""Preprocessing speed, MIDI file -> 106x106 images: the article's music21 path against rollgen's.

    python benchmarks/preprocess.py [--files N] [--workers W] [--midi-dir DIR]

On the same MIDI files, in one run, per file:
- article, cold: the first music21 parse of the file in this process (`forceSource=True`, so no pickle),
  partitionByInstrument, notes to roll, 100-step chunks resized to 106x106 with LANCZOS
  (`rollgen.article`); warm: the same again, right after, for the same file;
- rollgen, one process: read the bytes, read_midi (py_midicsv), piece_to_roll, roll_to_images (lossless),
  every image encoded as PNG in memory;
- rollgen with W spawned worker processes over all the files.
Prints median milliseconds per file, the ratios, the workers' speed-up and how many rolls agree exactly
(article vs rollgen), then all figures as one JSON object on the last line.
The input is `data/interim/midi/*.mid` (what `dvc repro` writes); without it, the Bach chorales of
music21's corpus are exported to MIDI in a temporary folder first (not timed).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from rollgen import paths
from rollgen.article import article_roll, roll_to_article_images, rolls_equal
from rollgen.corpus import music21_corpus_files, score_to_midi
from rollgen.images import roll_to_images
from rollgen.midi import read_midi
from rollgen.roll import piece_to_roll


def article_path(midi_path: Path) -> np.ndarray:
    """The article's preprocessing of one file; gives its roll (the images are made and dropped)."""
    roll = article_roll(midi_path)
    roll_to_article_images(roll)
    return roll


def rollgen_path(midi_path: Path) -> np.ndarray:
    """rollgen's preprocessing of one file, PNGs encoded in memory; gives its roll."""
    roll, _ = piece_to_roll(read_midi(Path(midi_path).read_bytes()))
    for image in roll_to_images(roll, mode="lossless"):
        Image.fromarray(image).save(io.BytesIO(), format="PNG")
    return roll


def timed(function: Callable, *args) -> tuple[float, object]:
    """Seconds `function(*args)` took, and what it gave back."""
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def rollgen_worker(midi_path: Path) -> float:
    """Seconds rollgen's path took for one file in a worker process."""
    seconds, _ = timed(rollgen_path, midi_path)
    return seconds


def export_chorale(score: Path, folder: Path) -> Path | None:
    """The chorale exported to MIDI in `folder`, or None when music21 cannot convert it."""
    try:
        data = score_to_midi(score)
    except Exception:  # a score music21 cannot convert (bwv277.krn) is left out, as by the ingest stage
        return None
    target = folder / f"{score.stem}.mid"
    target.write_bytes(data)
    return target


def input_files(midi_dir: Path, limit: int | None, workers: int, pool_context, scratch: Path) -> list[Path]:
    """The MIDI files to time: `midi_dir/*.mid`, else music21's Bach chorales exported into `scratch`."""
    found = sorted(midi_dir.glob("*.mid"))
    if found:
        return found[:limit]
    _, scores = music21_corpus_files("bach")
    scores = scores[:limit]
    print(f"{midi_dir} has no MIDI files: exporting {len(scores)} chorales from music21's corpus", file=sys.stderr)
    with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context) as pool:
        jobs = pool.map(export_chorale, scores, [scratch] * len(scores))
        exported = list(tqdm(jobs, total=len(scores), desc="export", unit="score"))
    return [path for path in exported if path is not None]


def milliseconds(seconds: list[float]) -> float:
    return round(1000 * statistics.median(seconds), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=None, help="time only the first N files (default: all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    parser.add_argument("--midi-dir", type=Path, default=paths.MIDI_DIR, help="folder of .mid files")
    args = parser.parse_args()
    # music21's modules are loaded before the clock starts: a cold parse is the file's first, not music21's.
    import music21.converter
    import music21.instrument

    spawn = multiprocessing.get_context("spawn")

    with tempfile.TemporaryDirectory(prefix="rollgen-bench-") as scratch:
        files = input_files(args.midi_dir, args.files, args.workers, spawn, Path(scratch))
        if not files:
            sys.exit(f"no MIDI files to time in {args.midi_dir}")
        cold, warm, article_rolls = [], [], []
        for path in tqdm(files, desc="article (music21)", unit="file"):
            seconds, roll = timed(article_path, path)
            cold.append(seconds)
            seconds, again = timed(article_path, path)
            warm.append(seconds)
            if not rolls_equal(roll, again):
                sys.exit(f"{path}: music21 gave two different rolls for the same file")
            article_rolls.append(roll)

        rollgen_path(files[0])  # first-use imports (PNG encoder) out of the timing
        single, rollgen_rolls = [], []
        single_start = time.perf_counter()
        for path in tqdm(files, desc="rollgen", unit="file"):
            seconds, roll = timed(rollgen_path, path)
            single.append(seconds)
            rollgen_rolls.append(roll)
        single_wall = time.perf_counter() - single_start

        pool_start = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=spawn) as pool:
            list(pool.map(rollgen_worker, files[: args.workers]))  # start every worker and import rollgen
            pool_started = time.perf_counter() - pool_start
            parallel_start = time.perf_counter()
            chunksize = max(1, len(files) // (4 * args.workers))
            in_workers = list(pool.map(rollgen_worker, files, chunksize=chunksize))
            parallel_wall = time.perf_counter() - parallel_start

    disagree = [path.name for path, a, r in zip(files, article_rolls, rollgen_rolls) if not rolls_equal(a, r)]

    figures = {
        "files": len(files),
        "workers": args.workers,
        "cores": os.cpu_count(),
        "article_cold_ms": milliseconds(cold),
        "article_warm_ms": milliseconds(warm),
        "rollgen_ms": milliseconds(single),
        "rollgen_in_workers_ms": milliseconds(in_workers),
        "rollgen_workers_wall_ms_per_file": round(1000 * parallel_wall / len(files), 3),
        "ratio_article_cold_to_rollgen": round(statistics.median(cold) / statistics.median(single), 2),
        "ratio_article_warm_to_rollgen": round(statistics.median(warm) / statistics.median(single), 2),
        "workers_speedup": round(single_wall / parallel_wall, 2),
        "rollgen_single_wall_s": round(single_wall, 3),
        "rollgen_workers_wall_s": round(parallel_wall, 3),
        "pool_start_s": round(pool_started, 3),
        "article_total_s": round(sum(cold) + sum(warm), 3),
        "rolls_agree": len(files) - len(disagree),
        "rolls_disagree": disagree,
        "music21": music21.__version__,
        "python": platform.python_version(),
    }
    print(f"files: {len(files)}, medians in ms per file (cores: {figures['cores']})")
    print(f"  article cold (music21, first parse): {figures['article_cold_ms']:9.2f}")
    print(f"  article warm (music21, second parse): {figures['article_warm_ms']:8.2f}")
    print(f"  rollgen, one process:                {figures['rollgen_ms']:9.2f}")
    print(
        f"  rollgen, {args.workers} workers:              {figures['rollgen_workers_wall_ms_per_file']:9.2f}"
        f" (wall time / files; x{figures['workers_speedup']} over one process, pool start {figures['pool_start_s']} s)"
    )
    print(
        f"  article/rollgen: cold x{figures['ratio_article_cold_to_rollgen']},"
        f" warm x{figures['ratio_article_warm_to_rollgen']}"
    )
    print(f"  rolls agree exactly: {figures['rolls_agree']}/{len(files)}; differ: {', '.join(disagree) or 'none'}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
