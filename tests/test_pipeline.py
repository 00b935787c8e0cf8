"""End to end: `dvc repro` in a copy of the repository with tiny params, then every output checked."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from rollgen.data.archive import SPLITS, load_sequences
from rollgen.data.images import METERS_NAME
from rollgen.evaluation.mixture import TranspositionMixture
from rollgen.evaluation.scores import frame_scores
from rollgen.models import frame_model
from rollgen.models.builders import MODELS
from rollgen.music.meter import frame_positions, read_meters
from rollgen.music.midi import read_midi
from rollgen.params import validate
from tests.repro import copy_project, delete_cache_and_outputs, output_digests, run, stages_run, stale_stages


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

    meters = read_meters(repo / "data/interim/images" / METERS_NAME, steps_per_quarter=4)
    data = {split: load_sequences(split, repo / "data/processed/windows") for split in SPLITS}
    assignments = pd.read_csv(repo / "data/processed/windows/splits.csv")
    for split, sequences in data.items():
        assert sequences.frames.dtype == np.uint8 and sequences.frames.shape[1] == 106 and len(sequences) > 0
        assert len(sequences.names) == len(sequences) and sequences.offsets[-1] == len(sequences.frames)
        assert sorted(sequences.names) == sorted(assignments.piece[assignments.split == split])
        for number, name in enumerate(sequences.names):  # every frame at its place in the piece's bars
            where = sequences.positions[sequences.offsets[number] : sequences.offsets[number + 1]]
            np.testing.assert_array_equal(where, frame_positions(meters[name], len(where)))
    assert sum(len(sequences) for sequences in data.values()) == len(assignments) == 10

    params = yaml.safe_load((repo / "params.yaml").read_text())
    model = frame_model.load(repo / "models/model.keras")
    trained = json.loads((repo / "metrics/train.json").read_text())
    assert trained["model"] == params["train"]["model"] == model.name
    assert trained["family"] == model.family == MODELS[model.name].family
    assert model.keras.count_params() == trained["params"] and trained["train_frames"] == len(data["train"].frames)
    # The model was chosen on every validation frame, and evaluate scored every test frame, with this model.
    val_truth = data["val"].frames > 127
    assert trained["val_nll"] == pytest.approx(frame_scores(model.predict(data["val"]).probabilities, val_truth)["nll"])
    untrained = frame_model.build(validate("train", params["train"]), data["val"].context)
    assert (
        trained["val_nll"] < frame_scores(untrained.predict(data["val"]).probabilities, val_truth)["nll"]
    )  # it learnt
    scores = json.loads((repo / "metrics/eval.json").read_text())
    test = data["test"]
    assert scores["test_frames"] == int(np.diff(test.offsets).sum()) == len(test.frames)
    assert scores["test_pieces"] == len(test)
    # The model is the network's mean over evaluate.transpositions shifts each way; the network alone beside it.
    reach = params["evaluate"]["transpositions"]
    ensemble = TranspositionMixture(model, reach).predict(test) if reach else model.predict(test)
    test_truth = test.frames > 127
    assert scores["model"]["nll"] == pytest.approx(frame_scores(ensemble.probabilities, test_truth)["nll"], rel=1e-5)
    if reach:
        alone = frame_scores(model.predict(test).probabilities, test_truth)["nll"]
        assert scores["network"]["nll"] == pytest.approx(alone, rel=1e-5)
    # Chorales change slowly: a smoothed guess that each pitch goes on as before beats the hard guess, and
    # so does a model trained for seconds (each miss costs the hard guess 16 nats).
    assert scores["persistence"]["nll"] < scores["repeat_last"]["nll"]
    assert scores["model"]["nll"] < scores["repeat_last"]["nll"]
    assert 0 < scores["repeat_last"]["f1"] < 1

    piece = read_midi((repo / "generated/000.mid").read_bytes())
    assert len(piece.pitches) > 0
    with wave.open(str(repo / "generated/000.wav")) as audio:
        samples = np.frombuffer(audio.readframes(audio.getnframes()), dtype=np.int16)
    assert audio.getframerate() == 44_100 and np.abs(samples).max() > 0
    generated = json.loads((repo / "metrics/generate.json").read_text())
    assert set(generated["generated"]) >= {"silent_fraction", "notes_per_step", "mean_polyphony"}
    assert generated["generated"]["frames"] == params["generate"]["pieces"] * params["generate"]["steps"]
    assert generated["test"]["frames"] == len(test.frames)
    assert generated["train"]["frames"] == len(data["train"].frames)  # the data's own gates read every piece
    assert set(generated["data_gates"]) == {"train", "test"}


@pytest.mark.slow
def test_mlflow_has_the_run_with_params_metrics_and_model(repo, tmp_path):
    from mlflow.tracking import MlflowClient

    train = json.loads((repo / "metrics/train.json").read_text())
    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    run_info = client.get_run(train["mlflow_run_id"])
    assert run_info.data.params["train.epochs"] == "1"
    assert run_info.data.params["ingest.source"] == "music21:bach"
    assert run_info.data.tags["windows_sha256"] == train["windows_sha256"]
    assert [m.step for m in client.get_metric_history(run_info.info.run_id, "val_loss")] == [1]
    scores = json.loads((repo / "metrics/eval.json").read_text())
    assert run_info.data.metrics["test.model.nll"] == pytest.approx(scores["model"]["nll"])  # added by evaluate
    assert run_info.data.tags["model_family"] == train["family"]
    artifacts = [item.path for item in client.list_artifacts(run_info.info.run_id, "model")]
    assert artifacts == ["model/model.keras"]
    # generate adds its numbers and the roll of the first piece it wrote to the model's run.
    generated = json.loads((repo / "metrics/generate.json").read_text())
    assert run_info.data.metrics["generate.generated.frames"] == generated["generated"]["frames"]
    picture = client.download_artifacts(run_info.info.run_id, "sampled_roll.png", str(tmp_path))
    assert Path(picture).read_bytes() == (repo / "generated/000.png").read_bytes()
    # The project's own SQLite store keeps the registry too: the register stage logged the run's generator, the
    # project's first version and so the champion.
    assert json.loads((repo / "metrics/register.json").read_text()) == {"version": 1, "champion": True,
                                                                       "champion_version": 1}  # fmt: skip
    assert client.get_model_version_by_alias("rollgen", "champion").run_id == run_info.info.run_id


@pytest.mark.slow
def test_a_second_repro_does_nothing_and_push_pull_round_trips(repo, tmp_path):
    assert stages_run(run(["dvc", "repro"], repo)) == ["check"]  # the check runs every time, and only it
    assert stale_stages(repo) == {}

    before = output_digests(repo)
    run(["dvc", "remote", "modify", "--local", "local", "url", str(tmp_path / "remote")], repo)
    run(["dvc", "push"], repo)
    assert len([path for path in (tmp_path / "remote").rglob("*") if path.is_file()]) > 10

    delete_cache_and_outputs(repo)
    run(["dvc", "pull"], repo)
    assert output_digests(repo) == before  # every output back, byte for byte
    assert stale_stages(repo) == {}
