"""Distribution: the mirrored strategy on one device trains the same model, slices get their share of the
cores, and two workers train identical weights while only the chief writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.archives import write_windows
from tests.training.tiny_runs import train_once, train_params


def test_the_mirrored_strategy_trains_the_same_model_on_this_machine(tmp_path, windows, trained, unlogged):
    mirrored = train_once(tmp_path, "mirrored", train_params(distribute="mirrored"), windows)
    plain_metrics = json.loads((trained("article") / "train.json").read_text())
    mirrored_metrics = json.loads((mirrored / "train.json").read_text())
    assert mirrored_metrics["distribute"] == "mirrored" and mirrored_metrics["replicas"] >= 1
    if mirrored_metrics["replicas"] == 1:  # one device (CPU only): the same arithmetic, the same weights
        assert mirrored_metrics["weights_sha256"] == plain_metrics["weights_sha256"]


def test_slices_get_their_share_of_the_cores_before_tensorflow_starts():
    """auto asks for the devices first (is there a GPU?); TensorFlow must still take the thread settings."""
    code = (
        "from rollgen.training import distribute as d; slices = d.batch_slices('auto', 16); d.share_cores(slices); "
        "import tensorflow as tf; tf.constant(1.0) + 1; t = tf.config.threading; "
        "print(slices, t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads(), "
        "d.usable_cores(), len(tf.config.list_physical_devices('GPU')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    slices, intra, inter, cores, gpus = map(int, done.stdout.split()[-5:])
    if gpus:
        assert slices == 1
    else:
        assert slices == min(cores, 16)
        if slices > 1:
            assert (intra, inter) == (max(1, cores // slices), slices)
    assert "already started" not in done.stdout


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
    one_epoch = train_params(model="rnnnade", epochs=1, distribute="multi_worker")  # padded stretches split
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    code = (
        "import sys, json; from pathlib import Path; from rollgen.training import train; "
        "from rollgen.params import ImagesParams, TrainParams; out = Path(sys.argv[1]); "
        "metrics = train.run(TrainParams.model_validate_json(sys.argv[2]), ImagesParams(), "
        "windows_dir=Path(sys.argv[3]), model_path=out / 'model.keras', metrics_path=out / 'train.json', "
        "history_path=out / 'history.csv', checkpoint_dir=out / 'checkpoint'); print('METRICS', json.dumps(metrics))"
    )
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = dict(os.environ, TF_CONFIG=tf_config, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
        command = [sys.executable, "-c", code, str(tmp_path / f"worker{index}"), one_epoch.model_dump_json(),
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
