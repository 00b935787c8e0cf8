"""Training: every model family trains, selects on the validation pieces alone, is seeded, stops on a NaN loss
and resumes after a kill exactly where an uninterrupted run would be."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rollgen.data.archive import load_sequences
from rollgen.errors import RollgenError
from rollgen.evaluation.scores import frame_scores
from rollgen.files import sha256_file
from rollgen.generation.generate import sample_frames
from rollgen.generation.primers import excerpt_primers
from rollgen.models import frame_model
from rollgen.models.builders import MODELS, load_model
from rollgen.models.sampling import make_sampler
from rollgen.music import meter
from rollgen.params import TrainParams, TransformerNadeParams
from rollgen.tracking import registry
from rollgen.training import train
from tests.archives import write_windows

PARAMS = {"model": "article", "loss": "bce", "epochs": 2, "batch_size": 16, "learning_rate": 0.002,
          "lr_schedule": "constant", "patience": 0, "transpose": 2, "seed": 3, "sequence_steps": 32}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def mlflow_store(tmp_path_factory) -> str:
    """The module's runs go to a store of its own, and the variable is gone again after the module."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri


@pytest.fixture
def unlogged(monkeypatch) -> None:
    """Leaves out what a run logs after its weights are final (the MLflow model, the sampled roll), for tests
    about the weights alone."""
    monkeypatch.setattr(train, "log_training", lambda *args, **kwargs: None)


def train_once(tmp_path: Path, name: str, params: dict, windows: Path) -> Path:
    out = tmp_path / name
    train.run(params, windows_dir=windows, model_path=out / "model.keras", metrics_path=out / "train.json",
              history_path=out / "history.csv", checkpoint_dir=out / "checkpoint")  # fmt: skip
    return out


def weights(path: Path) -> list[np.ndarray]:
    return [np.asarray(w) for w in load_model(path).weights]


@pytest.fixture(scope="module")
def windows(tmp_path_factory) -> Path:
    """Train and val archives, and a test.npz that is not an archive at all: training never reads it."""
    folder = tmp_path_factory.mktemp("windows")
    write_windows(folder)
    (folder / "test.npz").write_bytes(b"not an archive: the test split is for evaluate alone")
    return folder


LOGGED = ("convnade", "rnnnade")  # a window model and a sequence model


@pytest.fixture(scope="module")
def trained(tmp_path_factory, windows):
    """Trains a model of each kind asked for once per module, for 2 epochs with PARAMS; only the kinds the
    MLflow test reads are logged in full."""
    folder, done = tmp_path_factory.mktemp("trained"), {}

    def train_model(name: str) -> Path:
        if name not in done:
            with pytest.MonkeyPatch.context() as patch:
                if name not in LOGGED:
                    patch.setattr(train, "log_training", lambda *args, **kwargs: None)
                done[name] = train_once(folder, name, PARAMS | {"model": name}, windows)
        return done[name]

    return train_model


@pytest.mark.parametrize("name", ["article", "lstm", "nade", "convnade", "rnnnade"])
def test_each_kind_of_model_trains_saves_loads_in_safe_mode_and_generates(trained, windows, name):
    out = trained(name)
    metrics = json.loads((out / "train.json").read_text())
    model = frame_model.load(out / "model.keras")  # safe_mode on
    assert metrics["model"] == name and metrics["family"] == model.family == MODELS[name].family
    assert metrics["params"] == model.keras.count_params() and metrics["epochs"] == 2
    if name == "article":
        assert metrics["params"] == 251_370  # the article's network, unchanged
    assert metrics["train_frames"] == 4 * 80
    val = load_sequences("val", windows)
    rng = np.random.default_rng(0)
    primers, positions = excerpt_primers(val, 2, 9, rng)
    frames = sample_frames(model, primers, positions, 8, make_sampler("bernoulli"), rng, progress=False)
    assert frames.shape == (2, 8, 106) and set(np.unique(frames)) <= {0, 1}
    assert not (out / "checkpoint").exists()  # cleaned up after a finished run


