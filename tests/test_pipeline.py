"""End to end: `dvc repro` in a copy of the repository with tiny params, then every output checked."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rollgen.files import load_npz
from rollgen.midi import read_midi
from rollgen.models import load_model
from tests.repro import copy_project, delete_cache_and_outputs, output_digests, run


@pytest.fixture(scope="module")
def repo(tiny_repro, tmp_path_factory) -> Path:
    """A copy of the tiny repro (see conftest) that these tests may change."""
    return copy_project(tiny_repro, tmp_path_factory.mktemp("pipeline") / "repo")


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

    before = output_digests(repo)
    run(["dvc", "remote", "modify", "--local", "local", "url", str(tmp_path / "remote")], repo)
    run(["dvc", "push"], repo)
    assert len([path for path in (tmp_path / "remote").rglob("*") if path.is_file()]) > 10

    delete_cache_and_outputs(repo)
    run(["dvc", "pull"], repo)
    assert output_digests(repo) == before  # every output back, byte for byte
    assert "Data and pipelines are up to date" in run(["dvc", "status"], repo)
