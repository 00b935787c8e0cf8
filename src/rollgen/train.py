"""Training a next-frame model: windows streamed from the frame archives, early stopping on validation NLL,
a checkpoint every epoch (a killed run resumes), one MLflow run."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from rollgen import files, paths, tracking
from rollgen.models import build_model, load_model
from rollgen.params import flatten
from rollgen.roll import NUM_PITCHES

LOSSES = {"mse": "mean_squared_error", "bce": "binary_crossentropy"}
CHECKPOINT_DIR = paths.MODELS / "checkpoint"


@keras.utils.register_keras_serializable(package="rollgen")
class FrameNLL(keras.metrics.Mean):
    """Bernoulli negative log-likelihood in nats per frame (summed over pitches): comparable across losses."""

    def __init__(self, name: str = "nll", **kwargs) -> None:
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = keras.ops.cast(y_true > 0.5, "float32")
        p = keras.ops.clip(y_pred, 1e-7, 1 - 1e-7)
        nll = -keras.ops.sum(y_true * keras.ops.log(p) + (1 - y_true) * keras.ops.log(1 - p), axis=-1)
        return super().update_state(nll, sample_weight=sample_weight)


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

    def epoch_order(epoch):
        if seed is None:
            return tf.data.Dataset.from_tensor_slices(starts_tensor)
        order = tf.random.experimental.stateless_shuffle(
            starts_tensor, seed=tf.stack([tf.constant(seed, tf.int64), epoch])
        )
        return tf.data.Dataset.from_tensor_slices(order)

    def cut(batch_index, batch_starts):
        x = tf.cast(tf.gather(frames_tensor, batch_starts[:, None] + offsets[None, :]), tf.float32) / 255.0
        y = tf.cast(tf.gather(frames_tensor, batch_starts + context + gap), tf.float32) / 255.0
        if transpose:
            shifts = tf.random.stateless_uniform(
                tf.shape(batch_starts), seed=tf.stack([tf.constant(seed or 0, tf.int64), batch_index]),
                minval=-transpose, maxval=transpose + 1, dtype=tf.int32,
            )  # fmt: skip
            x, y = transpose_batch(x, y, shifts)
        return x, y

    epochs_dataset = tf.data.Dataset.range(first_epoch, first_epoch + epochs)
    batches = epochs_dataset.flat_map(lambda epoch: epoch_order(epoch).batch(batch_size))
    return (
        batches.enumerate().map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)
    )


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


class Checkpointer(keras.callbacks.Callback):
    """After every epoch: saves the model (with its optimizer) and the run's state, atomically, so a killed
    run resumes at the next epoch; keeps the best model by validation NLL and stops after `patience` epochs
    without improvement; logs the epoch's numbers to MLflow."""

    def __init__(self, folder: Path, state: dict, patience: int, monitor: str) -> None:
        super().__init__()
        self.folder, self.state, self.patience, self.monitor = folder, state, patience, monitor

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import mlflow

        logs = {name: float(value) for name, value in (logs or {}).items()}
        mlflow.log_metrics(logs, step=epoch + 1)
        self.state["history"].append({"epoch": epoch + 1, **logs})
        self.state["epoch"] = epoch + 1
        value = logs.get(self.monitor, logs.get("nll"))
        if value is not None and value < self.state["best"]:
            self.state["best"], self.state["best_epoch"], self.state["wait"] = value, epoch + 1, 0
            with files.atomic_path(self.folder / "best.keras") as tmp:
                self.model.save(tmp)
        else:
            self.state["wait"] += 1
            if self.patience and self.state["wait"] >= self.patience:
                self.model.stop_training = True
                self.state["stopped_early"] = True
        with files.atomic_path(self.folder / "last.keras") as tmp:
            self.model.save(tmp)
        files.write_json(self.folder / "state.json", self.state)


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
    """Trains `params['model']`, resuming from a checkpoint of the same params and data if one exists."""
    import mlflow

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
    monitor = "val_nll" if len(val_starts) else "nll"

    state_path = checkpoint_dir / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else None
    if state and state.get("fingerprint") == fingerprint and (checkpoint_dir / "last.keras").exists():
        model = keras.models.load_model(checkpoint_dir / "last.keras", safe_mode=True)
        print(f"train: resuming from the checkpoint after epoch {state['epoch']} of {epochs}")
    else:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        checkpoint_dir.mkdir(parents=True)
        state = {"fingerprint": fingerprint, "epoch": 0, "best": float("inf"), "best_epoch": 0, "wait": 0,
                 "history": [], "run_id": None, "seconds": 0.0, "stopped_early": False}  # fmt: skip
        model = build_model(params["model"], context=context)
        optimizer = keras.optimizers.Adam(learning_rate(params, steps_per_epoch))
        model.compile(
            optimizer=optimizer,
            loss=LOSSES[params["loss"]],
            metrics=[FrameNLL(), keras.metrics.F1Score(average="micro", threshold=0.5, name="f1")],
        )

    tracking.start_experiment()
    run_name = f"{params['model']}-{params['loss']}-{epochs}ep"
    with mlflow.start_run(run_id=state["run_id"], run_name=None if state["run_id"] else run_name) as active:
        if state["run_id"] is None:
            state["run_id"] = active.info.run_id
            mlflow.log_params(flatten(all_params or {"train": params}))
            mlflow.set_tags({"windows_sha256": windows_sha256, "git_commit": tracking.git_commit(), "stage": "train"})
        remaining = epochs - state["epoch"]
        started = time.perf_counter()
        if remaining > 0 and not state["stopped_early"]:
            train_data = make_dataset(frames, starts, context, gap, batch_size, seed=params["seed"],
                                      first_epoch=state["epoch"], epochs=remaining,
                                      transpose=params.get("transpose", 0))  # fmt: skip
            val_data = make_dataset(val_frames, val_starts, context, gap, 1024) if len(val_starts) else None
            model.fit(
                train_data.repeat(),  # Keras peeks one batch past the last epoch; the repeat is never trained on
                validation_data=val_data,
                epochs=epochs,
                initial_epoch=state["epoch"],
                steps_per_epoch=steps_per_epoch,
                verbose=2,
                shuffle=False,  # the dataset is shuffled per epoch from the seed
                callbacks=[Checkpointer(checkpoint_dir, state, params.get("patience", 0), monitor)],
            )
        state["seconds"] += time.perf_counter() - started
        best = checkpoint_dir / ("best.keras" if (checkpoint_dir / "best.keras").exists() else "last.keras")
        final = load_model(best)  # the best epoch by validation NLL, without optimizer state
        with files.atomic_path(model_path) as tmp:
            final.save(tmp)
        table = pd.DataFrame(state["history"])
        files.write_csv(history_path, table)
        last = table.iloc[-1]
        metrics = {
            "model": params["model"],
            "loss_function": params["loss"],
            "params": int(final.count_params()),
            "epochs": int(len(table)),
            "best_epoch": int(state["best_epoch"]),
            "loss": float(last["loss"]),
            "val_loss": float(last["val_loss"]) if "val_loss" in table else None,
            "val_nll": float(state["best"]) if np.isfinite(state["best"]) else None,
            "train_seconds": round(state["seconds"], 1),
            "train_windows": int(len(starts)),
            "windows_sha256": windows_sha256,
            "mlflow_run_id": state["run_id"],
        }
        files.write_json(metrics_path, metrics)
        mlflow.log_metrics({"train_seconds": state["seconds"], "params": metrics["params"]})
        mlflow.log_artifact(str(model_path), artifact_path="model")
        mlflow.log_artifact(str(history_path))
        with tempfile.TemporaryDirectory() as folder:
            curve = Path(folder) / "training_curve.png"
            plot_history(table, curve)
            mlflow.log_artifact(str(curve))
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return metrics
