"""Training a next-frame model: windows streamed from the frame archives, early stopping on validation NLL,
a checkpoint every epoch (a killed run resumes), one MLflow run."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm import tqdm

from rollgen import files, paths, tracking
from rollgen.models import build_model, is_autoregressive, load_model
from rollgen.params import flatten
from rollgen.roll import NUM_PITCHES

LOSSES = {"mse": "mean_squared_error", "bce": "binary_crossentropy"}
CHECKPOINT_DIR = paths.MODELS / "checkpoint"


def window_starts(frame_offsets: np.ndarray, context: int, gap: int) -> np.ndarray:
    """First frame of every window: each sequence [start, end) gives windows whose target fits inside it."""
    starts = [
        np.arange(start, end - context - gap, dtype=np.int64)
        for start, end in zip(frame_offsets[:-1], frame_offsets[1:])
        if end - start > context + gap
    ]
    return np.concatenate(starts) if starts else np.zeros(0, np.int64)


def transpose_batch(x: tf.Tensor, y: tf.Tensor, shifts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Moves each example up by its shift in semitones (down if negative); notes pushed off the 106 rows vanish."""
    source = tf.range(NUM_PITCHES, dtype=tf.int32)[None, :] - shifts[:, None]  # (batch, pitches)
    valid = tf.cast((source >= 0) & (source < NUM_PITCHES), x.dtype)
    source = tf.clip_by_value(source, 0, NUM_PITCHES - 1)
    x = tf.gather(x, source, axis=2, batch_dims=1) * valid[:, None, :]
    y = tf.gather(y, source, axis=1, batch_dims=1) * valid
    return x, y


def make_dataset(
    frames: np.ndarray,
    starts: np.ndarray,
    context: int,
    gap: int,
    batch_size: int,
    seed: int | None = None,
    first_epoch: int = 0,
    epochs: int = 1,
    transpose: int = 0,
) -> tf.data.Dataset:
    """Batches of (windows, next frames) as floats in 0..1, cut from `frames` on the fly.

    Only the frames and one start index per window are held, not 9 overlapping copies. With a seed, every
    epoch has its own order (and transpositions) from (seed, epoch) alone, so a resumed run sees exactly
    the batches an uninterrupted one would.
    """
    frames_tensor = tf.constant(frames)
    offsets = tf.range(context, dtype=tf.int64)
    starts_tensor = tf.constant(starts)
    base_seed = tf.constant(seed or 0, tf.int64)

    def epoch_batches(epoch):
        order = starts_tensor
        if seed is not None:
            order = tf.random.experimental.stateless_shuffle(starts_tensor, seed=tf.stack([base_seed, epoch]))
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).enumerate()
        return batches.map(lambda index, batch: (epoch, index, batch))

    def cut(epoch, index, batch_starts):
        x = tf.cast(tf.gather(frames_tensor, batch_starts[:, None] + offsets[None, :]), tf.float32) / 255.0
        y = tf.cast(tf.gather(frames_tensor, batch_starts + context + gap), tf.float32) / 255.0
        if transpose:
            batch_seed = tf.random.experimental.stateless_fold_in(tf.stack([base_seed, epoch]), index)
            shifts = tf.random.stateless_uniform(
                tf.shape(batch_starts), seed=batch_seed, minval=-transpose, maxval=transpose + 1, dtype=tf.int32
            )
            x, y = transpose_batch(x, y, shifts)
        return x, y

    epochs_dataset = tf.data.Dataset.range(first_epoch, first_epoch + epochs)
    batches = epochs_dataset.flat_map(epoch_batches)
    return batches.map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def load_frames(split: str, windows_dir: Path) -> tuple[np.ndarray, np.ndarray, int, int]:
    """A split's frames, sequence offsets, window length and target gap, without loading its windows."""
    with np.load(windows_dir / f"{split}.npz", allow_pickle=False) as archive:
        frames, offsets = archive["frames"], archive["frame_offsets"]
        context, gap = int(archive["context"]), int(archive["target_gap"])
    return frames, offsets, context, gap


def learning_rate(params: dict, steps_per_epoch: int):
    """Adam's learning rate: constant, or cosine decay to 0 over all training steps."""
    if params.get("lr_schedule", "constant") == "cosine":
        return keras.optimizers.schedules.CosineDecay(params["learning_rate"], steps_per_epoch * params["epochs"])
    return params["learning_rate"]


