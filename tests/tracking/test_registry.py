"""The Model Registry: the register stage logs a trained model's generator to its training run and registers it;
the `champion` alias goes to the version with the best validation NLL (the test scores never choose), among
versions scored on the same validation pieces; a model is named by a path, a runs:/ URI or a models:/ URI."""

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


def trained_version(client, val_nll, test_nll, val_sha256="val-archive-1") -> str:
    """A run scored as the train and evaluate stages score one, with its model version registered; gives the
    version."""
    import mlflow

    with mlflow.start_run() as run:
        mlflow.log_metrics({"test.model.nll": test_nll} | ({} if val_nll is None else {"val_nll": val_nll}))
        mlflow.log_text("a model", "model/model.keras")
    tags = registry.version_tags("rnnnade", "sequence", "windows", val_sha256, "abc123", val_nll)
    if not client.search_registered_models(f"name = '{registry.NAME}'"):
        client.create_registered_model(registry.NAME)
    return client.create_model_version(
        registry.NAME, f"{run.info.artifact_uri}/model", run.info.run_id, tags=tags
    ).version


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

    assert registry.choose_champion(None) is None
    without_validation = trained_version(store, val_nll=None, test_nll=1.0)
    assert registry.choose_champion(without_validation) is None and champion(store) == 3


def test_a_model_is_a_path_a_runs_uri_or_a_models_uri(store, tmp_path):
    import mlflow

    version = trained_version(store, val_nll=20.0, test_nll=30.0)
    registry.choose_champion(version)
    run_id = store.get_model_version(registry.NAME, version).run_id
    assert registry.keras_file("models/model.keras", tmp_path) == Path("models/model.keras")
    from_run = registry.keras_file(f"runs:/{run_id}/model/model.keras", tmp_path / "run")
    from_alias = registry.keras_file(f"models:/{registry.NAME}@{registry.CHAMPION}", tmp_path / "alias")
    from_version = registry.keras_file(f"models:/{registry.NAME}/1", tmp_path / "version")
    assert from_run.read_text() == from_alias.read_text() == from_version.read_text() == "a model"

    with mlflow.start_run() as run:
        mlflow.log_text("no model here", "notes.txt")
    with pytest.raises(RollgenError, match="no .keras model in it"):
        registry.keras_file(f"runs:/{run.info.run_id}/notes.txt", tmp_path / "notes")


def training_run(val_nll: float) -> dict:
    """A training run as the train stage leaves one: the run in the store, and metrics/train.json naming it."""
    import mlflow

    with mlflow.start_run() as run:
        mlflow.log_metric("val_nll", val_nll)
    return {"model": "nade", "family": "window", "windows_sha256": "windows-hash", "val_nll": val_nll,
            "mlflow_run_id": run.info.run_id}  # fmt: skip


def test_the_register_stage_logs_the_generator_to_the_training_run_and_moves_the_champion(store, tmp_path):
    import keras

    from rollgen.files import sha256_file
    from rollgen.models import frame_model
    from rollgen.params import TrainParams

    keras_file, val_archive = tmp_path / "model.keras", tmp_path / "val.npz"
    keras.utils.set_random_seed(0)
    frame_model.build(TrainParams(model="nade"), context=9).keras.save(keras_file)  # untrained: any model will do
    val_archive.write_bytes(b"the validation pieces")
    first = training_run(val_nll=20.0)
    assert registry.register_trained(first, keras_file, val_archive) == {"version": 1, "champion": True,
                                                                         "champion_version": 1}  # fmt: skip
    version = store.get_model_version(registry.NAME, "1")
    assert version.run_id == first["mlflow_run_id"]  # the generator was logged to the training run
    assert version.tags == {"model": "nade", "family": "window", "windows_sha256": "windows-hash",
                            "val_sha256": sha256_file(val_archive), "git_commit": version.tags["git_commit"],
                            "val_nll": "20.0"}  # fmt: skip
    assert registry.keras_file(f"models:/{registry.NAME}@{registry.CHAMPION}", tmp_path / "champion").read_bytes() == (
        keras_file.read_bytes()
    )

    worse = training_run(val_nll=25.0)
    assert registry.register_trained(worse, keras_file, val_archive) == {"version": 2, "champion": False,
                                                                         "champion_version": 1}  # fmt: skip
    with pytest.raises(RollgenError, match="no mlflow_run_id"):
        registry.register_trained(worse | {"mlflow_run_id": None}, keras_file, val_archive)
