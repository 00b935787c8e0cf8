"""Training a next-frame model: batches cut on the fly from the frame archives, every frame of the validation
pieces scored after each epoch, early stopping on that NLL, a checkpoint every epoch (a killed run resumes),
one MLflow run."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm import tqdm

from rollgen import files, paths
from rollgen.data.archive import Sequences, load_sequences, sounding
from rollgen.errors import RollgenError
from rollgen.evaluation.scores import bernoulli_nll, clipped, frame_scores
from rollgen.models import frame_model
from rollgen.models.builders import load_model, save_model
from rollgen.models.frame_model import Batching, FrameModel
from rollgen.params import flatten, validate
from rollgen.tracking import runs as tracking

LOSSES = {"mse": "mean_squared_error", "bce": "binary_crossentropy"}
CHECKPOINT_DIR = paths.MODELS / "checkpoint"
RANDOM_STATES = "random_states.npz"  # in the checkpoint folder, beside last.keras


def code_identity() -> str:
    """A digest of rollgen's source files: a checkpoint is resumed only by the code that wrote it."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def frame_losses(probabilities: np.ndarray, targets: np.ndarray, loss: str) -> float:
    """The training loss per frame, averaged over frames, computed from scored probabilities."""
    p = clipped(probabilities)
    y = np.asarray(targets, np.float64)
    if loss == "mse":
        return float(((p - y) ** 2).mean()) if len(y) else float("nan")
    return float(bernoulli_nll(p, targets).mean()) if len(y) else float("nan")


def validation_scores(model: FrameModel, data: Sequences, loss: str) -> dict[str, float]:
    """loss, nll and f1 over every frame of the validation pieces, as evaluate scores the test pieces (the
    NADE models' f1 from greedily decoded frames, which do not see the true notes)."""
    prediction = model.predict(data)
    truth = sounding(data.frames)
    scores = frame_scores(prediction.probabilities, truth, prediction.predicted)
    return {"loss": frame_losses(prediction.probabilities, truth, loss), "nll": scores["nll"], "f1": scores["f1"]}


