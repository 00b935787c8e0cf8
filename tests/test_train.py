"""Training: windows streamed from frames, seeded determinism, and resuming after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rollgen import files, train
from rollgen.models import build_model, load_model

PARAMS = {"model": "seed", "loss": "bce", "epochs": 2, "batch_size": 16, "learning_rate": 0.002,
          "lr_schedule": "constant", "patience": 0, "transpose": 0, "seed": 3}  # fmt: skip


def write_windows(folder: Path, pieces: int = 6, steps: int = 80, seed: int = 0) -> None:
    """Small archives in the windows stage's format: random sustained notes, split 4/1/1 pieces."""
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(pieces):
        roll = np.zeros((steps, 106), np.uint8)
        for _ in range(steps // 2):
            pitch, start = rng.integers(30, 80), rng.integers(0, steps - 4)
            roll[start : start + rng.integers(1, 8), pitch] = 255
        sequences.append(roll)
    for split, chosen in {"train": sequences[:4], "val": sequences[4:5], "test": sequences[5:]}.items():
        frames = np.concatenate(chosen)
        offsets = np.cumsum([0] + [len(s) for s in chosen])
        starts = train.window_starts(offsets, 9, 0)
        files.write_npz(
            folder / f"{split}.npz",
            x=np.stack([frames[s : s + 9] for s in starts]), y=frames[starts + 9],
            piece=np.zeros(len(starts), np.int32), pieces=np.array([f"{split}{i}" for i in range(len(chosen))]),
            frames=frames, frame_offsets=offsets.astype(np.int64), context=np.int64(9), target_gap=np.int64(0),
        )  # fmt: skip


@pytest.fixture(autouse=True)
def mlflow_store(tmp_path, monkeypatch):
    """Every test's runs go to its own store, and the variable is gone again after the test."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")


def train_once(tmp_path: Path, name: str, params: dict, windows: Path) -> Path:
    out = tmp_path / name
    train.run(params, windows_dir=windows, model_path=out / "model.keras", metrics_path=out / "train.json",
              history_path=out / "history.csv", checkpoint_dir=out / "checkpoint")  # fmt: skip
    return out


def weights(path: Path) -> list[np.ndarray]:
    return [np.asarray(w) for w in load_model(path).weights]


def test_streamed_windows_equal_the_stored_ones(tmp_path):
    write_windows(tmp_path)
    with np.load(tmp_path / "train.npz", allow_pickle=False) as archive:
        frames, offsets, x, y = archive["frames"], archive["frame_offsets"], archive["x"], archive["y"]
    starts = train.window_starts(offsets, 9, 0)
    batches = list(train.make_dataset(frames, starts, 9, 0, batch_size=50))
    streamed_x = np.concatenate([np.asarray(b[0]) for b in batches])
    streamed_y = np.concatenate([np.asarray(b[1]) for b in batches])
    np.testing.assert_allclose(streamed_x, x / 255.0, atol=1e-6)
    np.testing.assert_allclose(streamed_y, y / 255.0, atol=1e-6)
    assert len(starts) == 4 * (80 - 9)  # no window crosses from one piece into the next


def test_transposition_moves_notes_and_drops_those_pushed_off_the_roll():
    x = np.zeros((2, 3, 106), np.float32)
    y = np.zeros((2, 106), np.float32)
    x[:, :, 0] = x[:, :, 50] = 1
    y[:, 50] = 1
    shifted_x, shifted_y = train.transpose_batch(x, y, np.array([2, -1], np.int32))
    shifted_x, shifted_y = np.asarray(shifted_x), np.asarray(shifted_y)
    assert shifted_x[0, 0].nonzero()[0].tolist() == [2, 52] and shifted_y[0].nonzero()[0].tolist() == [52]
    assert shifted_x[1, 0].nonzero()[0].tolist() == [49] and shifted_y[1].nonzero()[0].tolist() == [49]


@pytest.mark.parametrize("model", ["seed", "convnade"])  # the article's network and the default
def test_two_runs_with_one_seed_give_identical_weights(tmp_path, model):
    write_windows(tmp_path / "windows")
    params = PARAMS | {"transpose": 3, "model": model}
    first = train_once(tmp_path, "a", params, tmp_path / "windows")
    second = train_once(tmp_path, "b", params, tmp_path / "windows")
    for one, two in zip(weights(first / "model.keras"), weights(second / "model.keras")):
        np.testing.assert_array_equal(one, two)
    history = json.loads((first / "train.json").read_text())
    assert history["epochs"] == 2 and history["val_nll"] > 0
    assert not (first / "checkpoint").exists()  # cleaned up after a finished run


def test_the_mirrored_strategy_trains_the_same_model_on_this_machine(tmp_path):
    write_windows(tmp_path / "windows")
    plain = train_once(tmp_path, "none", PARAMS | {"epochs": 1}, tmp_path / "windows")
    mirrored = train_once(tmp_path, "mirrored", PARAMS | {"epochs": 1, "distribute": "mirrored"}, tmp_path / "windows")
    plain_metrics, mirrored_metrics = (json.loads((out / "train.json").read_text()) for out in (plain, mirrored))
    assert mirrored_metrics["distribute"] == "mirrored" and mirrored_metrics["replicas"] >= 1
    if mirrored_metrics["replicas"] == 1:  # one device (CPU only): the same arithmetic, the same weights
        assert mirrored_metrics["weights_sha256"] == plain_metrics["weights_sha256"]


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    write_windows(tmp_path / "windows")
    out = train_once(tmp_path, "a", PARAMS | {"epochs": 30, "patience": 1, "learning_rate": 0.05}, tmp_path / "windows")
    metrics = json.loads((out / "train.json").read_text())
    assert metrics["epochs"] < 30 and metrics["best_epoch"] == metrics["epochs"] - 1


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    write_windows(tmp_path / "windows", pieces=12, steps=400)
    params = PARAMS | {"epochs": 5, "batch_size": 8}
    code = (
        "import sys, json; from pathlib import Path; from rollgen import train; "
        "out = Path(sys.argv[1]); train.run(json.loads(sys.argv[2]), windows_dir=Path(sys.argv[3]), "
        "model_path=out / 'model.keras', metrics_path=out / 'train.json', history_path=out / 'history.csv', "
        "checkpoint_dir=out / 'checkpoint')"
    )
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    command = [sys.executable, "-c", code, str(tmp_path / "killed"), json.dumps(params), str(tmp_path / "windows")]
    state = tmp_path / "killed" / "checkpoint" / "state.json"
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if state.exists() and json.loads(state.read_text())["epoch"] >= 2:
            os.kill(process.pid, signal.SIGKILL)  # mid-epoch 3
            break
        time.sleep(0.05)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert not (tmp_path / "killed" / "model.keras").exists()

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming from the checkpoint after epoch" in resumed.stdout
    assert "Epoch 1/5" not in resumed.stdout  # earlier epochs are not trained again
    metrics = json.loads((tmp_path / "killed" / "train.json").read_text())
    assert metrics["epochs"] == 5

    straight = train_once(tmp_path, "straight", params, tmp_path / "windows")
    for one, two in zip(weights(straight / "model.keras"), weights(tmp_path / "killed" / "model.keras")):
        np.testing.assert_array_equal(one, two)  # the resumed run ends exactly where an uninterrupted one does


def test_every_model_in_the_registry_builds_for_other_context_lengths():
    for name in ("seed", "convlstm"):
        model = build_model(name, context=16)
        assert model.output_shape == (None, 106)


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now, for workers on 127.0.0.1."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_identical_weights_and_only_the_chief_writes(tmp_path):
    write_windows(tmp_path / "windows")
    params = PARAMS | {"model": "lstm", "epochs": 1, "distribute": "multi_worker"}
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    code = (
        "import sys, json; from pathlib import Path; from rollgen import train; "
        "out = Path(sys.argv[1]); metrics = train.run(json.loads(sys.argv[2]), windows_dir=Path(sys.argv[3]), "
        "model_path=out / 'model.keras', metrics_path=out / 'train.json', history_path=out / 'history.csv', "
        "checkpoint_dir=out / 'checkpoint'); print('METRICS', json.dumps(metrics))"
    )
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = dict(os.environ, TF_CONFIG=tf_config, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
        command = [sys.executable, "-c", code, str(tmp_path / f"worker{index}"), json.dumps(params),
                   str(tmp_path / "windows")]  # fmt: skip
        workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=300)[0])
    finally:
        for worker in workers:
            worker.kill()
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-4000:]
    metrics = [json.loads(output.split("METRICS ", 1)[1].splitlines()[0]) for output in outputs]
    assert metrics[0]["replicas"] == metrics[1]["replicas"] == 2
    assert metrics[0]["weights_sha256"] == metrics[1]["weights_sha256"]  # the all-reduce kept them in step
    assert (tmp_path / "worker0" / "model.keras").exists() and (tmp_path / "worker0" / "train.json").exists()
    assert not (tmp_path / "worker1").exists()  # the second worker wrote nothing

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("rollgen").experiment_id])
    assert [run.info.run_id for run in runs] == [metrics[0]["mlflow_run_id"]]  # the chief's run, and only it
    assert metrics[1]["mlflow_run_id"] is None


@pytest.mark.parametrize("model", ["nade", "convnade"])
def test_the_mlflow_run_has_a_loadable_model_with_a_signature_and_a_sampled_roll(tmp_path, model):
    import mlflow
    from mlflow.tracking import MlflowClient

    write_windows(tmp_path / "windows")
    out = train_once(tmp_path, model, PARAMS | {"model": model, "epochs": 1}, tmp_path / "windows")
    metrics = json.loads((out / "train.json").read_text())
    run_id, uri = metrics["mlflow_run_id"], f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    names = {item.path for item in client.list_artifacts(run_id)}
    assert {"model", "training_curve.png", "sampled_roll.png", "history.csv"} <= names
    assert [m.step for m in client.get_metric_history(run_id, "val_nll")] == [1]

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        logged = mlflow.pyfunc.load_model(f"runs:/{run_id}/mlflow_model")
    finally:
        mlflow.set_tracking_uri(previous)
    inputs = logged.metadata.get_input_schema().inputs[0]
    assert inputs.shape == (-1, 9, 106) and str(inputs.type) == "float32"
    windows = np.random.default_rng(0).random((4, 9, 106)).astype(np.float32)
    probabilities = np.asarray(logged.predict(windows))
    assert probabilities.shape == (4, 106) and ((probabilities > 0) & (probabilities < 1)).all()
