"""A training run's checkpoint: one folder, rewritten whole after every epoch, that a killed run resumes from
bit for bit, and only where the same params, data and code wrote it (its fingerprint).

    progress = checkpoint.resumable(folder, fingerprint)   # None: start over
    model, best_weights = checkpoint.restore(folder)        # the last epoch's model, the best epoch's weights
    checkpoint.save(model.keras, folder, progress, improved)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import keras
import numpy as np

from rollgen import files, paths
from rollgen.errors import RollgenError
from rollgen.models import frame_model
from rollgen.models.builders import load_model
from rollgen.models.frame_model import FrameModel
from rollgen.params import TrainParams
from rollgen.sources import SOURCES, module_closure
from rollgen.training.trainer import averaged

CHECKPOINT_DIR = paths.MODELS / "checkpoint"
RANDOM_STATES = "random_states.npz"  # in the checkpoint folder, beside last.keras
STATE = "state.json"
TRAINING = "rollgen.training.train"  # the module whose code a checkpoint belongs to: run() and what it imports


@dataclasses.dataclass
class Progress:
    """How far a run has come, as state.json keeps it: epochs done, the best epoch and its score on the
    monitored NLL, epochs since it improved, each epoch's numbers, the MLflow run and the seconds trained."""

    fingerprint: str
    epoch: int = 0
    best: float = float("inf")
    best_epoch: int = 0
    wait: int = 0
    history: list[dict] = dataclasses.field(default_factory=list)
    run_id: str | None = None
    seconds: float = 0.0
    stopped_early: bool = False

    def record(self, logs: dict[str, float], seconds: float, monitor: str, patience: int) -> bool:
        """Adds the epoch just trained (`logs`, in `seconds`); gives whether `monitor` improved on the best so
        far, and stops early once `patience` epochs have passed without (0: never). An epoch that was not
        validated (no `monitor` in `logs`: train.validation_freq) is compared with nothing."""
        self.seconds += seconds
        self.history.append({"epoch": self.epoch + 1, **logs, "seconds": round(seconds, 1)})
        self.epoch += 1
        if monitor not in logs:
            return False
        improved = logs[monitor] < self.best
        if improved:
            self.best, self.best_epoch = logs[monitor], self.epoch
        self.wait = self.epoch - self.best_epoch
        self.stopped_early = patience > 0 and self.wait >= patience
        return improved


def code_identity(sources: Path = SOURCES) -> str:
    """A digest of the code training runs (rollgen.sources.module_closure of rollgen.training.train under
    `sources`): a checkpoint is resumed only by the code that wrote it, and no other file voids it."""
    digest = hashlib.sha256()
    for module, path in sorted(module_closure(TRAINING, sources).items()):
        digest.update(module.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def fingerprint(params: TrainParams, windows_sha256: str) -> str:
    """What a checkpoint must have been written by to be resumed: these params, these archives, this code."""
    return files.sha256_bytes(
        json.dumps([params.model_dump(), windows_sha256, code_identity()], sort_keys=True).encode()
    )


def resumable(folder: Path, wanted: str) -> Progress | None:
    """The progress of the checkpoint in `folder` where its fingerprint is `wanted` and its model is there."""
    state = folder / STATE
    if not state.exists() or not (folder / "last.keras").exists():
        return None
    saved = json.loads(state.read_text())
    return Progress(**saved) if saved.get("fingerprint") == wanted else None


def weights_sha256(model: keras.Model) -> str:
    """A digest of every weight: equal digests mean bit-identical models (runs, resumes, workers)."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return digest.hexdigest()


def random_states(model: keras.Model) -> list:
    """The dropout layers' random states (Keras SeedGenerator variables), which a .keras file leaves out."""
    return [variable for variable in model.variables if variable.path.endswith("seed_generator_state")]


def save(model: keras.Model, folder: Path, progress: Progress, improved: bool) -> None:
    """The checkpoint as one unit: a folder of last.keras (with the optimizer, to resume), best.keras (the best
    epoch's), the dropout layers' random states (so a resumed run draws the masks an uninterrupted one would)
    and state.json, swapped in whole (files.atomic_dir), so a kill at any point leaves the last complete
    checkpoint."""
    with files.atomic_dir(folder) as new:
        model.save(new / "last.keras")
        if improved:
            with averaged(model):  # the weights validated (their moving average where one is kept)
                model.save(new / "best.keras")
        elif (folder / "best.keras").exists():
            shutil.copy2(folder / "best.keras", new / "best.keras")
        files.write_npz(new / RANDOM_STATES, **{str(n): np.asarray(v) for n, v in enumerate(random_states(model))})
        files.write_json(new / STATE, dataclasses.asdict(progress))


def restore(folder: Path) -> tuple[FrameModel, list[np.ndarray]]:
    """The checkpoint's last model, optimizer and random states included, and the best epoch's weights (the
    last model's where no epoch was better). Call it inside the strategy's scope."""
    model = frame_model.wrap(keras.models.load_model(folder / "last.keras", safe_mode=True))
    restore_random_states(model.keras, folder)
    best = folder / "best.keras"
    return model, load_model(best).get_weights() if best.exists() else model.keras.get_weights()


def restore_random_states(model: keras.Model, folder: Path) -> None:
    """Sets the dropout layers' random states to those `save` wrote."""
    saved = files.load_npz(folder / RANDOM_STATES)
    variables = random_states(model)
    if len(saved) != len(variables):
        raise RollgenError(f"{folder / RANDOM_STATES}: {len(saved)} random states for a model with {len(variables)}")
    for number, variable in enumerate(variables):
        variable.assign(saved[str(number)])
