"""Training speed: the article's `Model.fit` against rollgen's training of the default model, in one run.

    python benchmarks/train_throughput.py [--epochs 5] [--article-batch-size 32]

On the same training pieces (`data/processed/windows/train.npz`, what `dvc repro` writes), three rows:
- article: the article's network, every window copied out as floats in 0..1, x (n, 9, 106) and y (n, 106), as
  its split_sequences did (9 overlapping copies of every frame), `model.compile(optimizer="adam",
  loss="binary_crossentropy")` and `model.fit(x, y, batch_size=32, shuffle=True)`: one predicted frame per
  window, under TensorFlow's default threads, as the article's code runs;
- article, rollgen's threads: the same, in a process given the thread settings rollgen's training uses
  (`rollgen.training.distribute.share_cores`), which speed up the article's small ops too: the ratio of designs alone;
- rollgen: params.yaml's `train.model` trained as `rollgen.training.train.run` trains it (`Trainer` over the model's
  own `training_batches`, cut into `train.slices` slices on their share of the cores; stretches of
  `train.sequence_steps` frames for a sequence model, every frame predicted once per epoch), with
  params.yaml's batch size, learning rate and transposition.
TensorFlow reads its thread settings once per process, so each row trains in a process of its own; the
rows train one epoch each in turn, so a busy spell of the machine hits all of them. Throughput is
predicted frames per wall second, median over epochs after the first (tracing), and over all epochs as a
user pays them. After each epoch, untimed, every model is scored on every frame of the validation pieces
by the same code (`FrameModel.predict`): the NLL in nats per frame. The ratio is rollgen's over the
article's; the issue's goal is at least 4 at a lower validation NLL. Prints a table, then all figures as
one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 4.0
ROWS = ("article", "article_threads", "rollgen")
RESULT = "RESULT "  # a worker's protocol lines start with this; anything else it prints is not read


def article_arrays(frames, starts, context: int):
    """The article's training arrays: every window copied out of the uint8 frames, one by one, as floats."""
    import numpy as np

    windows, targets = [], []
    for start in starts:
        windows.append(frames[start : start + context])
        targets.append(frames[start + context])
    x = np.array(windows, dtype="float32")
    x /= 255
    y = np.array(targets, dtype="float32")
    y /= 255
    return x, y


def worker(row: str, windows: Path, article_batch_size: int) -> None:
    """Trains one row, an epoch per line read from stdin; answers each with a RESULT line."""
    from rollgen.params import load_params
    from rollgen.training.distribute import batch_slices, share_cores

    params = load_params("train")
    slices = batch_slices(params.slices, params.batch_size)
    if row != "article":
        share_cores(slices)  # before TensorFlow's first op

    import keras
    import tensorflow as tf

    from rollgen.data.archive import load_sequences, sounding
    from rollgen.evaluation.scores import frame_scores
    from rollgen.models import batches, frame_model
    from rollgen.models.builders import build_article
    from rollgen.models.frame_model import Batching
    from rollgen.training.distribute import distribute_options
    from rollgen.training.trainer import LOSSES, Trainer, learning_rate

    keras.utils.set_random_seed(params.seed)
    train, val = load_sequences("train", windows), load_sequences("val", windows)
    info: dict = {"threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                              "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}}  # fmt: skip
    if row == "rollgen":
        batching = Batching.from_params(params)
        model = frame_model.build(params, train.context)
        steps_per_epoch = model.batch_count(train, batching)
        model.keras.compile(optimizer=keras.optimizers.Adam(learning_rate(params, steps_per_epoch)))
        trainer = Trainer(model, params.loss, tf.distribute.get_strategy(), slices)

        def train_epoch(epoch: int) -> None:
            trainer.run_epoch(distribute_options(model.training_batches(train, batching, epoch)), steps_per_epoch)

        info.update(model=model.name, predicted=int(len(train.frames)), slices=trainer.slices,
                    batch_size=batching.batch_size, sequence_steps=batching.sequence_steps)  # fmt: skip
    else:
        starts = batches.window_starts(train.offsets, train.context, 0)
        x, y = article_arrays(train.frames, starts, train.context)
        article = build_article(train.context)
        article.compile(optimizer="adam", loss=LOSSES["bce"])
        model = frame_model.wrap(article)

        def train_epoch(epoch: int) -> None:
            article.fit(x, y, batch_size=article_batch_size, epochs=epoch + 1, initial_epoch=epoch, shuffle=True,
                        verbose=0)  # fmt: skip

        info.update(model="article", predicted=int(len(x)), article_array_mb=round((x.nbytes + y.nbytes) / 2**20, 1))
    print(RESULT + json.dumps(info), flush=True)
    for line in sys.stdin:
        epoch = int(line)
        started = time.perf_counter()
        train_epoch(epoch)
        seconds = time.perf_counter() - started
        prediction = model.predict(val)
        nll = frame_scores(prediction.probabilities, sounding(val.frames), prediction.predicted)["nll"]
        print(RESULT + json.dumps({"seconds": seconds, "val_nll": round(nll, 4)}), flush=True)


