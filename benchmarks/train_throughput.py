"""Training speed: the article's `Model.fit` against rollgen's training of the default model, in one run.

    python benchmarks/train_throughput.py [--epochs 3] [--article-batch-size 32]

On the same training pieces (`data/processed/windows/train.npz`, what `dvc repro` writes):
- article: the `seed` network, every window copied out as floats in 0..1, x (n, 9, 106) and y (n, 106), as
  its split_sequences did (9 overlapping copies of every frame), `model.compile(optimizer="adam",
  loss="binary_crossentropy")` and `model.fit(x, y, batch_size=32, shuffle=True)`: one predicted frame per
  window;
- rollgen: params.yaml's `train.model` trained as `rollgen.train.run` trains it (`Steps` over the model's
  own `training_batches`: stretches of `train.sequence_steps` frames for a sequence model, every frame
  predicted once per epoch), with params.yaml's batch size, learning rate and transposition.
The rows train one epoch each in turn, so a busy spell of the machine hits both. Throughput is predicted
frames per wall second, median over epochs after the first (tracing), and over all epochs as a user pays
them. After each epoch, untimed, both models are scored on every frame of the validation pieces by the same
code (`FrameModel.predict`): the NLL in nats per frame. The ratio is rollgen's over the article's; the
issue's goal is at least 4 at a lower validation NLL. Prints a table, then all figures as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from rollgen import batches, frame_model, paths
from rollgen.evaluate import frame_scores
from rollgen.frame_model import Batching
from rollgen.models import build_seed
from rollgen.params import load_params
from rollgen.train import LOSSES, Steps, distribute_options, learning_rate
from rollgen.windows import load_sequences

TARGET_RATIO = 4.0


def article_arrays(frames: np.ndarray, starts: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """The article's training arrays: every window copied out of the uint8 frames, one by one, as floats."""
    windows, targets = [], []
    for start in starts:
        windows.append(frames[start : start + context])
        targets.append(frames[start + context])
    x = np.array(windows, dtype="float32")
    x /= 255
    y = np.array(targets, dtype="float32")
    y /= 255
    return x, y


def val_nll(model: frame_model.FrameModel, val) -> float:
    prediction = model.predict(val)
    return frame_scores(prediction.probabilities, val.frames > 127, prediction.predicted)["nll"]


def main() -> None:
    train_params = load_params("train").model_dump()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=Path, default=paths.WINDOWS_DIR)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--article-batch-size", type=int, default=32)
    args = parser.parse_args()

    keras.utils.set_random_seed(train_params["seed"])
    train, val = load_sequences("train", args.windows), load_sequences("val", args.windows)
    starts = batches.window_starts(train.offsets, train.context, 0)
    x, y = article_arrays(train.frames, starts, train.context)
    article = build_seed(train.context)
    article.compile(optimizer="adam", loss=LOSSES["bce"])
    article_model = frame_model.wrap(article)

    batching = Batching(train_params["batch_size"], train_params["seed"], train_params["transpose"],
                        train_params["sequence_steps"])  # fmt: skip
    ours = frame_model.build(train_params["model"], train.context, train_params["sequence_steps"])
    steps_per_epoch = ours.batch_count(train, batching)
    ours.keras.compile(optimizer=keras.optimizers.Adam(learning_rate(train_params, steps_per_epoch)))
    steps = Steps(ours, train_params["loss"], tf.distribute.get_strategy())
    frames = int(len(train.frames))

    rows = {"article": {"seconds": [], "val_nll": []}, "rollgen": {"seconds": [], "val_nll": []}}
    for epoch in range(args.epochs):
        started = time.perf_counter()
        article.fit(x, y, batch_size=args.article_batch_size, epochs=epoch + 1, initial_epoch=epoch, shuffle=True,
                    verbose=0)  # fmt: skip
        rows["article"]["seconds"].append(time.perf_counter() - started)
        rows["article"]["val_nll"].append(round(val_nll(article_model, val), 4))
        started = time.perf_counter()
        steps.run_epoch(distribute_options(ours.training_batches(train, batching, epoch)), steps_per_epoch)
        rows["rollgen"]["seconds"].append(time.perf_counter() - started)
        rows["rollgen"]["val_nll"].append(round(val_nll(ours, val), 4))
        print(f"epoch {epoch + 1}: article {rows['article']['seconds'][-1]:.1f} s, val NLL "
              f"{rows['article']['val_nll'][-1]}; rollgen {rows['rollgen']['seconds'][-1]:.1f} s, val NLL "
              f"{rows['rollgen']['val_nll'][-1]}", flush=True)  # fmt: skip

    figures: dict = {}
    for name, predicted in (("article", len(x)), ("rollgen", frames)):
        seconds = rows[name]["seconds"]
        figures[name] = {
            "frames_per_s": round(predicted / statistics.median(seconds[1:] or seconds), 1),
            "frames_per_s_all_epochs": round(predicted * len(seconds) / sum(seconds), 1),
            "predicted_frames_per_epoch": int(predicted),
            "epoch_s": [round(value, 2) for value in seconds],
            "val_nll": rows[name]["val_nll"],
        }
    ratio = figures["rollgen"]["frames_per_s"] / figures["article"]["frames_per_s"]
    figures.update(
        ratio=round(ratio, 2),
        ratio_all_epochs=round(
            figures["rollgen"]["frames_per_s_all_epochs"] / figures["article"]["frames_per_s_all_epochs"], 2
        ),
        lower_val_nll=figures["rollgen"]["val_nll"][-1] < figures["article"]["val_nll"][-1],
        target_ratio=TARGET_RATIO,
        model=ours.name,
        batch_size=batching.batch_size,
        sequence_steps=batching.sequence_steps,
        article_batch_size=args.article_batch_size,
        article_array_mb=round((x.nbytes + y.nbytes) / 2**20, 1),
        frames_mb=round(train.frames.nbytes / 2**20, 1),
        epochs=args.epochs,
        cores=os.cpu_count(),
        gpu=bool(tf.config.list_logical_devices("GPU")),
        tensorflow=tf.__version__,
        python=platform.python_version(),
    )
    print(f"predicted frames per second (median over epochs 2..{args.epochs}; {figures['cores']} cores)")
    print(f"  article: seed, fit at batch {args.article_batch_size}: {figures['article']['frames_per_s']:10.1f}"
          f"   val NLL {figures['article']['val_nll'][-1]}")  # fmt: skip
    print(f"  rollgen: {ours.name}:                 {figures['rollgen']['frames_per_s']:10.1f}"
          f"   val NLL {figures['rollgen']['val_nll'][-1]}")  # fmt: skip
    print(f"  ratio x{figures['ratio']} (target x{TARGET_RATIO:g}), lower validation NLL: {figures['lower_val_nll']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
