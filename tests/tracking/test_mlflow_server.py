"""The train and register stages logging to a real `mlflow server` (SQLite store, artifacts proxied into a
folder), read back through MlflowClient and seen in the MLflow UI by a headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import yaml
from PIL import Image

from rollgen.files import sha256_file
from rollgen.params import TrainParams, load_params
from rollgen.training.train import run_name as run_name_of
from tests.repro import copy_project, project_env, run
from tests.servers import free_port, serving


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> Iterator[dict]:
    """`mlflow server` on 127.0.0.1 with its own SQLite store and artifact folder, as a team would run one."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"),
        *("--artifacts-destination", str(folder / "artifacts")),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    url = f"http://127.0.0.1:{port}"
    with serving(command, folder / "server.log", ready=f"{url}/health", timeout=180):
        yield {"url": url, "artifacts": folder / "artifacts"}


@pytest.fixture(scope="module")
def trained(tiny_repro, mlflow_server, tmp_path_factory) -> dict:
    """The train, register and generate stages of a tiny project, rerun for 2 epochs with MLFLOW_TRACKING_URI
    naming the server (system metrics sampled every second, so a run of seconds has some): the run's generator
    registered on the server, its version the champion there (the server's first), and the roll of a piece its
    model generated added to the run."""
    project = copy_project(tiny_repro, tmp_path_factory.mktemp("mlflow") / "project", mlflow_store=False)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["epochs"] = 2
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = project_env(MLFLOW_TRACKING_URI=mlflow_server["url"], MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="1")
    run(["dvc", "repro", "register", "generate"], project, env=env)  # and train before them
    assert not (project / "mlflow.db").exists()  # the explicit URI wins over the project's own store
    run_id = json.loads((project / "metrics/train.json").read_text())["mlflow_run_id"]
    registered = json.loads((project / "metrics/register.json").read_text())
    assert registered == {"version": 1, "champion": True, "champion_version": 1}
    # The model and the train params set away from their defaults (rollgen.training.train.run_name).
    run_name = run_name_of(TrainParams.model_validate(params["train"]), None)
    return {"project": project, "run_id": run_id, "run_name": run_name}


@pytest.mark.slow
def test_the_server_has_the_training_run_with_params_epoch_metrics_and_artifacts(mlflow_server, trained, tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server["url"])
    logged = client.get_run(trained["run_id"])
    assert logged.info.run_name == trained["run_name"] and logged.info.status == "FINISHED"
    assert logged.data.params["train.epochs"] == "2" and logged.data.params["ingest.limit"] == "10"
    every = load_params("train", trained["project"] / "params.yaml").validation_freq
    validated = [epoch for epoch in (1, 2) if epoch % every == 0 or epoch == 2]  # and after the last
    for metric in ("loss", "nll", "val_loss", "val_nll", "val_f1"):
        history = client.get_metric_history(trained["run_id"], metric)
        assert [point.step for point in history] == (validated if metric.startswith("val_") else [1, 2]), metric

    assert {item.path for item in client.list_artifacts(trained["run_id"])} >= {
        "model",
        "train_history.csv",
        "training_curve.png",
        "sampled_roll.png",  # added by the generate stage
    }
    assert [item.path for item in client.list_artifacts(trained["run_id"], "model")] == ["model/model.keras"]
    curve = client.download_artifacts(trained["run_id"], "training_curve.png", str(tmp_path))
    assert Image.open(curve).size[0] > 100
    # The client sent the files through the server, which keeps them in its --artifacts-destination.
    [stored] = [path for path in mlflow_server["artifacts"].rglob("model.keras") if path.parent.name == "model"]
    assert sha256_file(stored) == sha256_file(trained["project"] / "models/model.keras")

    # The model logged with its signature (an MLflow 3 logged model of the run) loads back through the server.
    import mlflow
    import numpy as np

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server["url"])
    try:
        logged_model = mlflow.pyfunc.load_model(f"runs:/{trained['run_id']}/mlflow_model")
    finally:
        mlflow.set_tracking_uri(previous)
    assert logged_model.metadata.get_input_schema().inputs[0].shape == (-1, -1, 106)  # pieces, steps, pitches
    starts = (np.random.default_rng(0).random((2, 20, 106)) < 0.1).astype(np.float32)
    probabilities = np.asarray(logged_model.predict(starts))
    assert probabilities.shape == (2, 106) and ((0 < probabilities) & (probabilities < 1)).all()