class Row:
    """A worker process and what it reported."""

    def __init__(self, name: str, args: argparse.Namespace, log) -> None:
        command = [sys.executable, __file__, "--worker", name, "--windows", str(args.windows),
                   "--article-batch-size", str(args.article_batch_size)]  # fmt: skip
        self.name, self.log = name, log
        # an argument list of this interpreter and this file: nothing from outside becomes a command
        self.process = subprocess.Popen(  # noqa: S603 - see above
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
        )
        self.info = self.answer()
        self.seconds: list[float] = []
        self.val_nll: list[float] = []

    def answer(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(RESULT):
                return json.loads(line[len(RESULT) :])
        self.log.seek(0)
        raise SystemExit(f"the {self.name} worker stopped:\n{self.log.read()[-4000:]}")

    def epoch(self, epoch: int) -> None:
        self.process.stdin.write(f"{epoch}\n")
        self.process.stdin.flush()
        done = self.answer()
        self.seconds.append(done["seconds"])
        self.val_nll.append(done["val_nll"])

    def figures(self) -> dict:
        predicted, seconds = self.info["predicted"], self.seconds
        return {
            **self.info,
            "frames_per_s": round(predicted / statistics.median(seconds[1:] or seconds), 1),
            "frames_per_s_all_epochs": round(predicted * len(seconds) / sum(seconds), 1),
            "epoch_s": [round(value, 2) for value in seconds],
            "val_nll": self.val_nll,
        }


def main() -> None:
    from rollgen import paths
    from rollgen.training.distribute import usable_cores

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=Path, default=paths.WINDOWS_DIR)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--article-batch-size", type=int, default=32)
    parser.add_argument("--worker", choices=ROWS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.windows, args.article_batch_size)
        return

    with tempfile.TemporaryFile("w+") as log:
        rows = {name: Row(name, args, log) for name in ROWS}
        try:
            for epoch in range(args.epochs):
                for row in rows.values():
                    row.epoch(epoch)
                print(f"epoch {epoch + 1}: " + "; ".join(f"{name} {row.seconds[-1]:.1f} s, val NLL {row.val_nll[-1]}"
                                                         for name, row in rows.items()), flush=True)  # fmt: skip
        finally:
            for row in rows.values():
                row.process.stdin.close()
                row.process.wait(timeout=60)

    figures = {name: row.figures() for name, row in rows.items()}
    ours = figures["rollgen"]
    for name in ("article", "article_threads"):
        figures[f"ratio_{name}"] = round(ours["frames_per_s"] / figures[name]["frames_per_s"], 2)
        figures[f"ratio_{name}_all_epochs"] = round(
            ours["frames_per_s_all_epochs"] / figures[name]["frames_per_s_all_epochs"], 2
        )
    figures.update(
        ratio=figures["ratio_article"],
        lower_val_nll=ours["val_nll"][-1] < figures["article"]["val_nll"][-1],
        target_ratio=TARGET_RATIO,
        article_batch_size=args.article_batch_size,
        epochs=args.epochs,
        cores=usable_cores(),
        python=platform.python_version(),
    )
    print(f"predicted frames per second (median over epochs 2..{args.epochs}; {figures['cores']} cores)")
    labels = {"article": f"article: its network, fit at batch {args.article_batch_size}",
              "article_threads": "  the same, rollgen's threads", "rollgen": f"rollgen: {ours['model']}"}  # fmt: skip
    for name, label in labels.items():
        row = figures[name]
        print(f"  {label:36s} {row['frames_per_s']:10.1f}   val NLL {row['val_nll'][-1]}   threads {row['threads']}")
    print(f"  ratio x{figures['ratio_article']} (target x{TARGET_RATIO:g}); x{figures['ratio_article_threads']} against"
          f" the article given rollgen's threads; lower validation NLL: {figures['lower_val_nll']}")  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
