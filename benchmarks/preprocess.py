"""Preprocessing speed, MIDI file -> 106x106 images: the article's music21 path against rollgen's.

    python benchmarks/preprocess.py [--files N] [--workers W] [--midi-dir DIR] [--repeats R]

On the same MIDI files, in one run, per file:
- article, cold: the first music21 parse of the file in this process (`forceSource=True`, so no pickle),
  partitionByInstrument, notes to roll, 100-step chunks resized to 106x106 with LANCZOS
  (`benchmarks/article.py`); warm: the same again, right after, for the same file;
- rollgen, one process: read the bytes, read_midi (the default parser: the notes rollgen.music.smf decodes while it
  checks the file), piece_to_roll, roll_to_images (lossless), every image encoded as PNG in memory;
- the same with read_midi's reference parser, py_midicsv (`parser="py_midicsv"`), and whether the two parsers
  give the same notes for every file;
- rollgen with W spawned worker processes over all the files: the speed-up compares the fastest of
  `--repeats` passes of one process and of W workers, run in turn;
- rollgen's peak memory (tracemalloc, in a fresh process) over each quarter of the files in turn: it stays
  flat when nothing piles up from file to file.
Prints median milliseconds per file (wall clock, and CPU time for the one-process paths), the ratios, the
workers' speed-up and how many rolls agree exactly (article vs rollgen), then all figures as one JSON
object on the last line.
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
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from article import article_roll, roll_to_article_images, rolls_equal
from PIL import Image
from tqdm import tqdm

from rollgen import paths
from rollgen.data.images import IMAGE_SIZE, roll_to_images
from rollgen.music.corpus import music21_corpus_files, score_to_midi
from rollgen.music.midi import PARSERS, read_midi
from rollgen.music.roll import piece_to_roll, sounding
from rollgen.params import ImagesParams


def article_path(midi_path: Path) -> np.ndarray:
    """The article's preprocessing of one file; gives its roll (the images are made and dropped)."""
    roll = article_roll(midi_path)
    roll_to_article_images(roll)
    return roll


def rollgen_path(midi_path: Path, parser: str = "fast") -> np.ndarray:
    """rollgen's preprocessing of one file, PNGs encoded in memory; gives what sounds in its roll (bool, as the
    article's roll)."""
    images = ImagesParams()  # the images stage's defaults: 16th notes, the nearest step
    piece = read_midi(Path(midi_path).read_bytes(), parser=parser)
    roll, _ = piece_to_roll(piece, images.steps_per_quarter, grid=images.grid)
    for image in roll_to_images(roll, mode="lossless", chunk_steps=IMAGE_SIZE):
        Image.fromarray(image).save(io.BytesIO(), format="PNG")
    return sounding(roll)


def same_notes(midi_path: Path) -> bool:
    """Whether both of read_midi's parsers give the same piece for the file."""
    data = Path(midi_path).read_bytes()
    fast, reference = (read_midi(data, parser=parser) for parser in PARSERS)
    return all(
        np.array_equal(getattr(fast, name), getattr(reference, name)) for name in ("pitches", "starts", "ends")
    ) and ((fast.dropped, fast.repaired, fast.seconds) == (reference.dropped, reference.repaired, reference.seconds))


