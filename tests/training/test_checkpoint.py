"""Checkpoints: a killed run resumes exactly where an uninterrupted run would be, and only under the code that
wrote its checkpoint; that fingerprint covers the code training runs and nothing else."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rollgen.params import TrainParams
from rollgen.sources import SOURCES, module_closure
from rollgen.training import checkpoint
from tests.archives import write_windows
from tests.training.tiny_runs import train_once, train_params, weights


class Killed(Exception):
    """Stands in for a kill right after a checkpoint is written."""


def interrupted(monkeypatch, tmp_path, params: TrainParams, windows, after_epoch: int = 1) -> None:
    """A run stopped right after the checkpoint of `after_epoch`, its checkpoint left behind."""
    original = checkpoint.save

    def save_then_die(model, folder, progress, improved):
        original(model, folder, progress, improved)
        if progress.epoch == after_epoch:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(checkpoint, "save", save_then_die)
        with pytest.raises(Killed):
            train_once(tmp_path, "interrupted", params, windows)
    assert (tmp_path / "interrupted" / "checkpoint" / "state.json").exists()


def test_a_checkpoint_resumes_only_under_the_code_that_wrote_it(tmp_path, windows, trained, monkeypatch, capsys):
    rnnnade = train_params(model="rnnnade")  # dropout and transposition: random state to restore
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint, "code_identity", lambda: "other code")
        interrupted(monkeypatch, tmp_path, rnnnade, windows)
    capsys.readouterr()
    interrupted(monkeypatch, tmp_path, rnnnade, windows)  # this code: the other code's checkpoint is not used
    output = capsys.readouterr().out
    assert "written by other params, data or code; starting over" in output and "Epoch 1/2" in output

    train_once(tmp_path, "interrupted", rnnnade, windows)  # and its own is
    output = capsys.readouterr().out
    assert "resuming from the checkpoint after epoch 1 of 2" in output and "Epoch 1/2" not in output
    resumed = json.loads((tmp_path / "interrupted" / "train.json").read_text())
    uninterrupted = json.loads((trained("rnnnade") / "train.json").read_text())  # the same params and data
    assert resumed["weights_sha256"] == uninterrupted["weights_sha256"]


OUTSIDE_TRAINING = (
    "cli.py",
    "generation/",
    "music/audio.py",
    "music/pictures.py",
    "evaluation/quality.py",
    "evaluation/stats.py",
)  # the gallery, the CLI, audio: generation's


def test_the_fingerprint_covers_the_code_training_runs_and_nothing_else(tmp_path):
    """Editing the CLI, generation or the gallery's pictures leaves a checkpoint resumable; editing the trainer or
    a model's layers does not. (A copy of the sources, changed: rollgen.sources reads any `sources` folder.)"""
    sources = tmp_path / "src"
    shutil.copytree(SOURCES / "rollgen", sources / "rollgen", ignore=shutil.ignore_patterns("__pycache__"))
    closure = {
        path.relative_to(sources / "rollgen").as_posix()
        for path in module_closure(checkpoint.TRAINING, sources).values()
    }
    assert "training/trainer.py" in closure and not [name for name in closure if name.startswith(OUTSIDE_TRAINING)]
    before = checkpoint.code_identity(sources)
    for outside in ("cli.py", "generation/generate.py", "music/pictures.py", "music/audio.py"):
        with (sources / "rollgen" / outside).open("a") as file:
            file.write("\n# an edit outside training\n")
        assert checkpoint.code_identity(sources) == before, outside
    for inside in ("training/trainer.py", "models/nade.py", "evaluation/scores.py"):
        path = sources / "rollgen" / inside
        original = path.read_text()
        path.write_text(original + "\n# an edit to the code training runs\n")
        assert checkpoint.code_identity(sources) != before, inside
        path.write_text(original)
    assert checkpoint.code_identity(sources) == before == checkpoint.code_identity()  # this checkout's training code


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    """kill -9 in the middle of epoch 3 of a sequence model; the rerun ends bit for bit where an uninterrupted
    run ends."""
    write_windows(tmp_path / "windows", pieces=6, steps=160)
    four_epochs = train_params(model="rnnnade", epochs=4, batch_size=8, average_epochs=1)  # the average resumes too
    code = (
        "import sys; from pathlib import Path; from rollgen.training import train; "
        "from rollgen.params import ImagesParams, TrainParams; out = Path(sys.argv[1]); "
        "train.run(TrainParams.model_validate_json(sys.argv[2]), ImagesParams(), windows_dir=Path(sys.argv[3]), "
        "model_path=out / 'model.keras', metrics_path=out / 'train.json', history_path=out / 'history.csv', "
        "checkpoint_dir=out / 'checkpoint')"
    )
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    command = [sys.executable, "-c", code, str(tmp_path / "killed"), four_epochs.model_dump_json(),
               str(tmp_path / "windows")]  # fmt: skip
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

    # the straight run in a process of its own too: the same threads (distribute.share_cores), the same rounding
    command[3] = str(tmp_path / "straight")
    straight = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stdout + straight.stderr
    for one, two in zip(weights(tmp_path / "straight" / "model.keras"), weights(tmp_path / "killed" / "model.keras")):
        np.testing.assert_array_equal(one, two)  # the resumed run ends exactly where an uninterrupted one does
