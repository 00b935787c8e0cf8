"""The check stage (stages/check.py), the first of every `dvc repro`: a mistake in params.yaml or ingest.source
stops the run before DVC deletes any stage's outputs; the inputs of ingest.source are hashed wherever they lie,
so editing them reruns ingest; what a killed run left is removed; and your MIDI files never reach git."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rollgen.cli import app
from rollgen.data import ingest
from rollgen.params import SECTIONS, Params, ParamsError, TrainParams, load_params
from rollgen.pipeline import Stage, check_params_written
from tests.repro import copy_project, output_digests, project_env, run, stages_run, stale_stages

REPO = Path(__file__).resolve().parents[1]
VALID_SECTIONS = ", ".join(SECTIONS)
# A change to params.yaml's text and what the check stops with (after "check: params.yaml: ").
MISTAKES = [
    (("epochs: 1", "epochs: ten"), "train.epochs must be an integer, not 'ten'"),
    (("train:", "trian:"), f"trian is not a section; valid: {VALID_SECTIONS}"),
    (("source: music21:bach", "source: data/raww"), "ingest.source 'data/raww' is neither 'music21:COMPOSER' nor"),
    (("source: music21:bach", "source: music21:bahc"), "music21's corpus has no scores for composer 'bahc'"),
    (("init_from: ''", "init_from: old.keras"), "train.init_from 'old.keras': no file pretrained/old.keras"),
]


def test_every_stage_waits_for_the_check_and_ingest_for_the_fingerprint_of_its_inputs():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert list(stages)[0] == "check" and stages["check"]["always_changed"] is True
    assert stages["check"]["params"] == [{"params.yaml": None}]  # the whole file
    for name, stage in stages.items():
        assert name == "check" or "data/interim/checked.json" in stage["deps"], name
        assert "data/raw" not in stage.get("deps", []), name  # the fingerprint stands for any source
    assert "data/interim/source.json" in stages["ingest"]["deps"]


def run_check(project: Path) -> subprocess.CompletedProcess:
    """stages/check.py run in `project` (its own dvc.yaml and params.yaml), as DVC runs it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, str(REPO / "stages/check.py")], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def make_project(folder: Path, source: str) -> Path:
    """A folder with the repository's dvc.yaml and params.yaml, ingest.source set to `source`."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dvc.yaml", folder / "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["ingest"]["source"] = source
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return folder


def test_the_inputs_are_hashed_wherever_they_lie_and_hidden_files_do_not_count(tmp_path, chorale_midi_dir):
    outside = tmp_path / "my-midi"
    shutil.copytree(chorale_midi_dir, outside)
    project = make_project(tmp_path / "project", str(outside))

    def fingerprint() -> dict:
        result = run_check(project)
        assert result.returncode == 0, result.stderr
        assert json.loads((project / "data/interim/checked.json").read_text()) == {
            "checked": ["params.yaml", "ingest.source"]  # the same every time: no stage reruns for it
        }
        return json.loads((project / "data/interim/source.json").read_text())

    first = fingerprint()
    assert first["source"] == str(outside) and first["files"] == 4
    (outside / ".DS_Store").write_bytes(b"finder")
    assert fingerprint() == first
    piece = sorted(outside.glob("*.mid"))[0]
    piece.write_bytes(piece.read_bytes() + b"\x00")  # one byte more
    assert fingerprint()["sha256"] != first["sha256"]


@pytest.mark.parametrize(("change", "expected"), MISTAKES)
def test_a_mistake_stops_the_check_with_the_message_alone_and_writes_nothing(tmp_path, change, expected):
    project = make_project(tmp_path, "music21:bach")
    params = project / "params.yaml"
    params.write_text(re.sub(r"\bepochs: \d+", "epochs: 1", params.read_text(), count=1).replace(*change))
    result = run_check(project)
    assert result.returncode == 1
    assert result.stderr.startswith("check: ") and expected in result.stderr
    assert "Traceback" not in result.stderr and not (project / "data").exists()


def test_a_source_folder_with_nothing_but_hidden_files_stops_the_check(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".gitkeep").touch()
    result = run_check(make_project(tmp_path, "empty"))
    assert result.returncode == 1
    assert result.stderr == "check: ingest.source 'empty' holds no files to ingest (hidden files do not count)\n"


def test_under_dvc_every_key_a_stage_declares_must_be_written(tmp_path):
    """Left out, a key is its default to rollgen, but DVC deletes the stage's outputs before saying it is missing."""
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochs: 2\nimages:\n  mode: lossless\n")
    stages = {"train": Stage(["train"], []), "windows": Stage(["windows", "images.steps_per_quarter"], [])}
    assert load_params(path=path) == Params(train=TrainParams(epochs=2))
    with pytest.raises(ParamsError) as raised:
        check_params_written({**stages, "check": Stage([], [])}, path=path)
    assert str(raised.value).splitlines() == [
        f"{path}: windows is missing; stage windows reads it (dvc.yaml): write it, as the repository's params.yaml "
        "does with every key and its default",
        f"{path}: images.steps_per_quarter is missing; stage windows reads it (dvc.yaml): write it, as the "
        "repository's params.yaml does with every key and its default",
    ]
    check_params_written(stages, path=REPO / "params.yaml")  # the repository's writes every key


def test_a_section_left_out_is_named_with_the_stage_that_reads_it(tmp_path):
    """Fine for rollgen (the defaults), but DVC would delete the stage's outputs before calling it missing."""
    project = make_project(tmp_path, "music21:bach")
    params = yaml.safe_load((project / "params.yaml").read_text())
    del params["train"]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_check(project)
    assert result.returncode == 1
    assert "params.yaml: train is missing; stage train reads it (dvc.yaml)" in result.stderr