def memory_over_files(files: list[Path], parts: int = 4) -> list[dict]:
    """Peak traced memory of rollgen's path over each successive part of `files` (tracemalloc, which also
    counts NumPy's buffers), the memory still held after each part, and the process's peak resident size."""
    tracemalloc.start()
    figures, done = [], 0
    for part in np.array_split(np.arange(len(files)), parts):
        tracemalloc.reset_peak()
        for index in part:
            rollgen_path(files[index])
        done += len(part)
        current, peak = tracemalloc.get_traced_memory()
        max_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
        figures.append(
            {"files": done, "peak_kb": peak // 1024, "held_kb": current // 1024, "max_rss_mb": round(max_rss_kb / 1024)}
        )
    tracemalloc.stop()
    return figures


def timed(function: Callable, *args) -> tuple[float, float, object]:
    """Seconds `function(*args)` took, wall clock and CPU time of this process, and what it gave back. CPU
    time barely moves when other programs share the cores; wall time does."""
    start, start_cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return time.perf_counter() - start, time.process_time() - start_cpu, result


def rollgen_worker(midi_path: Path) -> float:
    """Seconds rollgen's path took for one file in a worker process."""
    seconds, _, _ = timed(rollgen_path, midi_path)
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
    parser.add_argument("--repeats", type=int, default=3, help="passes of one process and of W workers (default 3)")
    args = parser.parse_args()
    # music21's modules are loaded before the clock starts: a cold parse is the file's first, not music21's.
    import music21.converter
    import music21.instrument

    spawn = multiprocessing.get_context("spawn")
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="rollgen-bench-") as scratch:
        files = input_files(args.midi_dir, args.files, args.workers, spawn, Path(scratch))
        if not files:
            sys.exit(f"no MIDI files to time in {args.midi_dir}")
        cold, warm, cold_cpu, warm_cpu, article_rolls = [], [], [], [], []
        for path in tqdm(files, desc="article (music21)", unit="file"):
            seconds, cpu, roll = timed(article_path, path)
            cold.append(seconds)
            cold_cpu.append(cpu)
            seconds, cpu, again = timed(article_path, path)
            warm.append(seconds)
            warm_cpu.append(cpu)
            if not rolls_equal(roll, again):
                sys.exit(f"{path}: music21 gave two different rolls for the same file")
            article_rolls.append(roll)

        rollgen_path(files[0])  # first-use imports (PNG encoder) out of the timing
        single, single_cpu, rollgen_rolls = [], [], []
        single_start = time.perf_counter()
        for path in tqdm(files, desc="rollgen", unit="file"):
            seconds, cpu, roll = timed(rollgen_path, path)
            single.append(seconds)
            single_cpu.append(cpu)
            rollgen_rolls.append(roll)
        single_wall = time.perf_counter() - single_start

        reference = [timed(rollgen_path, path, "py_midicsv")[0] for path in tqdm(files, desc="py_midicsv", unit="file")]
        parsers_agree = sum(same_notes(path) for path in files)

        pool_start = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=spawn) as pool:
            list(pool.map(rollgen_worker, files[: args.workers]))  # start every worker and import rollgen
            pool_started = time.perf_counter() - pool_start
            chunksize = max(1, len(files) // (4 * args.workers))
            # One process against W, passes in turn, the fastest of each: a busy machine slows single passes.
            single_walls, parallel_walls = [single_wall], []
            for repeat in range(args.repeats):
                parallel_start = time.perf_counter()
                in_workers = list(pool.map(rollgen_worker, files, chunksize=chunksize))
                parallel_walls.append(time.perf_counter() - parallel_start)
                if repeat + 1 < args.repeats:
                    single_start = time.perf_counter()
                    for path in files:
                        rollgen_path(path)
                    single_walls.append(time.perf_counter() - single_start)
            single_wall, parallel_wall = min(single_walls), min(parallel_walls)
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:  # a fresh process: rollgen's memory alone
            memory = pool.submit(memory_over_files, files).result()

    disagree = [path.name for path, a, r in zip(files, article_rolls, rollgen_rolls) if not rolls_equal(a, r)]

    figures = {
        "files": len(files),
        "workers": args.workers,
        "cores": os.cpu_count(),
        "article_cold_ms": milliseconds(cold),
        "article_warm_ms": milliseconds(warm),
        "rollgen_ms": milliseconds(single),
        "rollgen_py_midicsv_ms": milliseconds(reference),
        "rollgen_in_workers_ms": milliseconds(in_workers),
        "rollgen_workers_wall_ms_per_file": round(1000 * parallel_wall / len(files), 3),
        "ratio_article_cold_to_rollgen": round(statistics.median(cold) / statistics.median(single), 2),
        "ratio_article_warm_to_rollgen": round(statistics.median(warm) / statistics.median(single), 2),
        "ratio_py_midicsv_to_fast": round(statistics.median(reference) / statistics.median(single), 2),
        "article_cold_cpu_ms": milliseconds(cold_cpu),
        "article_warm_cpu_ms": milliseconds(warm_cpu),
        "rollgen_cpu_ms": milliseconds(single_cpu),
        "ratio_article_cold_to_rollgen_cpu": round(statistics.median(cold_cpu) / statistics.median(single_cpu), 2),
        "ratio_article_warm_to_rollgen_cpu": round(statistics.median(warm_cpu) / statistics.median(single_cpu), 2),
        "workers_speedup": round(single_wall / parallel_wall, 2),
        "rollgen_single_wall_s": round(single_wall, 3),
        "rollgen_workers_wall_s": round(parallel_wall, 3),
        "single_walls_s": [round(wall, 3) for wall in single_walls],
        "workers_walls_s": [round(wall, 3) for wall in parallel_walls],
        "pool_start_s": round(pool_started, 3),
        "article_total_s": round(sum(cold) + sum(warm), 3),
        "rolls_agree": len(files) - len(disagree),
        "rolls_disagree": disagree,
        "parsers_agree": parsers_agree,
        "memory_by_files": memory,
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # at the start and at the end
        "music21": music21.__version__,
        "python": platform.python_version(),
    }
    print(f"files: {len(files)}, medians in ms per file (cores: {figures['cores']})")
    print(f"  article cold (music21, first parse): {figures['article_cold_ms']:9.2f}")
    print(f"  article warm (music21, second parse): {figures['article_warm_ms']:8.2f}")
    print(f"  rollgen, one process:                {figures['rollgen_ms']:9.2f}")
    print(f"  rollgen with py_midicsv, one process:{figures['rollgen_py_midicsv_ms']:9.2f}")
    print(
        f"  rollgen, {args.workers} workers:              {figures['rollgen_workers_wall_ms_per_file']:9.2f}"
        f" (wall time / files; x{figures['workers_speedup']} over one process, pool start {figures['pool_start_s']} s)"
    )
    print(
        f"  article/rollgen: cold x{figures['ratio_article_cold_to_rollgen']},"
        f" warm x{figures['ratio_article_warm_to_rollgen']}"
    )
    cpu = [figures[f"{name}_cpu_ms"] for name in ("article_cold", "article_warm", "rollgen")]
    print(
        f"  in CPU time: article cold {cpu[0]:.2f}, warm {cpu[1]:.2f}, rollgen {cpu[2]:.2f} ms;"
        f" cold x{figures['ratio_article_cold_to_rollgen_cpu']}, warm x{figures['ratio_article_warm_to_rollgen_cpu']}"
        f" (1-minute load average {figures['load_average_1min']} on {figures['cores']} cores)"
    )
    print(f"  rolls agree exactly: {figures['rolls_agree']}/{len(files)}; differ: {', '.join(disagree) or 'none'}")
    print(f"  fast parser and py_midicsv give the same notes: {parsers_agree}/{len(files)}")
    peaks = ", ".join(f"{part['peak_kb']} KiB after {part['files']}" for part in memory)
    print(f"  rollgen's peak traced memory per quarter of the files: {peaks}; peak RSS {memory[-1]['max_rss_mb']} MB")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
