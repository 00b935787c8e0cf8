"""Training a next-frame model: batches cut on the fly from the frame archives, every frame of the validation
pieces scored after each epoch, early stopping on that NLL, a checkpoint every epoch (a killed run resumes),
one MLflow run.

    metrics = train.run(load_params("train"), load_params("images"))

run() reads top to bottom: where to compute (rollgen.training.distribute), the archives, a model resumed from
the checkpoint or built new (rollgen.training.checkpoint), the epochs (rollgen.training.trainer), the best
epoch's model and its numbers, and what the MLflow run keeps. Training imports no generation code: the
generate stage logs a sampled piece to this run, and the register stage registers its generator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from rollgen import files, paths
from rollgen.data.archive import Sequences, load_sequences
from rollgen.errors import RollgenError
from rollgen.models import frame_model
from rollgen.models.builders import save_model
from rollgen.models.frame_model import Batching, FrameModel
from rollgen.params import ImagesParams, TrainParams, flatten
from rollgen.tracking import runs as tracking
from rollgen.training import checkpoint
from rollgen.training.checkpoint import CHECKPOINT_DIR, Progress
from rollgen.training.distribute import batch_slices, distribute_options, is_chief, make_strategy, share_cores
from rollgen.training.pretrained import differences, pretrained_file, pretrained_sha256
from rollgen.training.trainer import Trainer, averaged, averaging, learning_rate, validation_scores


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What trains the model, and only that: the train and validation archives (the test archive may change
    without a retrain), with their content hashes."""

    train: Sequences
    val: Sequences
    archives: dict[str, Path]
    digests: dict[str, str]

    @property
    def windows_sha256(self) -> str:
        """One hash of both archives: the data a model and a checkpoint were trained on."""
        return files.sha256_bytes("".join(self.digests.values()).encode())


def load_training_data(windows_dir: Path) -> TrainingData:
    """The train and val archives in `windows_dir`; an error where there is nothing to train on."""
    train_data, val_data = load_sequences("train", windows_dir), load_sequences("val", windows_dir)
    if len(train_data.frames) == 0:
        raise RollgenError(f"no training frames in {windows_dir}; ingest more or longer pieces")
    archives = {split: Path(windows_dir) / f"{split}.npz" for split in ("train", "val")}
    digests = {split: files.sha256_file(path) for split, path in archives.items()}
    return TrainingData(train_data, val_data, archives, digests)


def run(
    params: TrainParams,
    images: ImagesParams,
    windows_dir: Path = paths.WINDOWS_DIR,
    model_path: Path = paths.MODEL,
    metrics_path: Path = paths.TRAIN_METRICS,
    history_path: Path = paths.TRAIN_HISTORY,
    checkpoint_dir: Path = CHECKPOINT_DIR,
    logged_params: dict | None = None,
) -> dict:
    """Trains `params.model` on the grid `images` describes, resuming from a checkpoint of the same params, data
    and code if one exists; gives the numbers it writes to `metrics_path`. `logged_params`: the params the
    MLflow run records, by section (default: the train section alone).

    Under `train.distribute: multi_worker` every worker runs this; only the chief writes files and logs to
    MLflow (the others resume from the chief's checkpoint, so put it on a shared disk).
    """
    slices = batch_slices(params.slices, params.batch_size)
    share_cores(slices)  # before TensorFlow's first op
    strategy = make_strategy(params.distribute)
    chief = is_chief(strategy)
    keras.utils.set_random_seed(params.seed)
    tf.config.experimental.enable_op_determinism()
    data = load_training_data(windows_dir)
    batching = Batching.from_params(params)
    with strategy.scope():
        model, progress, best_weights = resume_or_build(params, images, data, batching, checkpoint_dir, chief)
        trainer = Trainer(model, params.loss, strategy, slices)
    logged = logged_params or {"train": params.model_dump()}
    with training_run(progress, params, data, trainer, logged, chief):
        best_weights = train_epochs(trainer, data, batching, params, progress, best_weights, checkpoint_dir, chief)
        final = build(params, data)  # the best epoch's weights, no optimizer state
        final.keras.set_weights(best_weights)
        metrics = final_metrics(params, final, progress, data, trainer)
        if chief:
            info = saved_info(params, images, data)
            table = save_outputs(final, info, progress, metrics, model_path, history_path, metrics_path)
            log_training(table, history_path, model_path, metrics)
    if chief:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return metrics


def build(params: TrainParams, data: TrainingData) -> FrameModel:
    """A new, untrained model of `params.model`, of its sizes, for the archives' window (`context`)."""
    return frame_model.build(params, context=data.train.context)


