"""Atomic writes and content hashes, so a killed stage never leaves a half-written file behind.

A write goes to a hidden sibling first (`.NAME.XXXXXXXX.tmp`, `.STEM.XXXXXXXX.tmp.SUFFIX`, a folder's old copy
`.NAME.XXXXXXXX.old`). A kill leaves that sibling: .gitignore and .dvcignore hide the pattern, so git never
offers it for a commit and DVC never hashes it; `remove_leftovers` (the pipeline's check stage, at the start
of every `dvc repro`) removes it, and so does the next atomic_dir call for the same target. (atomic_path leaves
that to the sweep: a scan of its folder per file would make a folder of n files cost n^2.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `target` (same suffix) and renames it onto `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The suffix stays last: Keras and FluidSynth choose the format from it.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private; outputs are ordinary files
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yields an empty temporary folder beside `target` that replaces `target` only when the block succeeds.

    The swap is two renames, then a deletion: the old folder moves aside to `.NAME.XXXXXXXX.old`, the new one
    (`.NAME.XXXXXXXX.tmp`) moves to `target`, and only then is the old one deleted. Killed at any point, this
    leaves the old or the new folder complete, plus hidden leftovers that the next call for `target` removes
    (putting the old folder back first if the kill came between the renames). One writer per `target` at a
    time, as DVC's repository lock gives the stages.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(target.parent, target.name)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    tmp.mkdir()  # with the leftovers gone, 32 random bits make a clash (an error, not a reuse) unlikely
    aside = tmp.with_suffix(".old")
    try:
        yield tmp
        had_old = os.path.lexists(target)
        if had_old:
            os.replace(target, aside)
        try:
            os.replace(tmp, target)
        except BaseException:
            if had_old:
                os.replace(aside, target)
            raise
    finally:
        _remove(tmp)
    _remove(aside)


# What a killed write leaves beside its target: atomic_dir's `.NAME.XXXXXXXX.tmp` and `.NAME.XXXXXXXX.old`
# (hex), atomic_path's `.STEM.XXXXXXXX.tmp.SUFFIX` (mkstemp's letters, digits and _), and DVC's own partial
# copies `.XXXXXXXXXXXXXXXXXXXXXX.tmp` (dvc_objects' tmp_fname: 22 URL-safe characters, no target).
_LEFTOVER = re.compile(r"\.(?P<stem>.+?)\.[a-z0-9_]{8}\.(?P<kind>tmp|old)(?P<suffix>\.[^.]+)?")
_DVC_LEFTOVER = re.compile(r"\.[A-Za-z0-9_-]{22}\.tmp")


def _leftover_of(name: str) -> tuple[str, str] | None:
    """(target name, "tmp" or "old") of a leftover named `name`, ("", "tmp") for DVC's; None for anything else."""
    match = _LEFTOVER.fullmatch(name)
    if match is not None and not (match["kind"] == "old" and match["suffix"]):
        return match["stem"] + (match["suffix"] or ""), match["kind"]
    return ("", "tmp") if _DVC_LEFTOVER.fullmatch(name) else None


def _clean_leftovers(folder: Path, target_name: str | None = None) -> list[Path]:
    """Removes what killed writes left in `folder` (for `target_name` only, when given) and gives their paths.
    An old folder that atomic_dir moved aside goes back where its target is missing (killed between the two
    renames)."""
    removed = []
    for path in sorted(folder.iterdir()):
        leftover = _leftover_of(path.name)
        if leftover is None or (target_name is not None and leftover[0] != target_name):
            continue
        target, kind = leftover
        if kind == "old" and not os.path.lexists(folder / target):
            os.replace(path, folder / target)
        else:
            _remove(path)
            removed.append(path)
    return removed


def remove_leftovers(folders: Iterable[str | os.PathLike], recursive: bool = False) -> list[Path]:
    """Removes what killed writes (rollgen's or DVC's) left in `folders` (and below, if `recursive`) and gives
    the paths removed. For a stage that no write may run alongside: DVC's repository lock gives the stages that.

    atomic_dir cleans up after its own target when it writes it again; this finds the rest: atomic_path's,
    DVC's, and those of a target that is not written again, such as an output DVC checks out of its cache
    instead of running the stage."""
    removed = []
    for folder in map(Path, folders):
        if folder.is_dir():
            removed.extend(_clean_leftovers(folder))
            if recursive:
                inside = [path for path in sorted(folder.iterdir()) if path.is_dir() and not path.is_symlink()]
                removed.extend(remove_leftovers(inside, recursive=True))
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: str | os.PathLike, data: Any) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_csv(target: str | os.PathLike, frame: pd.DataFrame) -> None:
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def write_npz(target: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Compressed .npz of plain arrays (numpy writes fixed zip timestamps, so bytes are reproducible)."""
    for name, array in arrays.items():
        if np.asarray(array).dtype == object:
            raise TypeError(f"{name}: object arrays would need pickle; store plain dtypes only")
    with atomic_path(target) as tmp:
        np.savez_compressed(tmp, **arrays)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of an .npz archive, refusing pickled objects."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_tree(folder: str | os.PathLike) -> str:
    """One hash over every file's relative path and content: the identity of a data folder."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(b"\0")
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def sha256_listing(named_files: Iterable[tuple[str, str | os.PathLike]]) -> str:
    """One hash over (name, path) pairs, each name with its file's content: the identity of a list of inputs.
    A folder or a file that cannot be read counts by its name and what it is (ingest rejects it, unread)."""
    digest = hashlib.sha256()
    for name, path in named_files:
        digest.update(name.encode())
        digest.update(b"\0")
        if Path(path).is_dir():
            digest.update(b"folder")
            continue
        if Path(path).exists() and not Path(path).is_file():  # a pipe: reading it would wait forever
            digest.update(b"special")
            continue
        try:
            digest.update(sha256_file(path).encode())
        except OSError as error:
            digest.update(f"unreadable: {error.strerror or error}".encode())
    return digest.hexdigest()
