"""What the stages and the `rollgen` command print before their own output: nothing that reads as a failure
and is none (rollgen/__init__.py), while a real problem, and a user's own setting, still come through."""

import os
import subprocess
import sys

import pytest

import rollgen


def python(code: str, tmp_path, **env: str) -> str:
    """What `python -c code` writes to stderr, TF_CPP_MIN_LOG_LEVEL unset unless given, and no MLflow setting
    (MLflow writes the tracking URI and experiment of a test's run into this process's environment)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name != "TF_CPP_MIN_LOG_LEVEL" and not name.startswith("MLFLOW_")
    }
    environment.update(env)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env=environment, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


@pytest.mark.skipif(rollgen.has_nvidia_gpu(), reason="this machine has an NVIDIA GPU")
def test_without_a_gpu_tensorflow_does_not_report_its_cuda_probe_as_an_error(tmp_path):
    probe = "import tensorflow as tf; tf.constant(1)"
    if "failed call to cuInit" not in python(probe, tmp_path):
        pytest.skip("this TensorFlow does not probe for CUDA")
    assert "cuInit" not in python(f"import rollgen; {probe}", tmp_path)


def test_with_a_gpu_tensorflow_errors_still_show_and_a_users_level_wins(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "nvidia-smi").write_text("#!/bin/sh\n")  # the driver's tool: a GPU here
    (tmp_path / "bin" / "nvidia-smi").chmod(0o755)
    show = (
        "import os, sys, rollgen; print(rollgen.has_nvidia_gpu(), os.environ['TF_CPP_MIN_LOG_LEVEL'], file=sys.stderr)"
    )
    with_gpu = f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"
    assert python(show, tmp_path, PATH=with_gpu).split() == ["True", "2"]  # infos and warnings out, errors in
    assert python(show, tmp_path, PATH=with_gpu, TF_CPP_MIN_LOG_LEVEL="0").split() == ["True", "0"]


def test_mlflows_advice_on_logging_rollgens_pyfuncs_is_not_printed_and_other_warnings_are(tmp_path):
    """MLflow advises type hints on `predict` and an input example; rollgen's pyfuncs need neither (their
    signatures are logged), and logging them, as training does, prints no such advice."""
    log = (
        "import mlflow, warnings\n"
        "from rollgen.models import frame_model\n"
        "from rollgen.params import TrainParams\n"
        "frame_model.build(TrainParams(model='nade'), context=9).keras.save('m.keras')\n"
        "mlflow.set_tracking_uri('sqlite:///mlflow.db')\n"
        "from rollgen.tracking import generator_model, next_frame_model\n"
        "with mlflow.start_run():\n"
        "    next_frame_model.log('m.keras')\n"
        "    generator_model.log('m.keras')\n"
        "warnings.warn('a warning of our own')\n"
    )
    quiet = python(log, tmp_path)
    assert "a warning of our own" in quiet
    assert "Add type hints" not in quiet and "An input example was not provided" not in quiet
    # What MLflow says without rollgen's filter, and for a pyfunc whose `predict` has no type hints.
    unfiltered = "import rollgen, warnings\nwarnings.resetwarnings()\n"
    bare = "class Bare(mlflow.pyfunc.PythonModel):\n    def predict(self, context, model_input, params=None): pass\n"
    (tmp_path / "again").mkdir()
    loud = python(unfiltered + log + bare, tmp_path / "again")
    assert "Add type hints" in loud and "An input example was not provided" in loud


@pytest.mark.skipif(rollgen.has_nvidia_gpu(), reason="this machine has an NVIDIA GPU")
def test_without_a_gpu_mlflow_does_not_say_it_skips_gpu_metrics(tmp_path):
    run = (
        "import mlflow\n"
        f"mlflow.set_tracking_uri('sqlite:///{tmp_path / 'mlflow.db'}')\n"
        "with mlflow.start_run(log_system_metrics=True): pass\n"
    )
    assert "Skip logging GPU metrics" in python(run, tmp_path)
    quiet = python(f"import rollgen\n{run}", tmp_path)
    assert "Skip logging GPU metrics" not in quiet and "Started monitoring system metrics" in quiet