def test_the_model_is_chosen_on_every_validation_frame_and_never_reads_the_test_split(trained, windows):
    """val_nll in train.json is the best epoch's, and it is what `predict` scores over every validation frame
    with the saved model; the garbage test.npz beside the archives was never opened."""
    out = trained("rnnnade")
    metrics = json.loads((out / "train.json").read_text())
    history = pd.read_csv(out / "history.csv")
    assert len(history) == 2 and metrics["val_nll"] == pytest.approx(history["val_nll"].min())
    assert metrics["best_epoch"] == history["epoch"][history["val_nll"].idxmin()]
    val = load_sequences("val", windows)
    prediction = frame_model.load(out / "model.keras").predict(val)
    assert len(prediction.probabilities) == len(val.frames) == 80  # every frame, the first from the initial state
    scores = frame_scores(prediction.probabilities, val.frames > 127, prediction.predicted)
    assert metrics["val_nll"] == pytest.approx(scores["nll"], rel=1e-5)
    assert metrics["val_f1"] == pytest.approx(scores["f1"], abs=1e-6)


@pytest.mark.parametrize("model", ["article", "rnnnade"])  # the article's network and a sequence model
def test_two_runs_with_one_seed_give_identical_weights(tmp_path, windows, trained, unlogged, model):
    again = train_once(tmp_path, "again", PARAMS | {"model": model}, windows)  # transposed, and rnnnade drops out
    for one, two in zip(weights(trained(model) / "model.keras"), weights(again / "model.keras")):
        np.testing.assert_array_equal(one, two)


def test_the_mirrored_strategy_trains_the_same_model_on_this_machine(tmp_path, windows, trained, unlogged):
    mirrored = train_once(tmp_path, "mirrored", PARAMS | {"distribute": "mirrored"}, windows)
    plain_metrics = json.loads((trained("article") / "train.json").read_text())
    mirrored_metrics = json.loads((mirrored / "train.json").read_text())
    assert mirrored_metrics["distribute"] == "mirrored" and mirrored_metrics["replicas"] >= 1
    if mirrored_metrics["replicas"] == 1:  # one device (CPU only): the same arithmetic, the same weights
        assert mirrored_metrics["weights_sha256"] == plain_metrics["weights_sha256"]


def test_early_stopping_keeps_the_best_epoch(tmp_path, windows, unlogged):
    out = train_once(tmp_path, "a", PARAMS | {"epochs": 30, "patience": 1, "learning_rate": 0.05}, windows)
    metrics = json.loads((out / "train.json").read_text())
    assert metrics["epochs"] < 30 and metrics["best_epoch"] == metrics["epochs"] - 1
    val = load_sequences("val", windows)
    saved = frame_scores(frame_model.load(out / "model.keras").predict(val).probabilities, val.frames > 127)
    assert saved["nll"] == pytest.approx(metrics["val_nll"], rel=1e-5)  # the best epoch's weights, not the last's


def test_a_nan_loss_stops_training_and_saves_nothing(tmp_path, windows):
    with pytest.raises(RollgenError, match="the loss became nan in epoch 1; nothing was saved"):
        train_once(tmp_path, "a", PARAMS | {"learning_rate": 1e30}, windows)
    assert not (tmp_path / "a" / "model.keras").exists() and not (tmp_path / "a" / "train.json").exists()


class Killed(Exception):
    """Stands in for a kill right after a checkpoint is written."""


def interrupted(monkeypatch, tmp_path, params, windows, after_epoch: int = 1) -> None:
    """A run stopped right after the checkpoint of `after_epoch`, its checkpoint left behind."""
    original = train.save_checkpoint

    def save_then_die(model, folder, state, improved):
        original(model, folder, state, improved)
        if state["epoch"] == after_epoch:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(train, "save_checkpoint", save_then_die)
        with pytest.raises(Killed):
            train_once(tmp_path, "interrupted", params, windows)
    assert (tmp_path / "interrupted" / "checkpoint" / "state.json").exists()


