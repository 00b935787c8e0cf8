"""Tiny training runs for the tests: PARAMS (2 epochs of the article's network on the archives of
tests.archives), changed a key at a time, trained into a folder of their own."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rollgen.models.builders import load_model
from rollgen.params import ImagesParams, TrainParams
from rollgen.training import train

PARAMS = TrainParams(model="article", loss="bce", epochs=2, batch_size=16, learning_rate=0.002, lr_schedule="constant",
                     patience=0, transpose=2, seed=3, sequence_steps=32, validation_freq=1)  # fmt: skip


def train_params(**changes) -> TrainParams:
    """PARAMS with `changes`, checked as params.yaml's train section is."""
    return TrainParams.model_validate(PARAMS.model_dump() | changes)


def train_once(tmp_path: Path, name: str, params: TrainParams, windows: Path) -> Path:
    """Trains on the archives in `windows` into tmp_path/name (model.keras, train.json, history.csv); gives it."""
    out = tmp_path / name
    train.run(params, ImagesParams(), windows_dir=windows, model_path=out / "model.keras",
              metrics_path=out / "train.json", history_path=out / "history.csv",
              checkpoint_dir=out / "checkpoint")  # fmt: skip
    return out


def weights(path: Path) -> list[np.ndarray]:
    """Every weight of the saved model at `path`, as arrays."""
    return [np.asarray(w) for w in load_model(path).weights]


LOGGED = ("convnade", "rnnnade")  # logged in full by the `trained` fixture: a window model and a sequence model
