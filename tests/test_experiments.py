"""DVC experiments — in the workspace, and queued ones that run in a temporary copy under .dvc/tmp/exps — log
their MLflow runs to the project's own store, where `dvc exp show` finds them by run id."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.repro import copy_project, project_env, run


@pytest.fixture(scope="module")
def project(tiny_repro, tmp_path_factory) -> Path:
    """A copy of the tiny repro with no MLflow store yet: whatever the experiments log must appear here."""
    return copy_project(tiny_repro, tmp_path_factory.mktemp("experiments") / "project", mlflow_store=False)


def experiments(project: Path) -> dict[str, dict]:
    """`dvc exp show --json` as {experiment name: {'params': params.yaml, 'train': metrics/train.json}}."""
    rows = json.loads(run(["dvc", "exp", "show", "--json"], project))
    found = {}
    for baseline in rows:
        for experiment in baseline.get("experiments") or []:
            for revision in experiment["revs"]:
                data = revision["data"]
                found[revision["name"]] = {
                    "params": data["params"]["params.yaml"]["data"],
                    "train": data["metrics"]["metrics/train.json"]["data"],
                }
    return found


def wait_for_queue(project: Path, name: str, timeout: float = 900) -> str:
    """Polls `dvc queue status` until experiment `name` has finished; gives its final status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in run(["dvc", "queue", "status"], project).splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[1] == name and fields[-1] in ("Success", "Failed"):
                return fields[-1]
        time.sleep(3)
    raise AssertionError(
        f"experiment {name} not finished after {timeout} s:\n{run(['dvc', 'queue', 'status'], project)}"
    )


def the_run(project: Path, run_id: str):
    """The MLflow run `run_id` from the project's own store, mlflow.db in its root."""
    from mlflow.tracking import MlflowClient

    assert (project / "mlflow.db").exists(), "no mlflow.db in the project: the run went elsewhere"
    return MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}").get_run(run_id)


@pytest.mark.slow
def test_a_queued_experiment_logs_to_the_projects_mlflow_store_not_its_temporary_copy(project, tmp_path):
    # Up to the evaluate stage, which adds to the training run (generate would too, only more slowly).
    run(["dvc", "exp", "run", "--queue", "-S", "train.epochs=3", "-n", "queued-3ep", "evaluate"], project)
    # The worker runs on after `dvc queue start` returns, holding its output open: a file, not a pipe.
    with (tmp_path / "queue-start.log").open("w") as log:
        subprocess.run(["dvc", "queue", "start"], cwd=project, env=project_env(), stdout=log, stderr=log, check=True)
    try:
        status = wait_for_queue(project, "queued-3ep")
    finally:
        run(["dvc", "queue", "stop", "--kill"], project)  # no worker outlives the test
    assert status == "Success", run(["dvc", "queue", "logs", "queued-3ep"], project)

    queued = experiments(project)["queued-3ep"]
    assert queued["params"]["train"]["epochs"] == 3 and queued["train"]["epochs"] == 3
    logged = the_run(project, queued["train"]["mlflow_run_id"])
    assert logged.data.params["train.epochs"] == "3"
    assert "test.model.nll" in logged.data.metrics  # the evaluate stage found the run in the same store
    artifacts = project.resolve() / "mlartifacts" / logged.info.run_id / "artifacts"
    assert logged.info.artifact_uri == artifacts.as_uri()
    assert (artifacts / "model/model.keras").is_file() and (artifacts / "training_curve.png").is_file()


@pytest.mark.slow
def test_an_experiment_in_the_workspace_shows_in_exp_show_and_in_the_same_store(project):
    # Only the train stage (a target, as with `dvc repro`): the test above shows the later stages' logging.
    run(["dvc", "exp", "run", "-S", "train.epochs=2", "-n", "workspace-2ep", "train"], project)
    shown = run(["dvc", "exp", "show", "--no-pager", "--md"], project)
    assert "workspace-2ep" in shown and "val_nll" in shown

    workspace = experiments(project)["workspace-2ep"]
    assert workspace["params"]["train"]["epochs"] == 2
    logged = the_run(project, workspace["train"]["mlflow_run_id"])
    assert logged.data.params["train.epochs"] == "2" and "val_nll" in logged.data.metrics
    assert logged.info.run_name.startswith("workspace-2ep ")  # two runs of one model are told apart by name