def test_hidden_files_and_folders_are_no_inputs(tmp_path, chorale_midi_dir):
    chorale = sorted(chorale_midi_dir.iterdir())[0]
    (tmp_path / "sub" / ".git").mkdir(parents=True)
    for name in ("a.mid", "sub/b.mid"):
        shutil.copy(chorale, tmp_path / name)
    for name in (".gitkeep", ".DS_Store", "sub/.git/c.mid", ".a.1a2b3c4d.tmp.mid"):
        (tmp_path / name).write_bytes(b"not an input")
    assert [source.path for source in ingest.list_sources(str(tmp_path))] == ["a.mid", "sub/b.mid"]

    result = CliRunner().invoke(app, ["check", str(tmp_path), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "2 files: 1 accepted, 0 rejected, 1 duplicate" in result.output


def test_your_midi_files_in_data_raw_never_reach_git(tmp_path):
    (tmp_path / ".gitignore").write_text((REPO / ".gitignore").read_text())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    ignored = subprocess.run(["git", "check-ignore", "data/raw/bach/bwv1.6.mid", "data/raw.dvc"], cwd=tmp_path,
                             capture_output=True, text=True).stdout.split()  # fmt: skip
    assert ignored == ["data/raw/bach/bwv1.6.mid"]  # `dvc add data/raw` writes data/raw.dvc for git


def dvc_repro(project: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", "repro", *arguments], cwd=project, env=project_env(), capture_output=True,
                          text=True, timeout=1200)  # fmt: skip


def git_status(project: Path) -> list[str]:
    return run(["git", "status", "--porcelain", "--untracked-files=all"], project).splitlines()


@pytest.mark.slow
def test_a_params_mistake_stops_dvc_repro_before_any_output_is_deleted(tiny_repro, tmp_path):
    project = copy_project(tiny_repro, tmp_path / "project")
    before, written = output_digests(project), (project / "params.yaml").read_text()
    for change, expected in MISTAKES:
        (project / "params.yaml").write_text(written.replace(*change))
        result = dvc_repro(project)
        assert result.returncode != 0 and expected in result.stderr, result.stderr
        assert stages_run(result.stdout) == ["check"]
        assert output_digests(project) == before  # the model, the ingested files and every other output
        assert git_status(project) == [" M params.yaml"]  # nothing else changed, nothing deleted
    (project / "params.yaml").write_text(written)
    assert stages_run(run(["dvc", "repro"], project)) == ["check"]
    assert stale_stages(project) == {}


@pytest.mark.slow
def test_editing_a_source_outside_the_project_reruns_ingest(tiny_repro, tmp_path, chorale_midi_dir):
    project = copy_project(tiny_repro, tmp_path / "project")
    outside = shutil.copytree(chorale_midi_dir, tmp_path / "my-midi")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["ingest"]["source"] = str(outside)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert stages_run(run(["dvc", "repro", "ingest"], project)) == ["check", "ingest"]
    assert stages_run(run(["dvc", "repro", "ingest"], project)) == ["check"]
    (outside / ".DS_Store").write_bytes(b"finder")
    assert stages_run(run(["dvc", "repro", "ingest"], project)) == ["check"]

    shutil.copy(sorted(outside.glob("*.mid"))[0], outside / "copy.mid")
    assert stages_run(run(["dvc", "repro", "ingest"], project)) == ["check", "ingest"]
    manifest = (project / "data/interim/manifest.csv").read_text()
    assert "copy.mid" in manifest and ".DS_Store" not in manifest

    # data/raw likewise, and git never sees the files there.
    shutil.copytree(outside, project / "data/raw")
    params["ingest"]["source"] = "data/raw"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert stages_run(run(["dvc", "repro", "ingest"], project)) == ["check", "ingest"]
    assert not any("data/raw" in line for line in git_status(project))


def half_written(project: Path) -> bool:
    """Whether the images stage's temporary folder exists with a file in it."""
    for folder in (project / "data/interim").glob(".images.*.tmp"):
        try:
            if any(folder.iterdir()):
                return True
        except FileNotFoundError:  # renamed into place between the glob and the look
            continue
    return False


def kill_images_stage_midway(project: Path, attempts: int = 5) -> None:
    """Runs `dvc repro -f -s images` and kill -9s it, dvc and the stage's python together, once the stage has
    written part of its folder. A stage that finishes first (a fast machine) is run again, a bounded number
    of times, so the test never depends on timing."""
    for _ in range(attempts):
        command = ["dvc", "repro", "-f", "-s", "images"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        repro = subprocess.Popen(command, cwd=project, env=project_env(), start_new_session=True, **quiet)
        deadline = time.monotonic() + 300
        while not half_written(project) and repro.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):  # the whole run may have ended already
            os.killpg(repro.pid, signal.SIGKILL)  # dvc and the stage's python, as a kill -9 of the whole run
        repro.wait()
        if list((project / "data/interim").glob(".images.*.tmp")):
            return
    pytest.fail(f"the images stage finished before it could be killed, {attempts} times")


@pytest.mark.slow
def test_a_run_killed_mid_stage_leaves_nothing_that_git_or_dvc_sees(tiny_repro, tmp_path):
    project = copy_project(tiny_repro, tmp_path / "project")
    before = output_digests(project)
    kill_images_stage_midway(project)
    assert list((project / "data/interim").glob(".images.*.tmp"))  # half a folder of PNGs
    assert git_status(project) == []  # invisible to git meanwhile

    output = run(["dvc", "repro"], project)
    assert "removed data/interim/.images." in output  # by the check stage, although images is not run again
    assert not list((project / "data/interim").glob(".images.*"))
    assert output_digests(project) == before  # the killed stage's output is back from DVC's cache
    assert git_status(project) == []
    assert stale_stages(project) == {}