@pytest.mark.slow
def test_the_run_is_registered_as_champion_with_its_datasets_and_system_metrics(
    mlflow_server, trained, tmp_path, monkeypatch
):
    from mlflow.tracking import MlflowClient

    from rollgen.tracking import registry
    from rollgen.tracking import runs as tracking

    client = MlflowClient(tracking_uri=mlflow_server["url"])
    train = json.loads((trained["project"] / "metrics/train.json").read_text())
    champion = client.get_model_version_by_alias(registry.NAME, registry.CHAMPION)
    assert champion.run_id == trained["run_id"] and champion.tags["model"] == train["model"]
    commit = run(["git", "rev-parse", "HEAD"], trained["project"]).strip()
    assert champion.tags["windows_sha256"] == train["windows_sha256"] and champion.tags["git_commit"] == commit

    logged = client.get_run(trained["run_id"])
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(logged.data.metrics)
    inputs = {item.dataset.name: item.dataset for item in logged.inputs.dataset_inputs}
    assert sorted(inputs) == ["train", "val"]
    monkeypatch.chdir(trained["project"])  # dvc.api reads the project it runs in
    for split, dataset in inputs.items():
        archive = trained["project"] / f"data/processed/windows/{split}.npz"
        assert dataset.digest == sha256_file(archive)[:32]
        assert json.loads(dataset.source) == {"path": f"data/processed/windows/{split}.npz", "rev": commit}
        loaded = tracking.DvcDatasetSource.from_json(dataset.source).load(str(tmp_path / split))
        assert sha256_file(loaded) == sha256_file(archive)  # the archive, as DVC has it at that commit


