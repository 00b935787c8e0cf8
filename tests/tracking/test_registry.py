"""The Model Registry: the `champion` alias goes to the version with the best validation NLL (the test scores
never choose), among versions scored on the same validation pieces; a model is named by a path, a runs:/ URI
or a models:/ URI."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollgen.errors import RollgenError
from rollgen.tracking import registry


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A project's SQLite store of its own (the registry needs a database), with artifacts under tmp_path."""
    import mlflow

    from rollgen.tracking import runs as tracking

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "registry-test")
    previous = mlflow.get_tracking_uri()
    tracking.start_experiment()
    yield mlflow.MlflowClient()
    mlflow.set_tracking_uri(previous)


def trained_version(client, val_nll, test_nll, val_sha256="val-archive-1"):
    """A run scored as the train and evaluate stages score one, with its model version registered."""
    import mlflow

    with mlflow.start_run() as run:
        mlflow.log_metrics({"test.model.nll": test_nll} | ({} if val_nll is None else {"val_nll": val_nll}))
        mlflow.log_text("a model", "model/model.keras")
    tags = registry.version_tags("rnnnade", "sequence", "windows", val_sha256, "abc123", val_nll)
    if not client.search_registered_models(f"name = '{registry.NAME}'"):
        client.create_registered_model(registry.NAME)
    client.create_model_version(registry.NAME, f"{run.info.artifact_uri}/model", run.info.run_id, tags=tags)
    return run.info.run_id


def champion(client) -> int:
    return int(client.get_model_version_by_alias(registry.NAME, registry.CHAMPION).version)


def test_the_champion_has_the_best_validation_nll_even_where_another_has_the_better_test_score(store):
    better_val = trained_version(store, val_nll=20.0, test_nll=30.0)
    better_test = trained_version(store, val_nll=25.0, test_nll=10.0)
    assert registry.choose_champion(better_test).version == 1
    assert champion(store) == 1  # version 2 scores better on the test pieces: that does not count

    # A lower NLL on other validation pieces does not compare: it wins only among its own.
    other_data = trained_version(store, val_nll=5.0, test_nll=5.0, val_sha256="val-archive-2")
    assert registry.choose_champion(better_val).version == 1 and champion(store) == 1
    assert registry.choose_champion(other_data).version == 3 and champion(store) == 3

    assert registry.choose_champion("a-run-that-registered-nothing") is None
    without_validation = trained_version(store, val_nll=None, test_nll=1.0)
    assert registry.choose_champion(without_validation) is None and champion(store) == 3


def test_a_model_is_a_path_a_runs_uri_or_a_models_uri(store, tmp_path):
    import mlflow

    run_id = trained_version(store, val_nll=20.0, test_nll=30.0)
    registry.choose_champion(run_id)
    assert registry.keras_file("models/model.keras", tmp_path) == Path("models/model.keras")
    from_run = registry.keras_file(f"runs:/{run_id}/model/model.keras", tmp_path / "run")
    from_alias = registry.keras_file(f"models:/{registry.NAME}@{registry.CHAMPION}", tmp_path / "alias")
    from_version = registry.keras_file(f"models:/{registry.NAME}/1", tmp_path / "version")
    assert from_run.read_text() == from_alias.read_text() == from_version.read_text() == "a model"

    with mlflow.start_run() as run:
        mlflow.log_text("no model here", "notes.txt")
    with pytest.raises(RollgenError, match="no .keras model in it"):
        registry.keras_file(f"runs:/{run.info.run_id}/notes.txt", tmp_path / "notes")
