"""Training speed of the `seed` model: the article's Model.fit on in-memory arrays against rollgen's loop.

    python benchmarks/train_throughput.py [--epochs 2] [--limit N] [--batch-size B] [--large-batch 256] [--loss mse]

On the same training windows (`data/processed/windows/train.npz`, what `dvc repro` writes; `--limit N` keeps
the first N), from the same initial weights (built once, copied into every model), with the same loss:
- article: every window copied out as floats in 0..1, x (n, 9, 106) and y (n, 106), as its split_sequences
  did (9 overlapping copies of every frame; building them is timed, and its peak memory traced, on its own),
  then `model.compile(optimizer="adam", loss=...)` and `model.fit(x, y, batch_size=32, shuffle=True)`
  (verbose=0: no progress bar to pay for);
- rollgen: `rollgen.train.Steps` (a plain tf.function) over `rollgen.train.make_dataset` (windows cut from the
  uint8 frames on the fly), Adam at params.yaml's `train.learning_rate`, at `--batch-size` (params.yaml's
  `train.batch_size`) and at `--large-batch`; and each of those with the replica's training step compiled by
  XLA (`jit_compile=True`, a subclass of Steps here).
`--article-batch-size 64` runs fit at rollgen's batch size instead, to tell the loop's share of a speed-up from
the batch size's.
The rows train one epoch each in turn, in reverse order every other epoch (one `fit` call per epoch for the
article), so a busy spell on the machine hits every row. After each epoch, untimed, every model is scored on
the validation windows by the same code (`Steps.evaluate`): the loss, and the NLL in nats per frame (Bernoulli
NLL summed over the 106 pitches, mean over windows).
Throughput is in training windows per second. "windows/s" is the median over passes, each 1/`--passes` of an
epoch, timed from batch to batch in every epoch, so tracing and XLA compilation (first batches, and the
smaller last batch) spoil few passes; "epoch" divides by whole epochs, the first included, as a user pays it;
"per CPU s" counts the process's CPU seconds instead of wall seconds (medians over the same passes), which
other jobs on the machine disturb less. Ratios are rollgen's over the article's, from the same run. Prints a
table, then all figures as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from rollgen import paths
from rollgen.models import build_seed
from rollgen.params import load_params
from rollgen.train import LOSSES, Steps, distribute_options, learning_rate, load_frames, make_dataset, window_starts

TARGET_RATIO = 4.0  # the goal: rollgen's windows per second over the article's


def article_arrays(
    frames: np.ndarray, starts: np.ndarray, context: int, gap: int, dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """The article's training arrays, x (n, context, pitches) and y (n, pitches) as floats in 0..1: every
    window copied out of the uint8 frames (steps, pitches) into lists, one by one, as its split_sequences did."""
    windows, targets = [], []
    for start in starts:
        windows.append(frames[start : start + context])
        targets.append(frames[start + context + gap])
    x = np.array(windows, dtype=dtype)
    x /= 255
    y = np.array(targets, dtype=dtype)
    y /= 255
    return x, y


def traced_peak_bytes(function: Callable, *args) -> int:
    """The most memory `function(*args)` held at once, in bytes (Python and NumPy allocations, tracemalloc)."""
    tracemalloc.start()
    try:
        function(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class XlaSteps(Steps):
    """rollgen's Steps with each replica's training step compiled by XLA (`jit_compile=True`)."""

    def __init__(self, model: keras.Model, loss: str, strategy: tf.distribute.Strategy) -> None:
        super().__init__(model, loss, strategy)
        self.train = tf.function(self.distributed(tf.function(self.train_replica, jit_compile=True)))


Clock = list[tuple[float, float]]  # (wall seconds, process CPU seconds) at the start of every batch, then the end


def now() -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds (all threads), both from arbitrary origins."""
    return time.perf_counter(), time.process_time()


class FitClock(keras.callbacks.Callback):
    """Clocks one epoch of Model.fit. Only begin hooks: with no batch-end hook Keras dispatches as without it."""

    def on_epoch_begin(self, epoch, logs=None):
        self.started = now()
        self.stamps: Clock = []

    def on_train_batch_begin(self, batch, logs=None):
        self.stamps.append(now())

    def on_epoch_end(self, epoch, logs=None):
        self.stamps.append(now())