STRATEGIES = ("none", "mirrored", "multi_worker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """none: this process's default device; mirrored: every local GPU; multi_worker: the workers TF_CONFIG names.

    Create it first thing: MultiWorkerMirroredStrategy must exist before TensorFlow runs any other op.
    """
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise SystemExit("train.distribute multi_worker needs TF_CONFIG (the cluster and this worker's task)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise SystemExit(f"train.distribute must be one of {STRATEGIES}, not '{name}'")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes files and logs to MLflow: always, except for workers other than the first."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker" and resolver.task_id == 0)


class Steps:
    """One compiled training step and one evaluation step for any tf.distribute strategy.

    Each replica computes its part of the batch; losses are averaged with tf.nn.compute_average_loss and
    the counts behind the epoch's numbers (loss, NLL, F1) are summed across replicas, so every worker
    applies the same gradients and reports the same numbers. Keras' Model.fit is not used: it fails under
    MultiWorkerMirroredStrategy (keras-team/keras#20585), and one loop serves every strategy.
    """

    def __init__(self, model: keras.Model, loss: str, strategy: tf.distribute.Strategy) -> None:
        self.model, self.strategy = model, strategy
        self.loss = keras.losses.get(LOSSES[loss])
        self.two_inputs = is_autoregressive(model)
        self.train = tf.function(self.distributed(self.train_replica))
        self.evaluate = tf.function(self.distributed(self.evaluate_replica))

    def distributed(self, replica_step):
        def step(batch):
            sums = self.strategy.run(replica_step, args=batch)
            return {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                    for name, value in sums.items()}  # fmt: skip

        return step

    def counts(self, y, probabilities, per_example_loss) -> dict[str, tf.Tensor]:
        """Sums over the batch: loss, Bernoulli NLL in nats per frame, and the counts behind F1 at 0.5."""
        p = tf.clip_by_value(probabilities, 1e-7, 1 - 1e-7)
        truth = y > 0.5
        nll = -tf.reduce_sum(tf.where(truth, tf.math.log(p), tf.math.log(1 - p)), axis=-1)
        guess = probabilities > 0.5
        count = lambda mask: tf.reduce_sum(tf.cast(mask, tf.float32))  # noqa: E731
        return {
            "loss": tf.reduce_sum(per_example_loss),
            "nll": tf.reduce_sum(nll),
            "frames": tf.cast(tf.shape(y)[0], tf.float32),
            "tp": count(guess & truth),
            "fp": count(guess & ~truth),
            "fn": count(~guess & truth),
        }

    def forward(self, x, y, training: bool):
        probabilities = self.model([x, y] if self.two_inputs else x, training=training)
        return probabilities, self.loss(y, probabilities)

    def train_replica(self, x, y):
        with tf.GradientTape() as tape:
            probabilities, per_example_loss = self.forward(x, y, training=True)
            loss = tf.nn.compute_average_loss(per_example_loss)
        variables = self.model.trainable_variables
        self.model.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self.counts(y, probabilities, per_example_loss)

    def evaluate_replica(self, x, y):
        probabilities, per_example_loss = self.forward(x, y, training=False)
        return self.counts(y, probabilities, per_example_loss)

    def run_epoch(self, dataset, step, steps: int | None = None, description: str = "") -> dict[str, float]:
        """Runs `step` over a dataset; gives the epoch's mean loss and NLL per frame, and micro F1."""
        totals: dict[str, float] = {}
        distributed = self.strategy.experimental_distribute_dataset(dataset)
        bar = tqdm(distributed, total=steps, desc=description, unit="batch", leave=False, disable=not steps,
                   mininterval=0.5 if sys.stderr.isatty() else 30)  # a log file gets a line every 30 s  # fmt: skip
        for batch in bar:
            for name, value in step(batch).items():
                totals[name] = totals.get(name, 0.0) + float(value)
        frames = max(totals.get("frames", 0.0), 1.0)
        tp, fp, fn = totals.get("tp", 0.0), totals.get("fp", 0.0), totals.get("fn", 0.0)
        return {
            "loss": totals.get("loss", 0.0) / frames,
            "nll": totals.get("nll", 0.0) / frames,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        }


def distribute_options(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Shards every global batch across workers by data (the frames live in memory, not in files)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def weights_sha256(model: keras.Model) -> str:
    """A digest of every weight: equal digests mean bit-identical models (runs, resumes, workers)."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return digest.hexdigest()


def save_checkpoint(model: keras.Model, folder: Path, state: dict, improved: bool) -> None:
    """last.keras (with the optimizer, to resume), best.keras when the epoch improved, and state.json, each
    written atomically and state last, so a kill at any point leaves a consistent checkpoint."""
    if improved:
        with files.atomic_path(folder / "best.keras") as tmp:
            model.save(tmp)
    with files.atomic_path(folder / "last.keras") as tmp:
        model.save(tmp)
    files.write_json(folder / "state.json", state)


def plot_history(table: pd.DataFrame, target: Path) -> None:
    """Training and validation NLL per epoch, as a PNG for the MLflow run."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 3.5), dpi=100)
    for column, label in (("nll", "train"), ("val_nll", "validation")):
        if column in table:
            axes.plot(table["epoch"], table[column], marker="o", label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel("NLL (nats per frame)")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(target)
    pyplot.close(figure)


def run(
    params: dict,
    windows_dir: Path = paths.WINDOWS_DIR,
    model_path: Path = paths.MODEL,
    metrics_path: Path = paths.TRAIN_METRICS,
    history_path: Path = paths.TRAIN_HISTORY,
    checkpoint_dir: Path = CHECKPOINT_DIR,
    all_params: dict | None = None,
) -> dict:
    """Trains `params['model']`, resuming from a checkpoint of the same params and data if one exists.

    Under `train.distribute: multi_worker` every worker runs this; only the chief writes files and logs to
    MLflow (the others resume from the chief's checkpoint, so put it on a shared disk).
    """
    import mlflow

    strategy = make_strategy(params.get("distribute", "none"))
    chief = is_chief(strategy)
    if params["loss"] not in LOSSES:
        raise ValueError(f"train.loss must be one of {sorted(LOSSES)}, not '{params['loss']}'")
    keras.utils.set_random_seed(params["seed"])
    tf.config.experimental.enable_op_determinism()
    frames, offsets, context, gap = load_frames("train", windows_dir)
    val_frames, val_offsets, _, _ = load_frames("val", windows_dir)
    starts, val_starts = window_starts(offsets, context, gap), window_starts(val_offsets, context, gap)
    if len(starts) == 0:
        raise SystemExit(f"train: no training windows in {windows_dir}; ingest more or longer pieces")
    windows_sha256 = files.sha256_tree(windows_dir)
    fingerprint = files.sha256_bytes(json.dumps([params, windows_sha256], sort_keys=True).encode())
    batch_size, epochs = params["batch_size"], params["epochs"]
    steps_per_epoch = -(-len(starts) // batch_size)

    state_path = checkpoint_dir / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else None
    with strategy.scope():
        if state and state.get("fingerprint") == fingerprint and (checkpoint_dir / "last.keras").exists():
            model = keras.models.load_model(checkpoint_dir / "last.keras", safe_mode=True)
            best = checkpoint_dir / "best.keras"
            best_weights = load_model(best).get_weights() if best.exists() else model.get_weights()
            print(f"train: resuming from the checkpoint after epoch {state['epoch']} of {epochs}", flush=True)
        else:
            if chief:
                shutil.rmtree(checkpoint_dir, ignore_errors=True)
                checkpoint_dir.mkdir(parents=True)
            state = {"fingerprint": fingerprint, "epoch": 0, "best": float("inf"), "best_epoch": 0, "wait": 0,
                     "history": [], "run_id": None, "seconds": 0.0, "stopped_early": False}  # fmt: skip
            model = build_model(params["model"], context=context)
            model.compile(optimizer=keras.optimizers.Adam(learning_rate(params, steps_per_epoch)))
            best_weights = model.get_weights()
        steps = Steps(model, params["loss"], strategy)

    val_data = make_dataset(val_frames, val_starts, context, gap, 1024) if len(val_starts) else None
    monitor = "val_nll" if val_data is not None else "nll"
    run_name = f"{params['model']}-{params['loss']}-{epochs}ep"
    mlflow_run = contextlib.nullcontext()  # workers other than the chief log nothing
    if chief:
        tracking.start_experiment()
        mlflow_run = mlflow.start_run(run_id=state["run_id"], run_name=None if state["run_id"] else run_name)
    with mlflow_run as active:
        if chief and state["run_id"] is None:
            state["run_id"] = active.info.run_id
            mlflow.log_params(flatten(all_params or {"train": params}))
            tags = {"windows_sha256": windows_sha256, "git_commit": tracking.git_commit(), "stage": "train"}
            if os.environ.get("DVC_EXP_NAME"):  # set by `dvc exp run`: find the experiment's run by its name
                tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
            mlflow.set_tags(tags)
        for epoch in range(state["epoch"], epochs):
            if state["stopped_early"]:
                break
            started = time.perf_counter()
            train_data = make_dataset(frames, starts, context, gap, batch_size, seed=params["seed"],
                                      first_epoch=epoch, transpose=params.get("transpose", 0))  # fmt: skip
            logs = steps.run_epoch(distribute_options(train_data), steps.train, steps_per_epoch,
                                   f"epoch {epoch + 1}/{epochs}")  # fmt: skip
            if val_data is not None:
                scores = steps.run_epoch(distribute_options(val_data), steps.evaluate)
                logs.update({f"val_{name}": value for name, value in scores.items()})
            seconds = time.perf_counter() - started
            state["seconds"] += seconds
            shown = ", ".join(f"{name} {value:.4f}" for name, value in logs.items())
            print(f"Epoch {epoch + 1}/{epochs}: {shown} ({seconds:.0f} s)", flush=True)
            state["history"].append({"epoch": epoch + 1, **logs})
            state["epoch"] = epoch + 1
            improved = logs[monitor] < state["best"]
            if improved:
                state["best"], state["best_epoch"], state["wait"] = logs[monitor], epoch + 1, 0
                best_weights = model.get_weights()
            else:
                state["wait"] += 1
                state["stopped_early"] = bool(params.get("patience")) and state["wait"] >= params["patience"]
            if chief:
                mlflow.log_metrics(logs, step=epoch + 1)
                save_checkpoint(model, checkpoint_dir, state, improved)

        final = build_model(params["model"], context=context)  # the best epoch's weights, no optimizer state
        final.set_weights(best_weights)
        metrics = {
            "model": params["model"],
            "loss_function": params["loss"],
            "params": int(final.count_params()),
            "epochs": int(len(state["history"])),
            "best_epoch": int(state["best_epoch"]),
            "loss": float(state["history"][-1]["loss"]),
            "val_loss": state["history"][-1].get("val_loss"),
            "val_nll": float(state["best"]) if np.isfinite(state["best"]) else None,
            "train_seconds": round(state["seconds"], 1),
            "train_windows": int(len(starts)),
            "distribute": params.get("distribute", "none"),
            "replicas": int(strategy.num_replicas_in_sync),
            "weights_sha256": weights_sha256(final),
            "windows_sha256": windows_sha256,
            "mlflow_run_id": state["run_id"],
        }
        if chief:
            with files.atomic_path(model_path) as tmp:
                final.save(tmp)
            table = pd.DataFrame(state["history"])
            files.write_csv(history_path, table)
            files.write_json(metrics_path, metrics)
            steps_per_quarter = (all_params or {}).get("images", {}).get("steps_per_quarter", 4)
            log_training(final, table, history_path, model_path, metrics, val_frames, context, params["seed"],
                         steps_per_quarter)  # fmt: skip
    if chief:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return metrics


def log_training(
    model: keras.Model,
    table: pd.DataFrame,
    history_path: Path,
    model_path: Path,
    metrics: dict,
    val_frames: np.ndarray,
    context: int,
    seed: int,
    steps_per_quarter: int = 4,
) -> None:
    """Adds to the active MLflow run: the .keras file, the model with its input signature (loadable with
    mlflow.pyfunc.load_model), the history and its curve, and the roll of a piece sampled from the model."""
    import mlflow

    from rollgen import logged_model

    mlflow.log_metrics({"train_seconds": metrics["train_seconds"], "params": metrics["params"]})
    mlflow.log_artifact(str(model_path), artifact_path="model")
    logged_model.log(model_path, context)
    mlflow.log_artifact(str(history_path))
    with tempfile.TemporaryDirectory() as folder:
        curve = Path(folder) / "training_curve.png"
        plot_history(table, curve)
        mlflow.log_artifact(str(curve))
        if len(val_frames) >= context:
            sample = Path(folder) / "sampled_roll.png"
            sample_roll_picture(model, val_frames[:context], sample, seed, steps_per_quarter)
            mlflow.log_artifact(str(sample))


def sample_roll_picture(
    model: keras.Model, primer_frames: np.ndarray, target: Path, seed: int, steps_per_quarter: int = 4, steps: int = 128
) -> None:
    """A piece of `steps` frames drawn from the model (Bernoulli, temperature 1) after a validation window."""
    from rollgen.generate import sample_frames
    from rollgen.pictures import save_roll_picture
    from rollgen.sampling import make_sampler

    primer = primer_frames[None].astype(np.float32) / 255.0
    frames = sample_frames(model, primer, steps, make_sampler("bernoulli"), np.random.default_rng(seed), progress=False)
    save_roll_picture(frames[0].T.astype(bool), target, steps_per_quarter=steps_per_quarter)