def resume_or_build(
    params: TrainParams, images: ImagesParams, data: TrainingData, batching: Batching, folder: Path, chief: bool
) -> tuple[FrameModel, Progress, list[np.ndarray]]:
    """The model to train on, its progress and the best epoch's weights so far: the checkpoint's in `folder`
    where the same params, data, starting model and code wrote it, else a new model (random weights, or
    `train.init_from`'s) with a fresh optimizer (the chief clears the folder for it). Call it inside the
    strategy's scope."""
    fingerprint = checkpoint.fingerprint(params, data.windows_sha256 + pretrained_sha256(params.init_from))
    progress = checkpoint.resumable(folder, fingerprint)
    if progress is not None:
        model, best_weights = checkpoint.restore(folder)
        print(f"train: resuming from the checkpoint after epoch {progress.epoch} of {params.epochs}", flush=True)
        return model, progress, best_weights
    if chief:
        if (folder / checkpoint.STATE).exists():
            print("train: the checkpoint was written by other params, data or code; starting over", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    model = build(params, data)
    start_from(model, params, images)
    steps_per_epoch = model.batch_count(data.train, batching)
    model.keras.compile(
        optimizer=keras.optimizers.Adam(learning_rate(params, steps_per_epoch), **averaging(params, steps_per_epoch))
    )
    return model, Progress(fingerprint), model.keras.get_weights()


def start_from(model: FrameModel, params: TrainParams, images: ImagesParams) -> None:
    """Sets the new `model`'s weights to those of the model `train.init_from` names (rollgen.training.pretrained);
    an error naming what differs where it is another model, of other sizes or on another grid."""
    path = pretrained_file(params.init_from)
    if path is None:
        return
    source = frame_model.load(path)
    theirs, ours = source.keras.get_weights(), model.keras.get_weights()
    differs = differences(source.info, [w.shape for w in theirs], [w.shape for w in ours], params, images)
    if differs:
        raise RollgenError(f"train.init_from '{params.init_from}' cannot start this training: " + "; ".join(differs))
    model.keras.set_weights(theirs)
    print(f"train: starting from {path}, trained on {source.info.get('trained_on', '?')[:12]}", flush=True)


def run_name(params: TrainParams, experiment: str | None) -> str:
    """What tells this run apart in the MLflow UI: the DVC experiment's name when `dvc exp run` names one, then
    the model and every train param set away from its default (`transformernade epochs=10 learning_rate=0.002`)."""
    defaults = TrainParams(model=params.model).model_dump()
    changed = [f"{key}={value}" for key, value in params.model_dump().items()
               if key != "model" and value != defaults[key] and not isinstance(value, dict)]  # fmt: skip
    blocks = params.model_dump().get(params.model)
    if isinstance(blocks, dict):  # the model's sizes (train.<model>)
        changed += [f"{key}={value}" for key, value in blocks.items() if value != defaults[params.model][key]]
    return " ".join(part for part in (experiment, params.model, *changed) if part)


@contextlib.contextmanager
def training_run(
    progress: Progress, params: TrainParams, data: TrainingData, trainer: Trainer, logged: dict, chief: bool
) -> Iterator[None]:
    """The chief's MLflow run, resumed where the checkpoint names one; a new run records the params, the tags and
    the archives it trains on. Other workers log nothing."""
    if not chief:
        yield
        return
    import mlflow

    tracking.start_experiment()
    name = run_name(params, os.environ.get("DVC_EXP_NAME"))
    with mlflow.start_run(run_id=progress.run_id, run_name=None if progress.run_id else name,
                          log_system_metrics=True) as active:  # fmt: skip
        if progress.run_id is None:
            progress.run_id = active.info.run_id
            mlflow.log_params(flatten(logged))
            tags = {"windows_sha256": data.windows_sha256, "git_commit": tracking.git_commit(), "stage": "train",
                    "model_family": trainer.model.family, "slices": str(trainer.slices)}  # fmt: skip
            if params.init_from:
                tags["init_from"] = f"{params.init_from} sha256:{pretrained_sha256(params.init_from)}"
            if os.environ.get("DVC_EXP_NAME"):  # set by `dvc exp run`: find the experiment's run by its name
                tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
            mlflow.set_tags(tags)
            frames = {"train": len(data.train.frames), "val": len(data.val.frames)}
            tracking.log_datasets(data.archives, data.digests, frames)
        yield


def train_epochs(
    trainer: Trainer,
    data: TrainingData,
    batching: Batching,
    params: TrainParams,
    progress: Progress,
    best_weights: list[np.ndarray],
    folder: Path,
    chief: bool,
) -> list[np.ndarray]:
    """Trains the epochs left, each followed by its record (printed, in the MLflow run, in the checkpoint in
    `folder`), until `params.epochs` or early stopping on the validation NLL (the training NLL without
    validation pieces) of the epochs `validation_due` names; gives the best epoch's weights."""
    import mlflow

    model, epochs = trainer.model, params.epochs
    steps_per_epoch = model.batch_count(data.train, batching)
    monitor = "val_nll" if len(data.val.frames) else "nll"
    for epoch in range(progress.epoch, epochs):
        if progress.stopped_early:
            break
        started = time.perf_counter()
        train_batches = distribute_options(model.training_batches(data.train, batching, epoch))
        logs = trainer.run_epoch(train_batches, steps_per_epoch, f"epoch {epoch + 1}/{epochs}")
        if not np.isfinite(logs["loss"]):
            raise RollgenError(
                f"train: the loss became {logs['loss']} in epoch {epoch + 1}; nothing was saved from this run"
                " (try a lower train.learning_rate)"
            )
        with averaged(model.keras):  # the weights validated and kept: their moving average where one is kept
            if monitor == "val_nll" and validation_due(epoch + 1, params):
                logs.update(
                    {f"val_{name}": value for name, value in validation_scores(model, data.val, params.loss).items()}
                )
            weights = model.keras.get_weights()
        seconds = time.perf_counter() - started
        shown = ", ".join(f"{name} {value:.4f}" for name, value in logs.items())
        print(f"Epoch {epoch + 1}/{epochs}: {shown} ({seconds:.0f} s)", flush=True)
        improved = progress.record(logs, seconds, monitor, params.patience)
        if improved:
            best_weights = weights
        if chief:
            mlflow.log_metrics(logs, step=epoch + 1)
            checkpoint.save(model.keras, folder, progress, improved)
    return best_weights


def validation_due(epoch: int, params: TrainParams) -> bool:
    """Whether epoch `epoch` (from 1) is scored on the validation pieces: every `validation_freq`th and the
    last. Scoring every validation frame costs ~10% of a chorale epoch; the best epoch is chosen among these."""
    return epoch % params.validation_freq == 0 or epoch == params.epochs


def final_metrics(
    params: TrainParams, final: FrameModel, progress: Progress, data: TrainingData, trainer: Trainer
) -> dict:
    """metrics/train.json: the model, the best epoch's numbers (its weights are the ones kept), the time and
    speed of training, how it was distributed, and the hashes of the weights and of the archives."""
    best_epoch = progress.history[progress.best_epoch - 1] if progress.best_epoch else progress.history[-1]
    frames_trained = int(np.diff(data.train.offsets).sum()) * len(progress.history)
    return {
        "model": params.model,
        "family": final.family,
        "loss_function": params.loss,
        "params": int(final.keras.count_params()),
        "epochs": int(len(progress.history)),
        "best_epoch": int(progress.best_epoch),
        "loss": float(best_epoch["loss"]),
        "val_loss": best_epoch.get("val_loss"),
        "val_nll": best_epoch.get("val_nll"),
        "val_onset_nll": best_epoch.get("val_onset_nll"),  # None: a model that predicts no onsets
        "val_f1": best_epoch.get("val_f1"),
        "train_seconds": round(progress.seconds, 1),
        "train_frames": int(len(data.train.frames)),
        "frames_per_second": round(frames_trained / progress.seconds, 1) if progress.seconds else None,
        "distribute": params.distribute,
        "replicas": int(trainer.strategy.num_replicas_in_sync),
        "slices": int(trainer.slices),
        "weights_sha256": checkpoint.weights_sha256(final.keras),
        "windows_sha256": data.windows_sha256,
        "mlflow_run_id": progress.run_id,
    }


def saved_info(params: TrainParams, images: ImagesParams, data: TrainingData) -> dict:
    """What the saved model carries about what it was trained on: the grid, its stretch length and window,
    and the archives' hash (rollgen.models.builders.model_info reads it back)."""
    return {"steps_per_quarter": images.steps_per_quarter, "grid": images.grid,
            "sequence_steps": params.sequence_steps, "context": data.train.context,
            "trained_on": data.windows_sha256}  # fmt: skip


def save_outputs(
    final: FrameModel,
    info: dict,
    progress: Progress,
    metrics: dict,
    model_path: Path,
    history_path: Path,
    metrics_path: Path,
) -> pd.DataFrame:
    """Writes the stage's outputs: the model with `info`, the history per epoch and the metrics; gives the
    history."""
    save_model(final.keras, model_path, info)
    table = pd.DataFrame(progress.history)
    files.write_csv(history_path, table)
    files.write_json(metrics_path, metrics)
    return table


def log_training(table: pd.DataFrame, history_path: Path, model_path: Path, metrics: dict) -> None:
    """Adds to the active MLflow run: the .keras file, the model with its input signature (loadable with
    mlflow.pyfunc.load_model, rollgen.tracking.next_frame_model), the history and its curve."""
    import mlflow

    from rollgen.tracking import next_frame_model

    mlflow.log_metrics({"train_seconds": metrics["train_seconds"], "params": metrics["params"]})
    mlflow.log_artifact(str(model_path), artifact_path="model")
    next_frame_model.log(model_path)
    mlflow.log_artifact(str(history_path))
    with tempfile.TemporaryDirectory() as folder:
        curve = Path(folder) / "training_curve.png"
        plot_history(table, curve)
        mlflow.log_artifact(str(curve))


def plot_history(table: pd.DataFrame, target: Path) -> None:
    """Training and validation NLL per epoch, as a PNG for the MLflow run."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 3.5), dpi=100)
    for column, label in (("nll", "train"), ("val_nll", "validation")):
        if column in table:
            scored = table[["epoch", column]].dropna()  # validation: the epochs validated (validation_freq)
            axes.plot(scored["epoch"], scored[column], marker="o", label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel("NLL (nats per frame)")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(target)
    pyplot.close(figure)
