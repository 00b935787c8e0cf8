"""Ingestion: every input file becomes an accepted MIDI piece or a manifest row saying why not."""

from __future__ import annotations

import os
import re
import resource
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
from pebble import ProcessExpired, ProcessPool
from tqdm import tqdm

from rollgen import files, paths
from rollgen.corpus import MUSIC21_PREFIX, SCORE_SUFFIXES, music21_corpus_files, score_to_midi
from rollgen.midi import MidiError, notes_fingerprint, read_midi
from rollgen.roll import LOWEST_PITCH, NUM_PITCHES, piece_to_roll

MIDI_SUFFIXES = frozenset({".mid", ".midi", ".kar", ".rmi"})
MANIFEST_COLUMNS = [
    *("path", "sha256", "status", "reason", "midi", "notes", "steps", "quarters", "seconds"),
    *("notes_dropped", "dropped_reasons", "repairs"),
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
    steps: int = 0
    quarters: float = 0.0
    seconds: float = 0.0
    notes_dropped: int = 0
    dropped_reasons: str = ""
    repairs: str = ""
    music: str = ""


@dataclass(frozen=True)
class Limits:
    """What a usable piece may be, and how hard a worker may try: the `ingest` params."""

    max_quarters: float = 20_000
    max_seconds: float = 7_200
    steps_per_quarter: int = 4
    include_drums: bool = False
    timeout_s: float = 120
    memory_mb: int = 2_048
    parser: str = "fast"  # rollgen.midi.PARSERS: "fast" (the checked walk's own events) or "py_midicsv"


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


def examine(source: Source, limits: Limits = Limits()) -> tuple[Row, bytes | None]:
    """The manifest row for one input and, when accepted, its MIDI bytes. Bad input is a row, not a raise."""
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
        except (MemoryError, SystemError) as error:
            # Under the worker's memory limit music21 fails either way; the pool reports it with the limit.
            raise MemoryError(str(error)) from error
        except Exception as error:  # music21 raises many exception types; each is a reason on record
            if "memory" in str(error).lower():
                raise MemoryError(str(error)) from error
            row.reason = f"music21 cannot convert it: {type(error).__name__}: {error}".strip()
            return row, None
    else:
        row.reason = f"not a MIDI or score file (suffix '{file.suffix}')"
        return row, None
    try:
        piece = read_midi(
            midi, include_drums=limits.include_drums, max_quarters=limits.max_quarters, parser=limits.parser
        )
        if piece.seconds > limits.max_seconds:
            raise MidiError(f"too long: {piece.seconds:.0f} seconds (limit {limits.max_seconds:.0f})")
        roll, dropped = piece_to_roll(
            piece, limits.steps_per_quarter, max_steps=int(limits.max_quarters * limits.steps_per_quarter)
        )
    except MidiError as error:
        row.reason = str(error)
        return row, None
    row.notes = len(piece.pitches) - dropped.total()  # the notes that made it into the roll
    dropped.update(piece.dropped)
    row.steps = int(roll.shape[1])
    row.quarters = round(float(piece.length_quarters), 4)
    row.seconds = round(piece.seconds, 3)
    row.notes_dropped = dropped.total()
    row.dropped_reasons = "; ".join(f"{reason}: {count}" for reason, count in sorted(dropped.items()))
    row.repairs = "; ".join(f"{reason}: {count}" for reason, count in sorted(piece.repaired.items()))
    row.music = notes_fingerprint(piece)
    if not roll.any():
        row.reason = f"no notes in range {LOWEST_PITCH}..{LOWEST_PITCH + NUM_PITCHES - 1}"
        return row, None
    row.status, row.midi = "accepted", midi_name(source.path, row.sha256)
    return row, midi


def _limit_memory(megabytes: int) -> None:
    """Worker start-up: cap the address space, so a file that makes a parser balloon fails alone."""
    if megabytes > 0:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def examine_all(sources: list[Source], limits: Limits, workers: int = 0, desc: str = "ingest"):
    """Yields (row, MIDI bytes or None) for every source, in order, examined by worker processes that each
    have a timeout and a memory limit: a file that hangs or balloons a parser is rejected, the run goes on."""
    workers = workers or os.cpu_count() or 1
    context = get_context("spawn")
    with ProcessPool(
        max_workers=workers, initializer=_limit_memory, initargs=(limits.memory_mb,), context=context
    ) as pool:
        futures = [pool.schedule(examine, args=(source, limits), timeout=limits.timeout_s) for source in sources]
        for source, future in zip(sources, tqdm(futures, desc=desc, unit="file")):
            try:
                yield future.result()
            except FutureTimeout:
                yield Row(path=source.path, reason=f"timed out after {limits.timeout_s:g} s (ingest.timeout_s)"), None
            except MemoryError:
                yield (
                    Row(path=source.path, reason=f"ran out of memory (limit {limits.memory_mb} MB, ingest.memory_mb)"),
                    None,
                )
            except ProcessExpired as error:
                yield Row(path=source.path, reason=f"the parser crashed (exit code {error.exitcode})"), None


class DuplicateFinder:
    """Keeps the first of identical files (same sha256) or identical music (same notes); marks later ones."""

    def __init__(self) -> None:
        self.first_by_bytes: dict[str, str] = {}
        self.first_by_music: dict[str, str] = {}

    def check(self, row: Row) -> None:
        if not row.sha256:
            return
        if row.sha256 in self.first_by_bytes:
            row.status, row.midi = "duplicate", ""
            row.reason = f"same bytes as {self.first_by_bytes[row.sha256]}"
            return
        self.first_by_bytes[row.sha256] = row.path
        if row.status != "accepted":
            return
        if row.music in self.first_by_music:
            row.status, row.midi = "duplicate", ""
            row.reason = f"same notes as {self.first_by_music[row.music]}"
            return
        self.first_by_music[row.music] = row.path


def mark_duplicates(rows: list[Row]) -> None:
    """Marks the duplicates in `rows`, in order (see DuplicateFinder)."""
    finder = DuplicateFinder()
    for row in rows:
        finder.check(row)


def run(
    source: str,
    midi_dir: Path = paths.MIDI_DIR,
    manifest_path: Path = paths.MANIFEST,
    metrics_path: Path = paths.INGEST_METRICS,
    limits: Limits = Limits(),
    limit: int = 0,
    workers: int = 0,
) -> pd.DataFrame:
    """Examines every input of `source` in parallel and writes accepted MIDI, the manifest and counts."""
    sources = list_sources(source)
    if limit:
        sources = sources[:limit]
    rows = []
    duplicates = DuplicateFinder()
    with files.atomic_dir(midi_dir) as folder:
        for row, midi in examine_all(sources, limits, workers):  # streamed: memory stays flat
            duplicates.check(row)
            if row.status == "accepted":
                files.write_bytes(folder / row.midi, midi)
            rows.append(row)
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
