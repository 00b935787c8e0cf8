"""Distribution: the mirrored strategy on one device trains the same model, slices get their share of the
cores, and two workers (`rollgen workers`, in a network of their own) train identical weights while only the
chief writes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rollgen.training.local_workers import exposure_warning, namespace_command, private_network
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


def listening(net: Path) -> set[tuple[str, int]]:
    """The (address, port) of every TCP socket that listens in a network namespace, read from a /proc/.../net
    folder (/proc/self/net: this process's, the machine's; /proc/PID/net: that process's)."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in (net / table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A":  # LISTEN
                address, port = local.split(":")
                found.add(("*" if set(address) == {"0"} else address, int(port, 16)))
    return found


def descendants(pid: int) -> list[int]:
    """The processes started by `pid`, and by them, and so on (seen from this machine's /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # it ended while being read
            continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def free_port_pair() -> int:
    """A port P on 127.0.0.1 such that nothing listens on P or P + 1 in this machine's network right now."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise AssertionError("no two free ports in a row")


def rollgen_workers(count: int, command: list[str], log: Path, **options: str) -> subprocess.Popen:
    """Starts `rollgen workers COUNT -- COMMAND` (its output into `log`), in a session of its own to end."""
    flags = [part for name, value in options.items() for part in (f"--{name.replace('_', '-')}", value)]
    return subprocess.Popen([sys.executable, "-m", "rollgen.cli", "workers", str(count), *flags, "--", *command],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def end(process: subprocess.Popen) -> None:
    """Kills what is left of `process` and everything it started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


NO_NAMESPACE = namespace_command()[1]


def two_workers_run(code: str, log: Path) -> tuple[int, str]:
    """`rollgen workers 2` running `python -c code` to its end (at most a minute): its exit status and output."""
    launcher = rollgen_workers(2, [sys.executable, "-c", code], log, first_port="40000")
    try:
        return launcher.wait(timeout=60), log.read_text()
    finally:
        end(launcher)


@pytest.mark.skipif(bool(NO_NAMESPACE), reason=f"no private network namespace here: {NO_NAMESPACE}")
def test_local_workers_share_a_network_of_their_own_with_loopback_up(tmp_path):
    report = (
        "import json, os, socket; tf_config = json.loads(os.environ['TF_CONFIG']); "
        "server = socket.create_server(('127.0.0.1', 0)); socket.create_connection(server.getsockname()).close(); "
        "print('WORKER', json.dumps([tf_config, [name for _, name in socket.if_nameindex()]]), flush=True)"
    )
    status, output = two_workers_run(report, tmp_path / "log")
    assert status == 0, output
    # print() writes its arguments one at a time: whole lines with their worker's name, or they cut into each other
    lines = [line.split(": WORKER ", 1) for line in output.splitlines() if ": WORKER " in line]
    seen = sorted((json.loads(report) for _, report in lines), key=lambda worker: worker[0]["task"]["index"])
    assert sorted(prefix for prefix, _ in lines) == ["worker 0", "worker 1"], output
    assert [json.loads(report)[0]["task"]["index"] for prefix, report in sorted(lines)] == [0, 1]
    cluster = {"worker": ["127.0.0.1:40000", "127.0.0.1:40001"]}
    assert [config for config, _ in seen] == [{"cluster": cluster, "task": {"type": "worker", "index": index}}
                                              for index in range(2)]  # fmt: skip
    assert [interfaces for _, interfaces in seen] == [["lo"], ["lo"]]  # nothing but loopback, and it is up
    assert "in a private network (loopback only)" in output


def test_a_failed_worker_stops_the_others_and_its_status_is_the_launchers(tmp_path):
    fail_first = (
        "import json, os, sys, time; "
        "sys.exit(3) if json.loads(os.environ['TF_CONFIG'])['task']['index'] == 0 else time.sleep(300)"
    )
    status, output = two_workers_run(fail_first, tmp_path / "log")
    assert status == 3, output


@pytest.mark.skipif(bool(NO_NAMESPACE), reason=f"no private network namespace here: {NO_NAMESPACE}")
def test_local_workers_refuse_a_tracking_server_their_network_cannot_reach(tmp_path):
    command = [sys.executable, "-m", "rollgen.cli", "workers", "2", "--", sys.executable, "-c", "print('WORKER')"]
    to_a_server = dict(os.environ, MLFLOW_TRACKING_URI="http://127.0.0.1:5000")
    launcher = subprocess.run(command, env=to_a_server, capture_output=True, text=True, timeout=60)
    assert launcher.returncode == 1 and "WORKER" not in launcher.stdout
    assert "reaches no server, so not MLFLOW_TRACKING_URI=http://127.0.0.1:5000" in launcher.stderr


def test_without_unshare_the_workers_run_in_this_machines_network_and_say_so(tmp_path):
    show = "import os; print('WORKER', os.environ['TF_CONFIG'], flush=True)"
    command = [sys.executable, "-m", "rollgen.cli", "workers", "1", "--", sys.executable, "-c", show]
    no_unshare = dict(os.environ, PATH=str(tmp_path))
    launcher = subprocess.run(command, env=no_unshare, capture_output=True, text=True, timeout=60)
    assert launcher.returncode == 0, launcher.stderr
    assert "no `unshare` command" in launcher.stderr and "listen on every interface" in launcher.stderr
    assert "docs/operations.md" in launcher.stderr and "WORKER" in launcher.stdout


def test_a_worker_outside_a_private_network_says_its_server_listens_on_every_interface():
    cluster = json.dumps(
        {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, "task": {"type": "worker", "index": 1}}
    )
    if private_network():
        assert exposure_warning(cluster) is None
        return
    warning = exposure_warning(cluster)
    assert "every interface (0.0.0.0:2222)" in warning and "firewall" in warning and "docs/operations.md" in warning
    on_loopback = cluster.replace("10.0.0.1", "127.0.0.1").replace("10.0.0.2", "localhost")
    assert "rollgen workers" in exposure_warning(on_loopback)


@pytest.mark.slow
@pytest.mark.skipif(bool(NO_NAMESPACE), reason=f"no private network namespace here: {NO_NAMESPACE}")
def test_two_workers_train_identical_weights_unseen_from_the_network_and_only_the_chief_writes(tmp_path, monkeypatch):
    """rollgen workers runs them; while they train, their gRPC servers listen in the workers' network alone."""
    write_windows(tmp_path / "windows")
    one_epoch = train_params(model="rnnnade", epochs=1, distribute="multi_worker")  # padded stretches split
    code = (
        "import os, sys, json; from pathlib import Path; from rollgen.training import train; "
        "from rollgen.params import ImagesParams, TrainParams; "
        "index = json.loads(os.environ['TF_CONFIG'])['task']['index']; out = Path(sys.argv[1]) / f'worker{index}'; "
        "metrics = train.run(TrainParams.model_validate_json(sys.argv[2]), ImagesParams(), "
        "windows_dir=Path(sys.argv[3]), model_path=out / 'model.keras', metrics_path=out / 'train.json', "
        "history_path=out / 'history.csv', checkpoint_dir=out / 'checkpoint'); "
        "print('METRICS', index, json.dumps(metrics), flush=True)"
    )
    first_port = free_port_pair()
    ports = {first_port, first_port + 1}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # the workers inherit it
    launcher = rollgen_workers(2, [sys.executable, "-c", code, str(tmp_path), one_epoch.model_dump_json(),
                               str(tmp_path / "windows")], tmp_path / "log", first_port=str(first_port))  # fmt: skip
    seen_by_workers, seen_by_machine = set(), set()
    try:
        deadline = time.monotonic() + 300
        while launcher.poll() is None and time.monotonic() < deadline:
            seen_by_machine |= {(address, port) for address, port in listening(Path("/proc/self/net")) if port in ports}
            for pid in descendants(launcher.pid):
                try:
                    seen_by_workers |= {port for _, port in listening(Path(f"/proc/{pid}/net")) if port in ports}
                except OSError:  # it ended
                    continue
            time.sleep(0.2)
    finally:
        end(launcher)
    output = (tmp_path / "log").read_text()
    assert launcher.returncode == 0, output[-4000:]
    assert seen_by_workers == ports, output[-4000:]  # both servers listened, in the workers' network
    assert seen_by_machine == set()  # and nothing of them in this machine's: no *:PORT, no 0.0.0.0:PORT
    assert "listens on every interface" not in output
    found = [line.split(": METRICS ", 1) for line in output.splitlines() if ": METRICS " in line]
    assert sorted(f"worker {text.split(' ', 1)[0]}" for _, text in found) == sorted(name for name, _ in found)
    metrics = [json.loads(text.split(" ", 1)[1]) for _, text in sorted(found)]
    assert metrics[0]["replicas"] == metrics[1]["replicas"] == 2
    assert metrics[0]["weights_sha256"] == metrics[1]["weights_sha256"]  # the all-reduce kept them in step
    assert (tmp_path / "worker0" / "model.keras").exists() and (tmp_path / "worker0" / "train.json").exists()
    assert not (tmp_path / "worker1").exists()  # the second worker wrote nothing

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("rollgen").experiment_id])
    assert [run.info.run_id for run in runs] == [metrics[0]["mlflow_run_id"]]  # the chief's run, and only it
    assert metrics[1]["mlflow_run_id"] is None


def test_a_cluster_in_tf_config_needs_the_multi_worker_strategy(monkeypatch):
    from rollgen.errors import RollgenError
    from rollgen.training.distribute import make_strategy

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}')
    with pytest.raises(RollgenError, match="train.distribute is 'none'.*multi_worker"):
        make_strategy("none")