def learning_rate(params: dict, steps_per_epoch: int):
    """Adam's learning rate: constant, or cosine decay to 0 over all training steps."""
    if params["lr_schedule"] == "cosine":
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
            raise RollgenError("train.distribute multi_worker needs TF_CONFIG (the cluster and this worker's task)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise RollgenError(f"train.distribute must be one of {STRATEGIES}, not '{name}'")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes files and logs to MLflow: always, except for workers other than the first."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker" and resolver.task_id == 0)


class Steps:
    """One compiled training step for any tf.distribute strategy.

    Each replica computes its part of the batch; losses are averaged with tf.nn.compute_average_loss and
    the counts behind the epoch's numbers (loss, NLL, F1) are summed across replicas, so every worker
    applies the same gradients and reports the same numbers. Keras' Model.fit is not used: it fails under
    MultiWorkerMirroredStrategy (keras-team/keras#20585), and one loop serves every strategy and model.

    `slices` > 1 cuts a replica's rows into that many slices, each scored and differentiated as a chain of
    its own, so the executor runs them side by side, one per core (see `share_cores`); their frames are
    joined before the loss, so the gradients are the whole batch's. A model whose rows depend on each other
    (batch statistics: the article's BatchNormalization) is never cut, nor a batch of fewer rows.
    """

    def __init__(self, model: FrameModel, loss: str, strategy: tf.distribute.Strategy, slices: int = 1) -> None:
        self.model, self.strategy = model, strategy
        self.loss = keras.losses.get(LOSSES[loss])
        self.slices = slices if rows_independent(model.keras) else 1
        self.compiled: Callable | None = None

    def train(self, batch, spec) -> dict[str, tf.Tensor]:
        """One step, traced once, for the dataset's `spec` (its element_spec, the same every epoch): a sequence
        model's batches differ in length (each lasts as long as its longest row) and an epoch's last batch
        is smaller; one trace of unknown sizes runs them all, so a resumed run computes with the graph an
        uninterrupted one does (a trace per shape gives other rounding, and other weights)."""
        if self.compiled is None:
            self.compiled = tf.function(self.distributed(self.train_replica), input_signature=[spec])
        return self.compiled(batch)

    def distributed(self, replica_step):
        def step(batch):
            sums = self.strategy.run(replica_step, args=(batch,))
            return {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                    for name, value in sums.items()}  # fmt: skip

        return step

    def counts(self, y, probabilities, per_example_loss, weights) -> dict[str, tf.Tensor]:
        """Sums over the batch's real frames: loss, and Bernoulli NLL in nats per frame (no F1: a NADE's
        teacher-forced probabilities saw the true notes below each pitch; F1 is for validation's decoded
        frames)."""
        p = tf.clip_by_value(probabilities, 1e-7, 1 - 1e-7)
        nll = -tf.reduce_sum(tf.where(y > 0.5, tf.math.log(p), tf.math.log(1 - p)), axis=-1)
        return {
            "loss": tf.reduce_sum(per_example_loss),
            "nll": tf.reduce_sum(nll * weights),
            "frames": tf.reduce_sum(weights),
        }

    def gradients(self, pieces: list) -> tuple[list, dict[str, tf.Tensor]]:
        """The gradients of the loss over all frames of `pieces` (slices of one batch), and its counts."""
        with tf.GradientTape() as tape:
            scored = [self.model.teacher_forced(piece, training=True) for piece in pieces]
            probabilities = tf.concat([p for p, _, _ in scored], 0)
            y = tf.concat([targets for _, targets, _ in scored], 0)
            weights = tf.concat(
                [tf.ones(tf.shape(targets)[:1], tf.float32) if w is None else w for _, targets, w in scored], 0
            )
            per_example_loss = self.loss(y, probabilities) * weights
            loss = tf.nn.compute_average_loss(per_example_loss)
        variables = self.model.keras.trainable_variables
        return tape.gradient(loss, variables), self.counts(y, probabilities, per_example_loss, weights)

    def train_replica(self, batch):
        if self.slices == 1:
            gradients, counts = self.gradients([batch])
        else:
            rows = tf.shape(tf.nest.flatten(batch)[0])[0]
            cuts = [rows * number // self.slices for number in range(self.slices + 1)]
            sliced = [tf.nest.map_structure(lambda t, a=a, b=b: t[a:b], batch) for a, b in zip(cuts, cuts[1:])]
            gradients, counts = tf.cond(
                rows >= self.slices, lambda: self.gradients(sliced), lambda: self.gradients([batch])
            )
        variables = self.model.keras.trainable_variables
        self.model.keras.optimizer.apply_gradients(zip(gradients, variables))
        return counts

    def run_epoch(self, dataset, steps: int | None = None, description: str = "") -> dict[str, float]:
        """Trains on a dataset; gives the epoch's mean loss and NLL per frame (teacher-forced)."""
        totals: dict[str, float] = {}
        distributed = self.strategy.experimental_distribute_dataset(dataset)
        bar = tqdm(distributed, total=steps, desc=description, unit="batch", leave=False, disable=not steps,
                   mininterval=0.5 if sys.stderr.isatty() else 30)  # a log file gets a line every 30 s  # fmt: skip
        for batch in bar:
            for name, value in self.train(batch, distributed.element_spec).items():
                totals[name] = totals.get(name, 0.0) + float(value)
        frames = max(totals.get("frames", 0.0), 1.0)
        return {"loss": totals.get("loss", 0.0) / frames, "nll": totals.get("nll", 0.0) / frames}


def rows_independent(model: keras.Model) -> bool:
    """Whether each row of a batch is scored from that row alone: no layer pools statistics over the batch."""
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            return False
        stack += getattr(layer, "layers", [])
    return True


def usable_cores() -> int:
    """The CPU cores this process may run on (all of them where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def batch_slices(setting: int | str, rows: int) -> int:
    """train.slices as a number: auto is one slice per CPU core this process may use (at most `rows`, a
    batch's rows; a batch with fewer rows than slices is not cut), and 1 where a GPU computes (one device
    runs one chain at a time)."""
    if setting != "auto":
        return int(setting)
    if tf.config.list_physical_devices("GPU"):
        return 1
    return max(1, min(usable_cores(), rows))


def share_cores(slices: int) -> None:
    """Runs `slices` ops side by side (inter-op threads), each on its share of the cores (intra-op threads).

    Small ops split over all cores spend much of their time waiting for each other: on 2 cores one chain kept
    ~1.6 busy, and two half-batch chains of one thread each took a step in ~40 ms instead of ~53. TensorFlow
    reads these settings once, before its first op; a process that has already run one keeps its threads.
    """
    if slices <= 1:
        return
    cores = usable_cores()
    intra, inter = max(1, cores // slices), slices
    threading = tf.config.threading
    if (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()) == (intra, inter):
        return
    try:
        threading.set_intra_op_parallelism_threads(intra)
        threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as error:
        print(f"train: TensorFlow has already started, so its threads stay as they are ({error})", flush=True)


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


def random_states(model: keras.Model) -> list:
    """The dropout layers' random states (Keras SeedGenerator variables), which a .keras file leaves out."""
    return [variable for variable in model.variables if variable.path.endswith("seed_generator_state")]


def save_checkpoint(model: keras.Model, folder: Path, state: dict, improved: bool) -> None:
    """The checkpoint as one unit: a folder of last.keras (with the optimizer, to resume), best.keras (the best
    epoch's), the dropout layers' random states (so a resumed run draws the masks an uninterrupted one would)
    and state.json, swapped in whole (files.atomic_dir), so a kill at any point leaves the last complete
    checkpoint."""
    with files.atomic_dir(folder) as new:
        model.save(new / "last.keras")
        if improved:
            model.save(new / "best.keras")
        elif (folder / "best.keras").exists():
            shutil.copy2(folder / "best.keras", new / "best.keras")
        files.write_npz(new / RANDOM_STATES, **{str(n): np.asarray(v) for n, v in enumerate(random_states(model))})
        files.write_json(new / "state.json", state)


def restore_random_states(model: keras.Model, folder: Path) -> None:
    """Sets the dropout layers' random states to those `save_checkpoint` wrote."""
    saved = files.load_npz(folder / RANDOM_STATES)
    variables = random_states(model)
    if len(saved) != len(variables):
        raise RollgenError(f"{folder / RANDOM_STATES}: {len(saved)} random states for a model with {len(variables)}")
    for number, variable in enumerate(variables):
        variable.assign(saved[str(number)])


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
    """Trains `params['model']`, resuming from a checkpoint of the same params, data and code if one exists.

    Under `train.distribute: multi_worker` every worker runs this; only the chief writes files and logs to
    MLflow (the others resume from the chief's checkpoint, so put it on a shared disk).
    """
    import mlflow

    params = validate("train", params).model_dump()  # a typo stops the run here; missing keys take defaults
    images = validate("images", (all_params or {}).get("images", {}))  # the grid the model is trained on
    slices = batch_slices(params["slices"], params["batch_size"])
    share_cores(slices)  # before TensorFlow's first op
    strategy = make_strategy(params["distribute"])
    chief = is_chief(strategy)
    keras.utils.set_random_seed(params["seed"])
    tf.config.experimental.enable_op_determinism()
    train_data, val_data = load_sequences("train", windows_dir), load_sequences("val", windows_dir)
    if len(train_data.frames) == 0:
        raise RollgenError(f"no training frames in {windows_dir}; ingest more or longer pieces")
    batching = Batching(params["batch_size"], params["seed"], params["transpose"], params["sequence_steps"])
    # What trains the model, and only that: the test archive may change without a retrain.
    archives = {split: Path(windows_dir) / f"{split}.npz" for split in ("train", "val")}
    digests = {split: files.sha256_file(path) for split, path in archives.items()}
    windows_sha256 = files.sha256_bytes("".join(digests.values()).encode())
    fingerprint = files.sha256_bytes(json.dumps([params, windows_sha256, code_identity()], sort_keys=True).encode())
    epochs = params["epochs"]

    def build() -> FrameModel:
        return frame_model.build(validate("train", params), context=train_data.context)

    state_path = checkpoint_dir / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else None
    with strategy.scope():
        if state and state.get("fingerprint") == fingerprint and (checkpoint_dir / "last.keras").exists():
            model = frame_model.wrap(keras.models.load_model(checkpoint_dir / "last.keras", safe_mode=True))
            restore_random_states(model.keras, checkpoint_dir)
            best = checkpoint_dir / "best.keras"
            best_weights = load_model(best).get_weights() if best.exists() else model.keras.get_weights()
            print(f"train: resuming from the checkpoint after epoch {state['epoch']} of {epochs}", flush=True)
        else:
            if state is not None and chief:
                print("train: the checkpoint was written by other params, data or code; starting over", flush=True)
            if chief:
                shutil.rmtree(checkpoint_dir, ignore_errors=True)
                checkpoint_dir.mkdir(parents=True)
            state = {"fingerprint": fingerprint, "epoch": 0, "best": float("inf"), "best_epoch": 0, "wait": 0,
                     "history": [], "run_id": None, "seconds": 0.0, "stopped_early": False}  # fmt: skip
            model = build()
            steps_per_epoch = model.batch_count(train_data, batching)
            model.keras.compile(optimizer=keras.optimizers.Adam(learning_rate(params, steps_per_epoch)))
            best_weights = model.keras.get_weights()
        steps = Steps(model, params["loss"], strategy, slices)
    steps_per_epoch = model.batch_count(train_data, batching)

    has_val = len(val_data.frames) > 0
    monitor = "val_nll" if has_val else "nll"
    run_name = f"{params['model']}-{params['loss']}-{epochs}ep"
    mlflow_run = contextlib.nullcontext()  # workers other than the chief log nothing
    if chief:
        tracking.start_experiment()
        mlflow_run = mlflow.start_run(
            run_id=state["run_id"], run_name=None if state["run_id"] else run_name, log_system_metrics=True
        )
    with mlflow_run as active:
        if chief and state["run_id"] is None:
            state["run_id"] = active.info.run_id
            mlflow.log_params(flatten(all_params or {"train": params}))
            tags = {"windows_sha256": windows_sha256, "git_commit": tracking.git_commit(), "stage": "train",
                    "model_family": model.family, "slices": str(steps.slices)}  # fmt: skip
            if os.environ.get("DVC_EXP_NAME"):  # set by `dvc exp run`: find the experiment's run by its name
                tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
            mlflow.set_tags(tags)
            frames = {"train": len(train_data.frames), "val": len(val_data.frames)}
            tracking.log_datasets(archives, digests, frames)
        for epoch in range(state["epoch"], epochs):
            if state["stopped_early"]:
                break
            started = time.perf_counter()
            train_batches = model.training_batches(train_data, batching, epoch)
            logs = steps.run_epoch(distribute_options(train_batches), steps_per_epoch, f"epoch {epoch + 1}/{epochs}")
            if not np.isfinite(logs["loss"]):
                raise RollgenError(
                    f"train: the loss became {logs['loss']} in epoch {epoch + 1}; nothing was saved from this run"
                    " (try a lower train.learning_rate)"
                )
            if has_val:
                logs.update(
                    {f"val_{name}": value for name, value in validation_scores(model, val_data, params["loss"]).items()}
                )
            seconds = time.perf_counter() - started
            state["seconds"] += seconds
            shown = ", ".join(f"{name} {value:.4f}" for name, value in logs.items())
            print(f"Epoch {epoch + 1}/{epochs}: {shown} ({seconds:.0f} s)", flush=True)
            state["history"].append({"epoch": epoch + 1, **logs, "seconds": round(seconds, 1)})
            state["epoch"] = epoch + 1
            improved = logs[monitor] < state["best"]
            if improved:
                state["best"], state["best_epoch"], state["wait"] = logs[monitor], epoch + 1, 0
                best_weights = model.keras.get_weights()
            else:
                state["wait"] += 1
                state["stopped_early"] = params["patience"] > 0 and state["wait"] >= params["patience"]
            if chief:
                mlflow.log_metrics(logs, step=epoch + 1)
                save_checkpoint(model.keras, checkpoint_dir, state, improved)

        final = build()  # the best epoch's weights, no optimizer state
        final.keras.set_weights(best_weights)
        best_epoch = state["history"][state["best_epoch"] - 1] if state["best_epoch"] else state["history"][-1]
        frames_trained = int(np.diff(train_data.offsets).sum()) * len(state["history"])
        metrics = {
            "model": params["model"],
            "family": final.family,
            "loss_function": params["loss"],
            "params": int(final.keras.count_params()),
            "epochs": int(len(state["history"])),
            "best_epoch": int(state["best_epoch"]),
            "loss": float(best_epoch["loss"]),  # all of the best epoch, whose weights are kept
            "val_loss": best_epoch.get("val_loss"),
            "val_nll": best_epoch.get("val_nll"),
            "val_f1": best_epoch.get("val_f1"),
            "train_seconds": round(state["seconds"], 1),
            "train_frames": int(len(train_data.frames)),
            "frames_per_second": round(frames_trained / state["seconds"], 1) if state["seconds"] else None,
            "distribute": params["distribute"],
            "replicas": int(strategy.num_replicas_in_sync),
            "slices": int(steps.slices),
            "weights_sha256": weights_sha256(final.keras),
            "windows_sha256": windows_sha256,
            "mlflow_run_id": state["run_id"],
        }
        if chief:
            info = {"steps_per_quarter": images.steps_per_quarter, "grid": images.grid,
                    "sequence_steps": params["sequence_steps"], "context": train_data.context,
                    "trained_on": windows_sha256}  # fmt: skip
            save_model(final.keras, model_path, info)
            table = pd.DataFrame(state["history"])
            files.write_csv(history_path, table)
            files.write_json(metrics_path, metrics)
            log_training(final, table, history_path, model_path, metrics, val_data, params["seed"],
                         images.steps_per_quarter, digests["val"])  # fmt: skip
    if chief:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return metrics


def log_training(
    model: FrameModel,
    table: pd.DataFrame,
    history_path: Path,
    model_path: Path,
    metrics: dict,
    val_data: Sequences,
    seed: int,
    steps_per_quarter: int = 4,
    val_sha256: str = "",
) -> None:
    """Adds to the active MLflow run: the .keras file, the model with its input signature (loadable with
    mlflow.pyfunc.load_model), the generator (rollgen.tracking.generator_model) registered as a version of the
    project's model (rollgen.tracking.registry), the history and its curve, and the roll of a piece sampled from the
    model."""
    import mlflow

    from rollgen.tracking import generator_model as generation_model
    from rollgen.tracking import next_frame_model as logged_model
    from rollgen.tracking import registry

    mlflow.log_metrics({"train_seconds": metrics["train_seconds"], "params": metrics["params"]})
    mlflow.log_artifact(str(model_path), artifact_path="model")
    logged_model.log(model_path)
    generator = generation_model.log(model_path)
    tags = registry.version_tags(metrics["model"], metrics["family"], metrics["windows_sha256"], val_sha256,
                                 tracking.git_commit(), metrics["val_nll"])  # fmt: skip
    registry.register(generator.model_uri, tags)
    mlflow.log_artifact(str(history_path))
    with tempfile.TemporaryDirectory() as folder:
        curve = Path(folder) / "training_curve.png"
        plot_history(table, curve)
        mlflow.log_artifact(str(curve))
        if len(val_data.frames):
            sample = Path(folder) / "sampled_roll.png"
            sample_roll_picture(model, val_data, sample, seed, steps_per_quarter)
            mlflow.log_artifact(str(sample))


def sample_roll_picture(
    model: FrameModel, data: Sequences, target: Path, seed: int, steps_per_quarter: int = 4, steps: int = 128
) -> None:
    """A piece of `steps` frames drawn from the model (Bernoulli, temperature 1) after a bar of a validation
    piece."""
    from rollgen.generation.generate import sample_frames
    from rollgen.generation.primers import excerpt_primers
    from rollgen.models.sampling import make_sampler
    from rollgen.music.pictures import save_roll_picture

    rng = np.random.default_rng(seed)
    primer, positions = excerpt_primers(data, 1, 4 * steps_per_quarter, rng)
    frames = sample_frames(model, primer, positions, steps, make_sampler("bernoulli"), rng, progress=False)
    save_roll_picture(frames[0].T.astype(bool), target, steps_per_quarter=steps_per_quarter)
