"""Ingestion: every input file becomes an accepted MIDI piece or a manifest row saying why not."""

from __future__ import annotations

import os
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from rollgen import files, paths
from rollgen.corpus import MUSIC21_PREFIX, SCORE_SUFFIXES, music21_corpus_files, score_to_midi
from rollgen.midi import MidiError, notes_fingerprint, read_midi
from rollgen.roll import LOWEST_PITCH, NUM_PITCHES

MIDI_SUFFIXES = frozenset({".mid", ".midi", ".kar", ".rmi"})
MANIFEST_COLUMNS = [
    "path",
    "sha256",
    "status",
    "reason",
    "midi",
    "notes",
    "quarters",
    "notes_dropped",
    "dropped_reasons",
]


@dataclass(frozen=True)
class Source:
    """One input: `path` as shown in the manifest (relative to the source), `file` where it lies."""

    path: str
    file: str


@dataclass
class Row:
    """One manifest row. `music` hashes the notes alone, to find one piece stored in two files."""

    path: str
    sha256: str = ""
    status: str = "rejected"
    reason: str = ""
    midi: str = ""
    notes: int = 0
    quarters: float = 0.0
    notes_dropped: int = 0
    dropped_reasons: str = ""
    music: str = ""


def list_sources(source: str) -> list[Source]:
    """The inputs of `ingest.source`: 'music21:COMPOSER' or a folder searched recursively, sorted by path."""
    if source.startswith(MUSIC21_PREFIX):
        root, scores = music21_corpus_files(source[len(MUSIC21_PREFIX) :])
        return [Source(path.relative_to(root).as_posix(), str(path)) for path in scores]
    folder = Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"ingest.source '{source}' is neither 'music21:COMPOSER' nor a folder")
    found = []
    for directory, subdirectories, filenames in os.walk(folder):
        subdirectories.sort()
        # A folder named like a MIDI file is listed so it is rejected on record, not skipped unseen.
        names = filenames + [name for name in subdirectories if Path(name).suffix.lower() in MIDI_SUFFIXES]
        for name in names:
            path = Path(directory) / name
            found.append(Source(path.relative_to(folder).as_posix(), str(path)))
    return sorted(found, key=lambda item: item.path)


