"""A tiny copy of the project: the repository's pipeline with tiny params, in a temporary git repo of its own.

`make_tiny_repro` runs `dvc repro` once and commits the result; tests that change a project work on a
`copy_project` of it, so one slow repro serves every end-to-end test of a session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from rollgen.files import sha256_file, sha256_tree

REPO = Path(__file__).resolve().parents[1]
PROJECT = ["dvc.yaml", "params.yaml", "stages", "src", "pretrained", ".dvcignore", ".gitignore"]
COPIED = [*PROJECT, ".dvc/config", ".dvc/.gitignore"]
TINY = {
    "ingest": {"limit": 10, "workers": 2},
    # Seconds of training whichever model params.yaml names: short stretches for a sequence model, and
    # batches of 16 (8 windows a batch take twice as long for convnade; 64 stretches do not help a Transformer).
    "train": {"epochs": 1, "batch_size": 16, "sequence_steps": 32},
    "evaluate": {"samples": 8},
    "generate": {"pieces": 1, "steps": 24},
}
# What `dvc pull` must bring back: the folders and files DVC caches (metrics stay in git).
DVC_OUTPUTS = ["data/interim/midi", "data/interim/images", "data/processed/windows", "generated"]
DVC_FILES = ["models/model.keras", "data/interim/manifest.csv"]


def project_env(**extra: str) -> dict[str, str]:
    """The environment for `dvc` and the stages: this venv's `python` first on PATH, MLflow's own defaults."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `python` in dvc.yaml = this venv
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "DVC_ROOT"):
        env.pop(name, None)  # a test's project uses its own store unless the test says otherwise
    env.update(extra)
    return env


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 1200) -> str:
    """Runs a command to completion and returns its output; fails the test with the output tail otherwise."""
    result = subprocess.run(command, cwd=cwd, env=env or project_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout + result.stderr


def make_tiny_repro(target: Path) -> Path:
    """Copies the project into `target` with tiny params, runs `dvc repro` and commits everything."""
    for name in COPIED:
        source, destination = REPO / name, target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, destination)
    params = yaml.safe_load((target / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (target / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q", "-b", "main"], target)
    run(["git", "config", "user.name", "rollgen tests"], target)
    run(["git", "config", "user.email", "tests@rollgen.invalid"], target)
    run(["git", "add", "-A"], target)
    run(["dvc", "repro"], target)
    run(["git", "add", "-A"], target)
    run(["git", "commit", "-q", "-m", "tiny repro"], target)  # queued experiments start from a commit
    return target


def copy_project(source: Path, target: Path, mlflow_store: bool = True) -> Path:
    """A copy of a project (git, DVC cache, outputs) to change freely; without DVC's temp files, and without
    the MLflow store unless `mlflow_store`."""
    skipped = {".dvc/tmp"} if mlflow_store else {".dvc/tmp", "mlflow.db", "mlartifacts"}

    def ignore(folder: str, names: list[str]) -> list[str]:
        relative = Path(folder).relative_to(source)
        return [name for name in names if (relative / name).as_posix() in skipped]

    shutil.copytree(source, target, symlinks=True, ignore=ignore)
    return target


def output_digests(project: Path) -> dict[str, str]:
    """sha256 of every DVC-tracked output of a project, by path."""
    digests = {name: sha256_tree(project / name) for name in DVC_OUTPUTS}
    digests.update({name: sha256_file(project / name) for name in DVC_FILES})
    return digests


def delete_cache_and_outputs(project: Path) -> None:
    """Removes the DVC cache and every DVC-tracked output, as on a fresh clone."""
    shutil.rmtree(project / ".dvc" / "cache")
    for name in DVC_OUTPUTS:
        shutil.rmtree(project / name)
    for name in DVC_FILES:
        (project / name).unlink()


def stale_stages(project: Path) -> dict:
    """`dvc status --json` but for the check stage, which DVC runs every time (always_changed): {} when every
    output is up to date."""
    status = json.loads(run(["dvc", "status", "--json"], project))
    assert status.pop("check", None) == ["always changed"], status
    return status


def stages_run(output: str) -> list[str]:
    """The stages that a `dvc repro` output says it ran, in order."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]