@dataclass
class Epoch:
    """One epoch of one row: wall and CPU seconds from its start, its batches' clock, its mean training loss."""

    seconds: float
    cpu_seconds: float
    stamps: Clock
    loss: float


def article_epoch(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int, epoch: int) -> Epoch:
    """Epoch `epoch` of the article's `model.fit` (a `fit` call of its own, so rows can take turns)."""
    clock = FitClock()
    history = model.fit(x, y, batch_size=batch_size, epochs=epoch + 1, initial_epoch=epoch, shuffle=True,
                        verbose=0, callbacks=[clock])  # fmt: skip
    (wall, cpu), (end_wall, end_cpu) = clock.started, clock.stamps[-1]
    return Epoch(end_wall - wall, end_cpu - cpu, clock.stamps, float(history.history["loss"][-1]))


def rollgen_epoch(steps: Steps, frames: np.ndarray, starts: np.ndarray, context: int, gap: int, batch_size: int,
                  seed: int, epoch: int) -> Epoch:  # fmt: skip
    """Epoch `epoch` as rollgen.train.run trains it: make_dataset, then Steps.run_epoch with the training step."""
    stamps: Clock = []

    def clocked_step(batch):
        stamps.append(now())
        return steps.train(batch)

    wall, cpu = now()
    data = make_dataset(frames, starts, context, gap, batch_size, seed=seed, first_epoch=epoch)
    logs = steps.run_epoch(distribute_options(data), clocked_step, -(-len(starts) // batch_size))
    stamps.append(now())
    return Epoch(stamps[-1][0] - wall, stamps[-1][1] - cpu, stamps, logs["loss"])


def pass_rates(stamps: Clock, windows: int, batch_size: int, passes: int) -> tuple[list[float], list[float]]:
    """Windows per wall second and per CPU second over `passes` consecutive stretches of an epoch's batches."""
    batches = len(stamps) - 1
    sizes = np.minimum(batch_size, windows - batch_size * np.arange(batches))
    bounds = np.linspace(0, batches, min(passes, batches) + 1).round().astype(int)
    wall = [float(sizes[a:b].sum()) / (stamps[b][0] - stamps[a][0]) for a, b in zip(bounds[:-1], bounds[1:])]
    cpu = [float(sizes[a:b].sum()) / (stamps[b][1] - stamps[a][1]) for a, b in zip(bounds[:-1], bounds[1:])]
    return wall, cpu


@dataclass
class Row:
    """One way of training: how it runs an epoch, how its model is scored, and what was measured."""

    name: str
    label: str
    batch_size: int
    train_epoch: Callable[[int], Epoch]
    evaluate: Callable[[], dict[str, float]]
    epochs: list[Epoch] = field(default_factory=list)
    wall_rates: list[float] = field(default_factory=list)
    cpu_rates: list[float] = field(default_factory=list)
    val: list[dict[str, float]] = field(default_factory=list)

    def figures(self, windows: int) -> dict:
        """Its numbers for the JSON line (medians over passes or epochs; lists per epoch)."""
        seconds = [epoch.seconds for epoch in self.epochs]
        return {
            "batch_size": self.batch_size,
            "windows_per_s": round(statistics.median(self.wall_rates), 1),
            "windows_per_cpu_s": round(statistics.median(self.cpu_rates), 1),
            "epoch_windows_per_s": round(windows / statistics.median(seconds), 1),
            "steady_windows_per_s": round(windows / statistics.median(seconds[1:]), 1) if len(seconds) > 1 else None,
            "pass_windows_per_s_min_max": [round(min(self.wall_rates), 1), round(max(self.wall_rates), 1)],
            "epoch_s": [round(value, 2) for value in seconds],
            "epoch_cpu_s": [round(epoch.cpu_seconds, 2) for epoch in self.epochs],
            "train_loss": [round(epoch.loss, 5) for epoch in self.epochs],
            "val_loss": [round(scores["loss"], 5) for scores in self.val],
            "val_nll": [round(scores["nll"], 4) for scores in self.val],
            "val_f1": [round(scores["f1"], 4) for scores in self.val],
        }


def main() -> None:
    train_params = load_params("train")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=Path, default=paths.WINDOWS_DIR, help="folder of the window archives")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N windows only (default: all)")
    parser.add_argument("--loss", choices=sorted(LOSSES), default="bce", help="mse: the article's loss")
    parser.add_argument("--batch-size", type=int, default=train_params["batch_size"], help="rollgen's (params.yaml)")
    parser.add_argument("--large-batch", type=int, default=256, help="rollgen's extra rows (0: none)")
    parser.add_argument("--article-batch-size", type=int, default=32)
    parser.add_argument("--article-dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--learning-rate", type=float, default=train_params["learning_rate"], help="rollgen's")
    parser.add_argument("--xla", action=argparse.BooleanOptionalAction, default=True, help="rollgen with XLA too")
    parser.add_argument("--passes", type=int, default=10, help="timed passes per epoch")
    parser.add_argument("--repeats", type=int, default=3, help="times the article's arrays are built")
    parser.add_argument("--seed", type=int, default=train_params["seed"])
    args = parser.parse_args()

    keras.utils.set_random_seed(args.seed)
    strategy = tf.distribute.get_strategy()
    frames, offsets, context, gap = load_frames("train", args.windows)
    val_frames, val_offsets, _, _ = load_frames("val", args.windows)
    starts = window_starts(offsets, context, gap)[: args.limit]
    val_starts = window_starts(val_offsets, context, gap)
    windows = len(starts)
    val_data = make_dataset(val_frames, val_starts, context, gap, 1024)

    build_times, build_cpu_times = [], []
    for _ in range(args.repeats):
        wall, cpu = now()
        article_arrays(frames, starts, context, gap, args.article_dtype)
        build_times.append(time.perf_counter() - wall)
        build_cpu_times.append(time.process_time() - cpu)
    build_peak = traced_peak_bytes(article_arrays, frames, starts, context, gap, args.article_dtype)
    x, y = article_arrays(frames, starts, context, gap, args.article_dtype)

    initial = build_seed(context).get_weights()

    def seed_model() -> keras.Model:
        model = build_seed(context)
        model.set_weights(initial)
        return model

    def scorer(steps: Steps) -> Callable[[], dict[str, float]]:
        return lambda: steps.run_epoch(val_data, steps.evaluate)

    article = seed_model()
    article.compile(optimizer="adam", loss=LOSSES[args.loss])
    rows = [
        Row("article", f"article: fit, {args.article_dtype} arrays", args.article_batch_size,
            functools.partial(article_epoch, article, x, y, args.article_batch_size),
            scorer(Steps(article, args.loss, strategy))),  # only its evaluation step: the same code for every row
    ]  # fmt: skip
    for batch_size in [args.batch_size] + ([args.large_batch] if args.large_batch else []):
        for xla in (False, True) if args.xla else (False,):
            model = seed_model()
            settings = {**train_params, "learning_rate": args.learning_rate, "epochs": args.epochs}
            model.compile(optimizer=keras.optimizers.Adam(learning_rate(settings, -(-windows // batch_size))))
            model.optimizer.build(model.trainable_variables)  # its variables exist before a compiled step runs
            steps = (XlaSteps if xla else Steps)(model, args.loss, strategy)
            rows.append(
                Row(f"rollgen_b{batch_size}" + ("_xla" if xla else ""),
                    "rollgen: Steps + tf.data" + (", XLA" if xla else ""), batch_size,
                    functools.partial(rollgen_epoch, steps, frames, starts, context, gap, batch_size, args.seed),
                    scorer(steps))
            )  # fmt: skip

    for epoch in range(args.epochs):
        for row in rows if epoch % 2 == 0 else rows[::-1]:  # A B C, then C B A: a drifting load hits all alike
            result = row.train_epoch(epoch)
            row.epochs.append(result)
            wall, cpu = pass_rates(result.stamps, windows, row.batch_size, args.passes)
            row.wall_rates += wall
            row.cpu_rates += cpu
            row.val.append(row.evaluate())
            print(
                f"epoch {epoch + 1}/{args.epochs} {row.name:17} {result.seconds:7.1f} s ({result.cpu_seconds:6.1f} CPU"
                f" s), {statistics.median(wall):6.0f} windows/s; loss {result.loss:.4f}, val loss"
                f" {row.val[-1]['loss']:.4f}, val NLL {row.val[-1]['nll']:.3f}",
                flush=True,
            )

    results = {row.name: row.figures(windows) for row in rows}
    base = results["article"]
    ratios = {"ratio": "windows_per_s", "ratio_cpu": "windows_per_cpu_s", "ratio_epoch": "epoch_windows_per_s",
              "ratio_steady": "steady_windows_per_s"}  # fmt: skip
    for result in results.values():
        for ratio, key in ratios.items():
            result[ratio] = round(result[key] / base[key], 2) if result[key] and base[key] else None
    main_row = f"rollgen_b{args.batch_size}"
    build_s, build_cpu_s = statistics.median(build_times), statistics.median(build_cpu_times)
    main_epochs = next(row for row in rows if row.name == main_row).epochs
    article_total = build_s + sum(epoch.seconds for epoch in rows[0].epochs)
    article_total_cpu = build_cpu_s + sum(epoch.cpu_seconds for epoch in rows[0].epochs)
    met = [name for name, result in results.items() if name != "article" and result["ratio"] >= TARGET_RATIO]
    met_cpu = [name for name, result in results.items() if name != "article" and result["ratio_cpu"] >= TARGET_RATIO]
    arrays_bytes = int(x.nbytes + y.nbytes)
    figures = {
        "windows": windows,
        "val_windows": len(val_starts),
        "epochs": args.epochs,
        "loss_function": args.loss,
        "article_windows_per_s": base["windows_per_s"],
        "rollgen_windows_per_s": results[main_row]["windows_per_s"],
        "ratio_rollgen_to_article": results[main_row]["ratio"],
        "ratio_best": max(result["ratio"] for name, result in results.items() if name != "article"),
        "target_ratio": TARGET_RATIO,
        "target_met_by": met,
        "target_met_by_cpu": met_cpu,
        "ratio_end_to_end": round(article_total / sum(epoch.seconds for epoch in main_epochs), 2),
        "ratio_end_to_end_cpu": round(article_total_cpu / sum(epoch.cpu_seconds for epoch in main_epochs), 2),
        "article_build_s": round(build_s, 3),
        "article_build_cpu_s": round(build_cpu_s, 3),
        "article_arrays_bytes": arrays_bytes,
        "article_build_peak_bytes": int(build_peak),
        "frames_bytes": int(frames.nbytes),
        "starts_bytes": int(starts.nbytes),
        "arrays_to_frames": round(arrays_bytes / (frames.nbytes + starts.nbytes), 1),
        "process_max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rows": results,
        "article_learning_rate": float(article.optimizer.learning_rate.numpy()),
        "rollgen_learning_rate": args.learning_rate,
        "article_dtype": args.article_dtype,
        "article_jit_compile": bool(article.jit_compile),
        "passes_per_epoch": args.passes,
        "seed": args.seed,
        "cores": os.cpu_count(),
        "gpu": bool(tf.config.list_logical_devices("GPU")),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }

    print(f"\n{windows} training windows, {args.epochs} epochs, loss {args.loss}; {figures['cores']} cores")
    print(f"{'':34} {'batch':>5} {'windows/s':>9} {'per CPU s':>9} {'epoch':>7} {'ratio':>6} {'val loss':>8} val NLL")
    for row in rows:
        result = results[row.name]
        print(
            f"  {row.label:32} {row.batch_size:5d} {result['windows_per_s']:9.0f} {result['windows_per_cpu_s']:9.0f}"
            f" {result['epoch_windows_per_s']:7.0f} {result['ratio']:5.2f}x {result['val_loss'][-1]:8.4f}"
            f" {result['val_nll'][-1]:7.3f}"
        )
    print(
        f"  article's arrays: built in {build_s:.2f} s, {arrays_bytes:,} bytes (peak while building {build_peak:,})"
        f" vs frames {figures['frames_bytes']:,} + starts {figures['starts_bytes']:,}: x{figures['arrays_to_frames']}"
    )
    print(
        f"  target x{TARGET_RATIO:g}: in windows/s " + (f"met by {', '.join(met)}" if met else "not met by any row")
        + "; per CPU s " + (f"met by {', '.join(met_cpu)}" if met_cpu else "not met by any row")
    )  # fmt: skip
    print(
        f"  end to end, the article's build and all its epochs over rollgen's at batch {args.batch_size}:"
        f" x{figures['ratio_end_to_end']} in wall time, x{figures['ratio_end_to_end_cpu']} in CPU time"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
