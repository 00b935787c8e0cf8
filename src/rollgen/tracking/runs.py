"""MLflow set-up: one experiment for the project, the project's SQLite store unless MLFLOW_TRACKING_URI says
otherwise."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mlflow.data.dataset_source import DatasetSource

from rollgen import paths

DEFAULT_EXPERIMENT = "rollgen"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else mlflow.db in the project root, also from an experiment's temporary copy."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{paths.project_root() / paths.MLFLOW_DB}"


def start_experiment() -> str:
    """Points MLflow at the store and experiment (MLFLOW_EXPERIMENT_NAME or 'rollgen'); returns its id.

    With a local store the artifacts go to mlartifacts/ in the project root, beside mlflow.db, not wherever the
    process runs.
    """
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        mlflow.set_experiment(experiment_id=experiment.experiment_id)
        return experiment.experiment_id
    local = uri.startswith(("sqlite:", "file:"))
    location = (paths.project_root() / paths.MLFLOW_ARTIFACTS).resolve().as_uri() if local else None
    experiment_id = mlflow.create_experiment(name, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_commit() -> str:
    """The checked-out commit, or 'unknown' outside a git work tree."""
    try:
        # git from PATH, as the user runs it, with a fixed argument list and no shell.
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10)  # noqa: S607 - see above
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip()


def open_run(run_id: str):
    """The training run `run_id`, or, where this tracking store never saw it (the model came with `dvc pull`
    or from another clone), a new run tagged with it: scores are logged either way, never lost to a crash."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    try:
        mlflow.MlflowClient().get_run(run_id)
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        print(f"MLflow run {run_id} (the training run) is not in this tracking store; logging to a new run")
        return mlflow.start_run(tags={"rollgen.training_run_id": run_id})
    return mlflow.start_run(run_id=run_id)


def log_to_run(run_id: str | None, metrics: dict, prefix: str, artifact: Path | None = None) -> None:
    """Adds the numbers of a nested metrics dict (and a file) to the training run `run_id` (see open_run),
    e.g. test scores."""
    import mlflow

    from rollgen.params import flatten

    if not run_id:
        return
    numbers = {
        f"{prefix}.{name}": float(value)
        for name, value in flatten(metrics).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    start_experiment()
    with open_run(run_id):
        mlflow.log_metrics(numbers)
        if artifact is not None:
            mlflow.log_artifact(str(artifact))


class DvcDatasetSource(DatasetSource):
    """An MLflow dataset source naming a DVC-tracked file of this project at a git revision: `load()` reads it
    back with dvc.api, from the project's cache or its remote."""

    def __init__(self, path: Path | str, rev: str) -> None:
        self.path, self.rev = Path(path).as_posix(), rev

    @staticmethod
    def _get_source_type() -> str:
        return "dvc"

    def load(self, dst_path: str | None = None) -> str:
        """Writes the file, as DVC has it at `rev`, into `dst_path` (a new temporary folder if None)."""
        import tempfile

        import dvc.api

        from rollgen import files

        target = Path(dst_path or tempfile.mkdtemp()) / Path(self.path).name
        with dvc.api.open(self.path, rev=self.rev, mode="rb") as source:
            files.write_bytes(target, source.read())
        return str(target)

    @staticmethod
    def _can_resolve(raw_source) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source):
        raise NotImplementedError("a dvc source is made from its path and revision, not resolved from a string")

    def to_dict(self) -> dict:
        return {"path": self.path, "rev": self.rev}

    @classmethod
    def from_dict(cls, source_dict: dict) -> DvcDatasetSource:
        return cls(source_dict["path"], source_dict["rev"])


DATASET_CONTEXTS = {"train": "training", "val": "validation"}


def log_datasets(archives: dict[str, Path], digests: dict[str, str], frames: dict[str, int]) -> None:
    """Logs each split's archive as a dataset input of the active run: named by its split, digest = its sha256
    (the first 32 hex digits: MLflow keeps 36 characters; the whole hash is in the input's tags), source = its
    DVC path and the git commit, schema = its frames (uint8, frames x pitches)."""
    import mlflow
    import numpy as np
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.types.schema import Schema, TensorSpec

    from rollgen.music.roll import NUM_PITCHES

    commit = git_commit()
    for split, path in archives.items():
        schema = Schema([TensorSpec(np.dtype(np.uint8), (frames[split], NUM_PITCHES), "frames")])
        dataset = MetaDataset(DvcDatasetSource(path, commit), name=split, digest=digests[split][:32], schema=schema)
        mlflow.log_input(dataset, context=DATASET_CONTEXTS[split], tags={"sha256": digests[split]})
