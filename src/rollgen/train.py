"""Training a next-frame model on the windows, logged to MLflow."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from rollgen import files, paths, tracking
from rollgen.models import build_model
from rollgen.params import flatten
from rollgen.windows import load_split

LOSSES = {"mse": "mean_squared_error", "bce": "binary_crossentropy"}


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Batches of float windows in 0..1 from the uint8 archives (scaled per batch, not copied up front)."""
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    scale = 1.0 / 255.0
    dataset = dataset.batch(batch_size).map(
        lambda inputs, target: (tf.cast(inputs, tf.float32) * scale, tf.cast(target, tf.float32) * scale),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


class MlflowEpochLogger(keras.callbacks.Callback):
    """Sends every epoch's loss and val_loss to the active MLflow run."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import mlflow

        mlflow.log_metrics({name: float(value) for name, value in (logs or {}).items()}, step=epoch + 1)


def run(
    params: dict,
    windows_dir: Path = paths.WINDOWS_DIR,
    model_path: Path = paths.MODEL,
    metrics_path: Path = paths.TRAIN_METRICS,
    history_path: Path = paths.TRAIN_HISTORY,
    all_params: dict | None = None,
) -> dict:
    """Trains `params['model']` and writes the model, metrics and per-epoch history; one MLflow run."""
    import mlflow

    keras.utils.set_random_seed(params["seed"])
    tf.config.experimental.enable_op_determinism()
    if params["loss"] not in LOSSES:
        raise ValueError(f"train.loss must be one of {sorted(LOSSES)}, not '{params['loss']}'")
    train, val = load_split("train", windows_dir), load_split("val", windows_dir)
    if len(train["y"]) == 0:
        raise SystemExit(f"train: no training windows in {windows_dir}; ingest more or longer pieces")
    context = train["x"].shape[1]
    model = build_model(params["model"], context=context)
    model.compile(optimizer=keras.optimizers.Adam(params["learning_rate"]), loss=LOSSES[params["loss"]])
    train_data = make_dataset(train["x"], train["y"], params["batch_size"], shuffle_seed=params["seed"])
    val_data = make_dataset(val["x"], val["y"], 1024) if len(val["y"]) else None
    windows_sha256 = files.sha256_tree(windows_dir)

    tracking.start_experiment()
    run_name = f"{params['model']}-{params['loss']}-{params['epochs']}ep"
    with mlflow.start_run(run_name=run_name) as active:
        mlflow.log_params(flatten(all_params or {"train": params}))
        mlflow.set_tags({"windows_sha256": windows_sha256, "git_commit": tracking.git_commit(), "stage": "train"})
        started = time.perf_counter()
        history = model.fit(
            train_data,
            validation_data=val_data,
            epochs=params["epochs"],
            verbose=2,
            shuffle=False,  # the dataset is already shuffled, with the seed
            callbacks=[MlflowEpochLogger()],
        )
        seconds = time.perf_counter() - started
        with files.atomic_path(model_path) as tmp:
            model.save(tmp)
        table = pd.DataFrame(history.history)
        table.insert(0, "epoch", np.arange(1, len(table) + 1))
        files.write_csv(history_path, table)
        last = table.iloc[-1]
        metrics = {
            "model": params["model"],
            "loss_function": params["loss"],
            "params": int(model.count_params()),
            "epochs": int(len(table)),
            "loss": float(last["loss"]),
            "val_loss": float(last["val_loss"]) if "val_loss" in table else None,
            "train_seconds": round(seconds, 1),
            "train_windows": int(len(train["y"])),
            "windows_sha256": windows_sha256,
            "mlflow_run_id": active.info.run_id,
        }
        files.write_json(metrics_path, metrics)
        mlflow.log_metrics({"train_seconds": seconds, "params": metrics["params"]})
        mlflow.log_artifact(str(model_path), artifact_path="model")
        mlflow.log_artifact(str(history_path))
    return metrics