def test_a_checkpoint_resumes_only_under_the_code_that_wrote_it(tmp_path, windows, trained, monkeypatch, capsys):
    params = PARAMS | {"model": "rnnnade"}  # dropout and transposition: random state to restore
    with monkeypatch.context() as patch:
        patch.setattr(train, "code_identity", lambda: "other code")
        interrupted(monkeypatch, tmp_path, params, windows)
    capsys.readouterr()
    interrupted(monkeypatch, tmp_path, params, windows)  # this code: the other code's checkpoint is not used
    output = capsys.readouterr().out
    assert "written by other params, data or code; starting over" in output and "Epoch 1/2" in output

    train_once(tmp_path, "interrupted", params, windows)  # and its own is
    output = capsys.readouterr().out
    assert "resuming from the checkpoint after epoch 1 of 2" in output and "Epoch 1/2" not in output
    resumed = json.loads((tmp_path / "interrupted" / "train.json").read_text())
    uninterrupted = json.loads((trained("rnnnade") / "train.json").read_text())  # the same params and data
    assert resumed["weights_sha256"] == uninterrupted["weights_sha256"]


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    """kill -9 in the middle of epoch 3 of a sequence model; the rerun ends bit for bit where an uninterrupted
    run ends."""
    write_windows(tmp_path / "windows", pieces=6, steps=160)
    params = PARAMS | {"model": "rnnnade", "epochs": 4, "batch_size": 8}
    code = (
        "import sys, json; from pathlib import Path; from rollgen.training import train; "
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
    assert "Epoch 1/4" not in resumed.stdout  # earlier epochs are not trained again
    metrics = json.loads((tmp_path / "killed" / "train.json").read_text())
    assert metrics["epochs"] == 4

    # the straight run in a process of its own too: the same threads (train.share_cores), so the same rounding
    command[3] = str(tmp_path / "straight")
    straight = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stdout + straight.stderr
    for one, two in zip(weights(tmp_path / "straight" / "model.keras"), weights(tmp_path / "killed" / "model.keras")):
        np.testing.assert_array_equal(one, two)  # the resumed run ends exactly where an uninterrupted one does


def tiny_transformer() -> frame_model.FrameModel:
    """A small Transformer NADE without dropout: its step's arithmetic is all there is to compare."""
    import keras

    from rollgen.models.builders import build_transformer_nade

    keras.utils.set_random_seed(0)
    sizes = TransformerNadeParams(width=16, heads=2, layers=1, dropout=0.0, nade_units=8)
    return frame_model.wrap(build_transformer_nade(sizes, sequence_steps=8))


@pytest.mark.parametrize("rows", [5, 1])  # 1: fewer rows than slices, so the batch is not cut
def test_a_batch_cut_into_slices_takes_the_whole_batchs_step(windows, rows):
    import keras
    import tensorflow as tf

    from rollgen.models.frame_model import Batching

    data = load_sequences("train", windows)
    after = []
    for slices in (1, 2):
        model = tiny_transformer()
        before = [np.asarray(w) for w in model.keras.weights]
        model.keras.compile(optimizer=keras.optimizers.SGD(0.5))
        steps = train.Steps(model, "bce", tf.distribute.get_strategy(), slices)
        assert steps.slices == slices
        dataset = model.training_batches(data, Batching(rows, 0, 0, 8), 0)
        counts = {name: float(value) for name, value in steps.train(next(iter(dataset)), dataset.element_spec).items()}
        after.append((counts, [np.asarray(w) for w in model.keras.weights]))
    (whole_counts, whole), (cut_counts, cut) = after
    assert whole_counts["frames"] == cut_counts["frames"] == rows * 8
    assert cut_counts["loss"] == pytest.approx(whole_counts["loss"], rel=1e-5)
    assert cut_counts["nll"] == pytest.approx(whole_counts["nll"], rel=1e-5)
    assert any(not np.allclose(w, b) for w, b in zip(whole, before))  # the step moved the weights
    for one, two in zip(whole, cut):
        np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-6)


def test_the_articles_batch_normalisation_keeps_its_batches_whole():
    import tensorflow as tf

    article, rnnnade = (frame_model.build(TrainParams(model=name), context=9) for name in ("article", "rnnnade"))
    assert not train.rows_independent(article.keras)
    assert train.Steps(article, "mse", tf.distribute.get_strategy(), 4).slices == 1
    assert train.Steps(rnnnade, "bce", tf.distribute.get_strategy(), 4).slices == 4


