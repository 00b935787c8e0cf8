"""MLflow set-up: one experiment for the project, the project's SQLite store unless MLFLOW_TRACKING_URI says
otherwise."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

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


def log_to_run(run_id: str | None, metrics: dict, prefix: str, artifact: Path | None = None) -> None:
    """Adds the numbers of a nested metrics dict (and a file) to an existing run, e.g. test scores to the
    training run."""
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
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(numbers)
        if artifact is not None:
            mlflow.log_artifact(str(artifact))
