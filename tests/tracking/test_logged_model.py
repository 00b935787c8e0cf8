"""The MLflow models that training and the register stage log load anywhere: their requirements name every
distribution their code imports, and a fresh virtual environment built from them alone loads them and predicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions, version
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from rollgen import files
from rollgen.music import meter
from rollgen.params import ImagesParams, TrainParams
from rollgen.sources import outside_imports
from rollgen.tracking import generator_model as generation_model
from rollgen.tracking import next_frame_model as logged_model
from rollgen.tracking import registry
from rollgen.training import train
from tests.defaults import STEPS_PER_QUARTER

# Run by a Python that knows nothing of this checkout (-I: no PYTHONPATH, no current folder, no user site):
# rollgen comes from the model's own code. argv[1]: a JSON list of jobs, each a model folder, its kind
# ("next_frame": tracking.next_frame_model, "generator": tracking.generator_model) and the top-level packages that
# cannot be imported while it loads and runs, as if not installed (jobs go from the most refused to the least:
# what one job imported, the next may use). Prints, per job, the answer's shape and range (a next-frame model)
# or first bytes (a generator), the rollgen loaded and the refused imports.
LOAD_AND_PREDICT = """
import base64, importlib.abc, json, sys

refused, blocked = set(), set()


class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            refused.add(name.partition(".")[0])
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
answers = []
for job in json.loads(sys.argv[1]):
    blocked.clear()
    blocked.update(job["blocked"])
    import numpy as np
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(job["model"])
    if job["kind"] == "generator":
        import pandas as pd

        request = pd.DataFrame({"primer": [""], "steps": [8], "seed": [1]})
        answer = {"starts": base64.b64decode(model.predict(request)["midi"][0])[:4].decode("latin-1")}
    else:
        frames = np.random.default_rng(0).random((3, 12, 106)).astype(np.float32)
        probabilities = np.asarray(model.predict(frames))
        answer = {"shape": probabilities.shape, "dtype": str(probabilities.dtype),
                  "min": float(probabilities.min()), "max": float(probabilities.max())}
    answers.append(answer | {"rollgen": sys.modules["rollgen"].__file__, "refused": sorted(refused)})
print(json.dumps(answers))
"""


def write_tiny_windows(folder: Path, seed: int = 0) -> None:
    """Archives in the windows stage's format: 6 random pieces of 60 frames in 4/4, split 4/1/1."""
    rng = np.random.default_rng(seed)
    pieces = [np.where(rng.random((60, 106)) < 0.05, 255, 0).astype(np.uint8) for _ in range(6)]
    for split, chosen in {"train": pieces[:4], "val": pieces[4:5], "test": pieces[5:]}.items():
        files.write_npz(
            folder / f"{split}.npz",
            frames=np.concatenate(chosen),
            frame_offsets=np.cumsum([0] + [len(piece) for piece in chosen]).astype(np.int64),
            positions=np.concatenate(
                [meter.default_positions(len(piece), STEPS_PER_QUARTER) for piece in chosen]
            ).astype(np.int16),
            pieces=np.array([f"{split}{number}" for number in range(len(chosen))]),
            context=np.int64(9),
            target_gap=np.int64(0),
        )


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> Path:
    """The MLflow model of a tiny NADE model trained for one epoch by train.run, downloaded to a folder; its
    generator, logged to the same run as the register stage logs it, beside it."""
    import mlflow

    folder = tmp_path_factory.mktemp("logged")
    write_tiny_windows(folder / "windows")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(folder)  # the store's artifacts go to mlartifacts/ here
        previous = mlflow.get_tracking_uri()
        try:
            metrics = train.run(
                TrainParams(model="nade", epochs=1, batch_size=16, patience=0), ImagesParams(),
                windows_dir=folder / "windows", model_path=folder / "model.keras",
                metrics_path=folder / "train.json", history_path=folder / "history.csv",
                checkpoint_dir=folder / "checkpoint",
            )  # fmt: skip
            registry.register_trained(metrics, folder / "model.keras", folder / "windows" / "val.npz")
            local = mlflow.artifacts.download_artifacts(
                f"runs:/{metrics['mlflow_run_id']}/{logged_model.ARTIFACT_PATH}", dst_path=str(folder / "model")
            )
            mlflow.artifacts.download_artifacts(  # the generator, beside it: see `logged_generator`
                f"runs:/{metrics['mlflow_run_id']}/{generation_model.ARTIFACT_PATH}", dst_path=str(folder / "model")
            )
        finally:
            mlflow.set_tracking_uri(previous)
    return Path(local)


@pytest.fixture(scope="module")
def logged_generator(logged) -> Path:
    """The generator that the register stage logged to the same training run, downloaded beside the next-frame
    model."""
    return logged.parent / generation_model.ARTIFACT_PATH