@pytest.mark.slow
def test_mlflow_models_serve_answers_with_the_champions_midi(mlflow_server, trained, tmp_path, monkeypatch,
                                                            saved_for_people):  # fmt: skip
    """`mlflow models serve` for models:/rollgen@champion, as the README says; a request's MIDI is the music of
    its seed, as `rollgen generate --model models:/rollgen@champion` writes it."""
    import mlflow
    from typer.testing import CliRunner

    from rollgen.cli import app
    from rollgen.models import frame_model
    from rollgen.music.midi import read_midi
    from rollgen.tracking import generator_model as generation_model

    port = free_port()
    command = [
        *(sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/rollgen@champion"),
        *("--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    env = project_env(MLFLOW_TRACKING_URI=mlflow_server["url"])
    request = {"dataframe_split": {"columns": ["primer", "steps", "temperature", "seed"], "data": [["", 32, 0.9, 7]]}}
    with serving(command, tmp_path / "serve.log", ready=f"http://127.0.0.1:{port}/ping", timeout=300, env=env,
                 cwd=tmp_path):  # fmt: skip
        post = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps(request).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(post, timeout=120) as answer:
            [prediction] = json.load(answer)["predictions"]
    served = base64.b64decode(prediction["midi"])
    saved_for_people("served.mid").write_bytes(served)

    model = frame_model.load(trained["project"] / "models/model.keras")
    expected = read_midi(generation_model.generate_midi(model, b"", steps=32, temperature=0.9, seed=7))
    notes = read_midi(served)
    assert len(notes.pitches) > 0
    for field in ("pitches", "starts", "ends"):
        assert getattr(notes, field).tolist() == getattr(expected, field).tolist(), field

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server["url"])
    previous = mlflow.get_tracking_uri()
    try:
        result = CliRunner().invoke(
            app,
            ["generate", "--model", "models:/rollgen@champion", "--primer", "none", "--num", "1", "--steps", "32",
             "--temperature", "0.9", "--seed", "7", "--out", str(tmp_path / "cli")],
        )  # fmt: skip
    finally:
        mlflow.set_tracking_uri(previous)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "000.mid").read_bytes() == served


@pytest.mark.slow
def test_the_mlflow_ui_shows_the_run_and_its_metrics(mlflow_server, trained, page, tmp_path, saved_for_people):
    from mlflow.tracking import MlflowClient

    experiment_id = MlflowClient(tracking_uri=mlflow_server["url"]).get_run(trained["run_id"]).info.experiment_id
    page.open(f"{mlflow_server['url']}/#/experiments/{experiment_id}/runs/{trained['run_id']}")
    text = page.wait_for("document.body.innerText.includes('val_nll') && document.body.innerText", timeout=90)
    assert trained["run_name"] in text and trained["run_id"] in text
    assert "train.epochs" in text and "val_loss" in text

    # Bring the metrics table into view for the screenshot.
    page.evaluate(
        "[...document.querySelectorAll('td, span')].find(e => e.textContent === 'val_nll')"
        ".scrollIntoView({block: 'center'})"
    )
    screenshot = page.screenshot(tmp_path / "mlflow-run.png")
    assert min(Image.open(screenshot).size) > 500
    page.screenshot(saved_for_people("mlflow-run.png"))
    print(f"MLflow UI screenshot: {screenshot}")


@pytest.mark.slow
def test_the_mlflow_ui_shows_the_champion_and_the_runs_datasets(mlflow_server, trained, page, saved_for_people):
    from mlflow.tracking import MlflowClient

    page.open(f"{mlflow_server['url']}/#/models/rollgen")
    text = page.wait_for("document.body.innerText.includes('champion') && document.body.innerText", timeout=90)
    assert "Version 1" in text and "val_nll" in text  # the version, its alias and its tags
    page.screenshot(saved_for_people("mlflow-registered-model.png"))

    experiment_id = MlflowClient(tracking_uri=mlflow_server["url"]).get_run(trained["run_id"]).info.experiment_id
    page.open(f"{mlflow_server['url']}/#/experiments/{experiment_id}/runs/{trained['run_id']}")
    digest = sha256_file(trained["project"] / "data/processed/windows/train.npz")[:32]
    shown = f"train ({digest})"  # the Datasets panel: name (digest), then the context and `+1` for val
    text = page.wait_for(f"document.body.innerText.includes({json.dumps(shown)}) && document.body.innerText", 90)
    after = text[text.index("Registered models") :]
    assert "Training" in text and "rollgen" in after and "v1" in after
    page.evaluate("[...document.querySelectorAll('h4')].find(e => e.textContent === 'Datasets').scrollIntoView()")
    page.screenshot(saved_for_people("mlflow-run-datasets.png"))


@pytest.mark.slow
def test_with_basic_auth_the_server_answers_only_to_a_password(tmp_path):
    """`mlflow server --app-name basic-auth`, as the README's Security section says to share a server."""
    port, password = free_port(), secrets.token_urlsafe(16)
    env = dict(os.environ, MLFLOW_AUTH_ADMIN_PASSWORD=password, MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16))
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [
        *(sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth"),
        *("--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    url = f"http://127.0.0.1:{port}"
    search = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"

    def status(user: str | None = None, secret: str | None = None) -> int:
        request = urllib.request.Request(search)
        if user:
            request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status
        except urllib.error.HTTPError as refused:
            return refused.code

    # basic_auth.db, the users' store, goes to the working directory: the test's own
    with serving(command, tmp_path / "server.log", ready=f"{url}/health", timeout=180, env=env, cwd=tmp_path):
        assert status() == 401
        assert status("admin", "not-the-password") == 401
        assert status("admin", password) == 200
