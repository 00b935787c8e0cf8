"""Atomic outputs: a failure mid-write leaves the old file (or nothing), never half a file."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rollgen import files

REPO = Path(__file__).resolve().parents[1]


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    files.write_json(target, {"version": 1})
    with pytest.raises(RuntimeError), files.atomic_path(target) as tmp:
        tmp.write_text("half of a fi")
        raise RuntimeError("killed")
    assert target.read_text() == '{\n  "version": 1\n}\n'
    assert [path.name for path in tmp_path.iterdir()] == ["out.json"]


def test_a_folder_is_replaced_only_when_complete(tmp_path):
    target = tmp_path / "midi"
    with files.atomic_dir(target) as folder:
        (folder / "a.mid").write_bytes(b"1")
    with pytest.raises(RuntimeError), files.atomic_dir(target) as folder:
        (folder / "b.mid").write_bytes(b"2")
        raise RuntimeError("killed")
    assert [path.name for path in tmp_path.iterdir()] == ["midi"]
    assert [path.name for path in target.iterdir()] == ["a.mid"]


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def test_a_folder_that_fails_to_move_in_leaves_the_old_one_in_place(tmp_path, monkeypatch):
    target = tmp_path / "midi"
    with files.atomic_dir(target) as folder:
        (folder / "a.mid").write_bytes(b"old")
    real_replace, calls = os.replace, []

    def replace(source, destination):
        calls.append(Path(source).name)
        if len(calls) == 2:  # the old folder is aside; moving the new one in fails
            raise OSError("disk gone")
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk gone"), files.atomic_dir(target) as folder:
        (folder / "b.mid").write_bytes(b"new")
    assert calls[0] == "midi" and calls[1].endswith(".tmp") and calls[2].endswith(".old")  # and put back
    assert [path.name for path in tmp_path.iterdir()] == ["midi"]
    assert contents(target) == {"a.mid": b"old"}


# Replaces "old" in a folder with "new", killed (os._exit: no except or finally runs) at one step of the swap.
KILLED_SWAP = """
import os, shutil, sys
from rollgen import files

step = sys.argv[2]
real_replace, real_rmtree, replaced = os.replace, shutil.rmtree, []

def replace(source, destination):
    replaced.append(source)
    if (step, len(replaced)) in {("moving the old folder aside", 1), ("moving the new folder in", 2)}:
        os._exit(9)
    real_replace(source, destination)

def rmtree(path):
    if step == "deleting the old folder":
        os._exit(9)
    real_rmtree(path)

os.replace, shutil.rmtree = replace, rmtree
with files.atomic_dir(sys.argv[1]) as folder:
    (folder / "new.mid").write_bytes(b"new")
