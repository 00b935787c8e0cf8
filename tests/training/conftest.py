"""Fixtures of the training tests: an MLflow store per module, the archives, and models trained once per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollgen.training import train
from tests.archives import write_windows
from tests.training.tiny_runs import LOGGED, train_once, train_params


@pytest.fixture(scope="module", autouse=True)
def mlflow_store(tmp_path_factory) -> str:
    """The module's runs go to a store of its own, and the variable is gone again after the module."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri


@pytest.fixture
def unlogged(monkeypatch) -> None:
    """Leaves out what a run logs after its weights are final (the MLflow model, the curve), for tests about the
    weights alone."""
    monkeypatch.setattr(train, "log_training", lambda *args, **kwargs: None)


@pytest.fixture(scope="module")
def windows(tmp_path_factory) -> Path:
    """Train and val archives, and a test.npz that is not an archive at all: training never reads it."""
    folder = tmp_path_factory.mktemp("windows")
    write_windows(folder)
    (folder / "test.npz").write_bytes(b"not an archive: the test split is for evaluate alone")
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory, windows):
    """Trains a model of each kind asked for once per module, for 2 epochs with PARAMS; only the kinds the
    MLflow test reads are logged in full."""
    folder, done = tmp_path_factory.mktemp("trained"), {}

    def train_model(name: str) -> Path:
        if name not in done:
            with pytest.MonkeyPatch.context() as patch:
                if name not in LOGGED:
                    patch.setattr(train, "log_training", lambda *args, **kwargs: None)
                done[name] = train_once(folder, name, train_params(model=name), windows)
        return done[name]

    return train_model
