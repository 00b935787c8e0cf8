"""Atomic outputs: a failure mid-write leaves the old file (or nothing), never half a file."""

import numpy as np
import pytest

from rollgen import files


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


def test_archives_hold_no_pickles_and_are_reproducible(tmp_path):
    with pytest.raises(TypeError, match="pickle"):
        files.write_npz(tmp_path / "bad.npz", items=np.array([{"a": 1}], dtype=object))
    arrays = {"x": np.arange(12, dtype=np.uint8).reshape(3, 4), "names": np.array(["a", "b"])}
    files.write_npz(tmp_path / "one.npz", **arrays)
    files.write_npz(tmp_path / "two.npz", **arrays)
    assert files.sha256_file(tmp_path / "one.npz") == files.sha256_file(tmp_path / "two.npz")
    loaded = files.load_npz(tmp_path / "one.npz")
    assert loaded["names"].tolist() == ["a", "b"] and (loaded["x"] == arrays["x"]).all()