"""


@pytest.mark.parametrize(
    ("step", "left_at_target"),
    [
        ("moving the old folder aside", {"old.mid": b"old"}),
        ("moving the new folder in", None),  # neither at `target`: the old one aside, the new one in its .tmp
        ("deleting the old folder", {"new.mid": b"new"}),
    ],
)
def test_a_swap_killed_at_any_step_keeps_a_complete_folder_that_the_next_call_finds(tmp_path, step, left_at_target):
    target = tmp_path / "midi"
    with files.atomic_dir(target) as folder:
        (folder / "old.mid").write_bytes(b"old")
    source = str(Path(files.__file__).parents[1])  # the rollgen under test, also in the child
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    killed = subprocess.run([sys.executable, "-c", KILLED_SWAP, str(target), step], env=env, timeout=120)
    assert killed.returncode == 9

    leftovers = sorted(path for path in tmp_path.iterdir() if path.name != "midi")
    assert all(path.name.startswith(".midi.") for path in leftovers)
    if left_at_target is None:
        assert not target.exists()
        assert {path.suffix: contents(path) for path in leftovers} == {
            ".old": {"old.mid": b"old"},
            ".tmp": {"new.mid": b"new"},
        }
    else:
        assert contents(target) == left_at_target

    # The next call, even one that fails, removes the leftovers; the old folder goes back where none is left.
    with pytest.raises(RuntimeError), files.atomic_dir(target):
        raise RuntimeError("failed")
    assert [path.name for path in tmp_path.iterdir()] == ["midi"]
    assert contents(target) == (left_at_target or {"old.mid": b"old"})


def test_archives_hold_no_pickles_and_are_reproducible(tmp_path):
    with pytest.raises(TypeError, match="pickle"):
        files.write_npz(tmp_path / "bad.npz", items=np.array([{"a": 1}], dtype=object))
    arrays = {"x": np.arange(12, dtype=np.uint8).reshape(3, 4), "names": np.array(["a", "b"])}
    files.write_npz(tmp_path / "one.npz", **arrays)
    files.write_npz(tmp_path / "two.npz", **arrays)
    assert files.sha256_file(tmp_path / "one.npz") == files.sha256_file(tmp_path / "two.npz")
    loaded = files.load_npz(tmp_path / "one.npz")
    assert loaded["names"].tolist() == ["a", "b"] and (loaded["x"] == arrays["x"]).all()


# What killed writes leave, by who left it; `remove_leftovers` takes them all, and git sees none of them.
LEFTOVERS = [
    "data/interim/.images.1a2b3c4d.tmp",  # atomic_dir's new folder, half full
    "data/processed/.windows.1a2b3c4d.old",  # atomic_dir's old folder, its target already back
    "models/.model.k3j_x9a2.tmp.keras",  # atomic_path's (mkstemp's letters)
    "metrics/.train.0f0f0f0f.tmp.json",
    "data/interim/images/.Zq3-_x7bV9kLmN0pQrStUw.tmp",  # DVC's partial copy, inside an output folder
]
KEPT = ["data/interim/images/bwv1.6.png", "data/processed/windows/train.npz", "models/model.keras", "models/.keep"]


def test_leftovers_of_killed_writes_are_invisible_to_git_and_the_sweep_removes_them(tmp_path):
    for name in [*(f"{folder}/bwv1.6.png" for folder in LEFTOVERS[:2]), *LEFTOVERS[2:], *KEPT]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"half")
    (tmp_path / ".gitignore").write_text((REPO / ".gitignore").read_text())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=tmp_path, check=True,
                            capture_output=True, text=True).stdout  # fmt: skip
    assert sorted(line[3:] for line in status.splitlines()) == sorted([".gitignore", *KEPT])

    folders = [tmp_path / folder for folder in ("data/interim", "data/processed", "models", "metrics")]
    removed = files.remove_leftovers(folders, recursive=True)
    assert sorted(path.relative_to(tmp_path).as_posix() for path in removed) == sorted(LEFTOVERS)
    assert all((tmp_path / name).exists() for name in KEPT)
    assert files.remove_leftovers(folders, recursive=True) == []


def test_the_sweep_puts_back_an_old_folder_whose_target_is_missing(tmp_path):
    """Killed between atomic_dir's two renames: the old folder is the only complete one."""
    (tmp_path / ".midi.1a2b3c4d.old").mkdir()
    (tmp_path / ".midi.1a2b3c4d.old" / "a.mid").write_bytes(b"old")
    (tmp_path / ".midi.1a2b3c4d.tmp").mkdir()
    assert files.remove_leftovers([tmp_path]) == [tmp_path / ".midi.1a2b3c4d.tmp"]
    assert [path.name for path in tmp_path.iterdir()] == ["midi"] and contents(tmp_path / "midi") == {"a.mid": b"old"}


def test_a_list_of_inputs_hashes_names_and_contents(tmp_path):
    (tmp_path / "a.mid").write_bytes(b"a")
    (tmp_path / "folder.mid").mkdir()
    listing = [("a.mid", tmp_path / "a.mid"), ("folder.mid", tmp_path / "folder.mid")]
    before = files.sha256_listing(listing)
    assert files.sha256_listing(listing) == before
    assert files.sha256_listing([("b.mid", tmp_path / "a.mid"), listing[1]]) != before  # renamed
    (tmp_path / "a.mid").write_bytes(b"b")
    assert files.sha256_listing(listing) != before  # edited
    os.mkfifo(tmp_path / "pipe.mid")  # a pipe is listed by what it is, never read (that would wait forever)
    assert files.sha256_listing([*listing, ("pipe.mid", tmp_path / "pipe.mid")]) != before
