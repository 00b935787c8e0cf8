"""End to end: `dvc repro` in a copy of the repository with tiny params, then every output checked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from rollgen.files import load_npz, sha256_file, sha256_tree
from rollgen.midi import read_midi
from rollgen.models import load_model

REPO = Path(__file__).resolve().parents[1]
COPIED = ["dvc.yaml", "params.yaml", "stages", "src", "data/raw", ".dvc/config", ".dvcignore", ".gitignore"]
TINY = {
    "ingest": {"limit": 10, "workers": 2},
    "train": {"epochs": 1, "batch_size": 64},
    "generate": {"pieces": 1, "steps": 24},
}


def run(command: list[str], cwd: Path) -> str:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `python` in dvc.yaml = this venv
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A fresh copy of the project (a git repo of its own) after one `dvc repro` with tiny params."""
    copy = tmp_path_factory.mktemp("repo")
    for name in COPIED:
        source, target = REPO / name, copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target)
    params = yaml.safe_load((copy / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], copy)
    run(["git", "add", "-A"], copy)
    run(["dvc", "repro"], copy)
    return copy


@pytest.mark.slow
def test_every_stage_output_is_there_and_sound(repo):
    manifest = (repo / "data/interim/manifest.csv").read_text().splitlines()
    assert manifest[0].startswith("path,sha256,status,reason") and len(manifest) == 11
    pngs = list((repo / "data/interim/images").glob("*.png"))
    assert pngs and all(Image.open(png).size == (106, 106) for png in pngs)

    for split in ("train", "val", "test"):
        data = load_npz(repo / f"data/processed/windows/{split}.npz")
        assert data["x"].dtype == np.uint8 and data["x"].shape[1:] == (9, 106) and len(data["x"]) > 0
        assert data["y"].dtype == np.uint8 and data["y"].shape == (len(data["x"]), 106)

    model = load_model(repo / "models/model.keras")
    trained = json.loads((repo / "metrics/train.json").read_text())
    assert model.count_params() == trained["params"] > 0
    assert model.output_shape == (None, 106)

    scores = json.loads((repo / "metrics/eval.json").read_text())
    for name in ("model", "persistence", "repeat_last"):
        assert set(scores[name]) == {"nll", "acc", "precision", "recall", "f1"}
        assert scores[name]["nll"] > 0 and 0 <= scores[name]["acc"] <= 1

    piece = read_midi((repo / "generated/000.mid").read_bytes())
    assert len(piece.pitches) > 0
    with wave.open(str(repo / "generated/000.wav")) as audio:
        samples = np.frombuffer(audio.readframes(audio.getnframes()), dtype=np.int16)
    assert audio.getframerate() == 44_100 and np.abs(samples).max() > 0
    generated = json.loads((repo / "metrics/generate.json").read_text())
    assert set(generated["generated"]) >= {"silent_fraction", "notes_per_step", "mean_polyphony"}
    assert generated["test"]["frames"] > 0


@pytest.mark.slow
def test_mlflow_has_the_run_with_params_metrics_and_model(repo):
    from mlflow.tracking import MlflowClient

    train = json.loads((repo / "metrics/train.json").read_text())
    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    run_info = client.get_run(train["mlflow_run_id"])
    assert run_info.data.params["train.epochs"] == "1"
    assert run_info.data.params["ingest.source"] == "music21:bach"
    assert run_info.data.tags["windows_sha256"] == train["windows_sha256"]
    assert [m.step for m in client.get_metric_history(run_info.info.run_id, "val_loss")] == [1]
    assert "test.model.nll" in run_info.data.metrics  # the evaluate stage adds test scores to the run
    artifacts = [item.path for item in client.list_artifacts(run_info.info.run_id, "model")]
    assert artifacts == ["model/model.keras"]


@pytest.mark.slow
def test_a_second_repro_does_nothing_and_push_pull_round_trips(repo, tmp_path):
    output = run(["dvc", "repro"], repo)
    assert "Running stage" not in output
    assert "Data and pipelines are up to date" in run(["dvc", "status"], repo)

    outputs = ["data/interim/midi", "data/interim/images", "data/processed/windows", "generated"]
    before = {name: sha256_tree(repo / name) for name in outputs}
    before["models/model.keras"] = sha256_file(repo / "models/model.keras")
    run(["dvc", "remote", "modify", "--local", "local", "url", str(tmp_path / "remote")], repo)
    run(["dvc", "push"], repo)
    assert len([path for path in (tmp_path / "remote").rglob("*") if path.is_file()]) > 10

    shutil.rmtree(repo / ".dvc" / "cache")
    for name in outputs:
        shutil.rmtree(repo / name)
    (repo / "models/model.keras").unlink()
    (repo / "data/interim/manifest.csv").unlink()
    run(["dvc", "pull"], repo)
    after = {name: sha256_tree(repo / name) for name in outputs}
    after["models/model.keras"] = sha256_file(repo / "models/model.keras")
    assert after == before  # every output back, byte for byte
    assert (repo / "data/interim/manifest.csv").exists()
    assert "Data and pipelines are up to date" in run(["dvc", "status"], repo)