def load_and_predict(python: str | Path, jobs: list[dict], cwd: Path) -> list[dict]:
    """What LOAD_AND_PREDICT prints for `jobs` ({"model", "kind", "blocked"}), run by `python` in `cwd` with
    nothing of the checkout on its path."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}
    jobs = [{"blocked": [], "kind": "next_frame"} | job | {"model": str(job["model"])} for job in jobs]
    command = [str(python), "-I", "-c", LOAD_AND_PREDICT, json.dumps(jobs, default=sorted)]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_prediction(answer: dict, model: Path) -> None:
    assert answer["shape"] == [3, 106] and answer["dtype"] == "float32"
    assert 0 < answer["min"] and answer["max"] < 1
    assert Path(answer["rollgen"]).is_relative_to(model)  # the code the model carries, not an installed copy


def dependency_closure(requirements: list[str]) -> set[str]:
    """Canonical names of the required distributions and of every distribution they depend on, as installed
    here (with the extras they ask for, and the markers of this platform)."""
    found: set[tuple[str, frozenset]] = set()
    pending = [Requirement(line) for line in requirements]
    while pending:
        requirement = pending.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in found:
            continue
        found.add(key)
        try:
            depends = distribution(requirement.name).requires or []
        except PackageNotFoundError:  # not installed here, so nothing here imports it
            continue
        for line in depends:
            needed = Requirement(line)
            extras = {"", *requirement.extras}
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(needed)
    return {name for name, _ in found}


@pytest.mark.parametrize("entry", ["rollgen.tracking.next_frame_model", "rollgen.tracking.generator_model"])
def test_the_requirements_pin_what_the_code_imports_as_installed(entry):
    imported = outside_imports(entry)
    assert imported["py_midicsv"] == "rollgen.music.midi"  # e.g.: read from the sources, module-level imports ...
    assert "music21" in imported  # ... and those inside functions, as midi's score conversion
    requirements = logged_model.requirements(entry)
    for line in requirements:
        requirement = Requirement(line)
        assert str(requirement.specifier) == f"=={version(requirement.name)}"
    providers = packages_distributions()
    named = {canonicalize_name(Requirement(line).name) for line in requirements}
    for top in imported:
        assert {canonicalize_name(name) for name in providers[top]} <= named, top


def test_the_logged_models_load_and_run_with_only_their_requirements_importable(logged, logged_generator, tmp_path):
    """Loaded and run here, where every installed package is refused that pip would not install from the
    model's requirements.txt (those named there and their dependencies): the fresh environment, in seconds. The
    generator, which the same run logs, needs a little more (params: pydantic, PyYAML) and is run second."""
    assert set(logged_model.requirements()) <= set((logged / "requirements.txt").read_text().split())
    generator_requirements = (logged_generator / "requirements.txt").read_text().split()
    assert set(logged_model.requirements(f"{logged_model.PACKAGE}.tracking.generator_model")) <= set(
        generator_requirements
    )
    blocked, generator_blocked = not_required(logged), not_required(logged_generator)
    assert generator_blocked <= blocked
    jobs = [{"model": logged, "blocked": blocked},
            {"model": logged_generator, "kind": "generator", "blocked": generator_blocked}]  # fmt: skip
    answer, generated = load_and_predict(sys.executable, jobs, tmp_path)
    check_prediction(answer, logged)
    assert generated["starts"] == "MThd"  # a MIDI file
    assert Path(generated["rollgen"]).is_relative_to(logged)  # rollgen as the first model brought it
    print("optional imports refused, without harm:", ", ".join(generated["refused"]) or "none")


def not_required(model: Path) -> set[str]:
    """The top-level packages installed here that pip would not install from `model`'s requirements.txt."""
    requirements = (model / "requirements.txt").read_text().split()
    installed = dependency_closure(requirements)
    blocked = {
        top
        for top, names in packages_distributions().items()
        if top != "rollgen" and not {canonicalize_name(name) for name in names} & installed
    }  # rollgen: the model's own copy is checked to be the one loaded
    assert {"pytest", "hypothesis"} <= blocked and not {"keras", "music21"} & blocked
    return blocked


def wheelhouse() -> Path:
    """Where wheels downloaded for fresh environments are kept between runs: $ROLLGEN_WHEELS, else
    ~/.cache/rollgen/wheels. A folder of wheels rather than pip's HTTP cache, so that later installs need no
    index at all (`--no-index`); on this project's machine pip's cache kept nothing anyway."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("ROLLGEN_WHEELS") or cache / "rollgen" / "wheels")


@pytest.mark.slow
def test_the_logged_model_loads_and_predicts_in_a_fresh_virtual_environment(logged, tmp_path):
    """python -m venv (no system site-packages), pip install -r the model's requirements.txt, and nothing else:
    mlflow.pyfunc.load_model and predict work there. The wheels come from a wheelhouse filled by `pip download`
    the first time, so later runs install offline."""
    venv, wheels = tmp_path / "venv", wheelhouse()
    python = venv / "bin" / "python"
    requirements = logged / "requirements.txt"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    offline = [str(python), "-m", "pip", "install", "--quiet", "--no-compile", "--no-index", "--find-links",
               str(wheels), "-r", str(requirements)]  # fmt: skip
    installed = subprocess.run(offline, capture_output=True, text=True, timeout=900)
    downloaded = None
    if installed.returncode != 0:  # a wheel is missing: fetch what the requirements need, then install offline
        wheels.mkdir(parents=True, exist_ok=True)
        fetch = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels), "-r",
                        str(requirements)], check=True, timeout=900)  # fmt: skip
        downloaded = time.perf_counter() - fetch
        installed = subprocess.run(offline, capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    built = time.perf_counter() - started
    [answer] = load_and_predict(python, [{"model": logged}], tmp_path)
    check_prediction(answer, logged)
    fetched = f" (of which downloading {downloaded:.0f} s)" if downloaded is not None else " (offline)"
    print(f"fresh venv: built in {built:.0f} s{fetched}, loaded and predicted in "
          f"{time.perf_counter() - started - built:.0f} s")  # fmt: skip