def midi_name(path: str, sha256: str) -> str:
    """A portable, unique file name for an accepted piece: its cleaned-up stem and a hash prefix."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem).strip("._")[:60] or "piece"
    return f"{stem}-{sha256[:8]}.mid"


def examine(source: Source, max_quarters: int = 20_000, include_drums: bool = False) -> tuple[Row, bytes | None]:
    """The manifest row for one input and, when accepted, its MIDI bytes. Never raises for bad input."""
    row = Row(path=source.path)
    file = Path(source.file)
    if file.is_dir():
        row.reason = "is a directory, not a file"
        return row, None
    try:
        data = file.read_bytes()
    except OSError as error:
        row.reason = f"cannot read: {error.strerror or error}"
        return row, None
    row.sha256 = files.sha256_bytes(data)
    suffix = file.suffix.lower()
    if data[:4] in (b"MThd", b"RIFF") or suffix in MIDI_SUFFIXES:
        midi = data
    elif suffix in SCORE_SUFFIXES:
        try:
            midi = score_to_midi(file)
        except Exception as error:  # music21 raises many exception types; each is a reason on record
            row.reason = f"music21 cannot convert it: {type(error).__name__}: {error}".strip()
            return row, None
    else:
        row.reason = f"not a MIDI or score file (suffix '{file.suffix}')"
        return row, None
    try:
        piece = read_midi(midi, include_drums=include_drums)
    except MidiError as error:
        row.reason = str(error)
        return row, None
    in_range = (piece.pitches >= LOWEST_PITCH) & (piece.pitches < LOWEST_PITCH + NUM_PITCHES)
    dropped = Counter(piece.dropped)
    if (~in_range).any():
        dropped[f"pitch outside {LOWEST_PITCH}..{LOWEST_PITCH + NUM_PITCHES - 1}"] += int((~in_range).sum())
    row.notes = int(in_range.sum())
    row.quarters = round(float(piece.length_quarters), 4)
    row.notes_dropped = sum(dropped.values())
    row.dropped_reasons = "; ".join(f"{reason}: {count}" for reason, count in sorted(dropped.items()))
    row.music = notes_fingerprint(piece)
    if row.notes == 0:
        row.reason = f"no notes in range {LOWEST_PITCH}..{LOWEST_PITCH + NUM_PITCHES - 1}"
        return row, None
    if piece.length_quarters > max_quarters:
        row.reason = f"too long: {float(piece.length_quarters):.0f} quarter notes (limit {max_quarters})"
        return row, None
    row.status, row.midi = "accepted", midi_name(source.path, row.sha256)
    return row, midi


def _examine_task(task: tuple[Source, int, bool]) -> tuple[Row, bytes | None]:
    return examine(*task)


def mark_duplicates(rows: list[Row]) -> None:
    """Keeps the first of identical files (same sha256) or identical music (same notes); marks the rest."""
    first_by_bytes: dict[str, str] = {}
    first_by_music: dict[str, str] = {}
    for row in rows:
        if not row.sha256:
            continue
        if row.sha256 in first_by_bytes:
            row.status, row.midi = "duplicate", ""
            row.reason = f"same bytes as {first_by_bytes[row.sha256]}"
            continue
        first_by_bytes[row.sha256] = row.path
        if row.status != "accepted":
            continue
        if row.music in first_by_music:
            row.status, row.midi = "duplicate", ""
            row.reason = f"same notes as {first_by_music[row.music]}"
            continue
        first_by_music[row.music] = row.path


def run(
    source: str,
    midi_dir: Path = paths.MIDI_DIR,
    manifest_path: Path = paths.MANIFEST,
    metrics_path: Path = paths.INGEST_METRICS,
    limit: int = 0,
    workers: int = 0,
    max_quarters: int = 20_000,
    include_drums: bool = False,
) -> pd.DataFrame:
    """Examines every input of `source` in parallel and writes accepted MIDI, the manifest and counts."""
    sources = list_sources(source)
    if limit:
        sources = sources[:limit]
    workers = workers or os.cpu_count() or 1
    tasks = [(item, max_quarters, include_drums) for item in sources]
    results: list[tuple[Row, bytes | None]] = []
    progress = tqdm(total=len(tasks), desc="ingest", unit="file")
    if workers == 1:
        for task in tasks:
            results.append(_examine_task(task))
            progress.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            for result in pool.map(_examine_task, tasks, chunksize=4):
                results.append(result)
                progress.update()
    progress.close()

    rows = [row for row, _ in results]
    mark_duplicates(rows)
    with files.atomic_dir(midi_dir) as folder:
        for row, midi in results:
            if row.status == "accepted":
                files.write_bytes(folder / row.midi, midi)
    manifest = pd.DataFrame([asdict(row) for row in rows], columns=[*MANIFEST_COLUMNS, "music"])
    files.write_csv(manifest_path, manifest.drop(columns="music"))
    files.write_json(metrics_path, summarize(manifest))
    if not (manifest["status"] == "accepted").any():
        raise SystemExit(f"ingest: none of {len(manifest)} inputs from '{source}' is usable; see {manifest_path}")
    return manifest


def summarize(manifest: pd.DataFrame) -> dict:
    """Counts by status and by rejection reason, for metrics/ingest.json."""
    by_status = manifest["status"].value_counts()
    rejected = manifest.loc[manifest["status"] == "rejected", "reason"]
    return {
        "files": int(len(manifest)),
        "accepted": int(by_status.get("accepted", 0)),
        "rejected": int(by_status.get("rejected", 0)),
        "duplicate": int(by_status.get("duplicate", 0)),
        "notes": int(manifest.loc[manifest["status"] == "accepted", "notes"].sum()),
        "rejected_by_reason": {reason: int(count) for reason, count in rejected.value_counts().sort_index().items()},
    }