def test_slices_get_their_share_of_the_cores_before_tensorflow_starts():
    """auto asks for the devices first (is there a GPU?); TensorFlow must still take the thread settings."""
    code = (
        "from rollgen.training import train; slices = train.batch_slices('auto', 16); train.share_cores(slices); "
        "import tensorflow as tf; tf.constant(1.0) + 1; t = tf.config.threading; "
        "print(slices, t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads(), "
        "train.usable_cores(), len(tf.config.list_physical_devices('GPU')))"
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
    params = PARAMS | {"model": "rnnnade", "epochs": 1, "distribute": "multi_worker"}  # padded stretches split
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    code = (
        "import sys, json; from pathlib import Path; from rollgen.training import train; "
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


@pytest.mark.parametrize("name", LOGGED)
def test_the_mlflow_run_has_a_loadable_model_with_a_signature_and_a_sampled_roll(trained, windows, mlflow_store, name):
    import mlflow
    from mlflow.tracking import MlflowClient

    out = trained(name)
    run_id = json.loads((out / "train.json").read_text())["mlflow_run_id"]
    client = MlflowClient(tracking_uri=mlflow_store)
    names = {item.path for item in client.list_artifacts(run_id)}
    assert {"model", "training_curve.png", "sampled_roll.png", "history.csv"} <= names
    assert [m.step for m in client.get_metric_history(run_id, "val_nll")] == [1, 2]
    assert client.get_run(run_id).data.tags["model_family"] == MODELS[name].family

    # Its generator is a version of the project's registered model, tagged with what made it, and the run
    # names the data that trained it: the train and validation archives, by content hash.
    metrics = json.loads((out / "train.json").read_text())
    [version] = client.search_model_versions(f"name = '{registry.NAME}' and run_id = '{run_id}'")
    assert version.tags["model"] == name and version.tags["windows_sha256"] == metrics["windows_sha256"]
    assert float(version.tags["val_nll"]) == metrics["val_nll"] and version.tags["git_commit"]
    inputs = {item.dataset.name: item for item in client.get_run(run_id).inputs.dataset_inputs}
    assert sorted(inputs) == ["train", "val"]
    for split, context in (("train", "training"), ("val", "validation")):
        digest = sha256_file(windows / f"{split}.npz")
        assert inputs[split].dataset.digest == digest[:32] and inputs[split].dataset.source_type == "dvc"
        assert {tag.key: tag.value for tag in inputs[split].tags} == {"mlflow.data.context": context, "sha256": digest}

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_store)
    try:
        logged = mlflow.pyfunc.load_model(f"runs:/{run_id}/mlflow_model")
    finally:
        mlflow.set_tracking_uri(previous)
    inputs = logged.metadata.get_input_schema().inputs[0]
    assert inputs.shape == (-1, -1, 106) and str(inputs.type) == "float32"  # any number of pieces and steps
    keras_model = load_model(out / "model.keras")
    rng = np.random.default_rng(0)
    for steps in (12, 3):  # longer than a window model's window, and shorter (silence before)
        frames = (rng.random((4, steps, 106)) < 0.1).astype(np.float32)
        probabilities = np.asarray(logged.predict(frames))
        assert probabilities.shape == (4, 106) and ((probabilities > 0) & (probabilities < 1)).all()
        # A NADE's answer: each pitch's conditional along the greedily decoded frame, as Keras gives it.
        greedy = (probabilities > 0.5).astype(np.float32)
        if MODELS[name].family == "window":
            window = np.concatenate([np.zeros((4, 9, 106), np.float32), frames], axis=1)[:, -9:]
            expected = np.asarray(keras_model([window, greedy]))
        else:
            heard = np.concatenate([np.zeros((4, 1, 106), np.float32), frames], axis=1)
            positions = np.repeat(meter.default_positions(steps + 1)[None], 4, axis=0).astype(np.int32)
            expected = np.asarray(keras_model([heard, positions, np.concatenate([frames, greedy[:, None]], axis=1)]))
            expected = expected[:, -1]
        np.testing.assert_allclose(probabilities, expected, atol=1e-5)
