"""Ingestion: every input file becomes an accepted MIDI piece or a manifest row saying why not."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from pebble import ProcessExpired, ProcessPool
from tqdm import tqdm

from rollgen import files, paths
from rollgen.data.limits import WALL_FACTOR, ProcessorTimeExceeded, limit_memory, processor_time_limit
from rollgen.errors import RollgenError
from rollgen.music.corpus import MUSIC21_PREFIX, SCORE_SUFFIXES, music21_corpus_files, score_to_midi
from rollgen.music.midi import DRUMS, OFF_BEFORE_ON, ZERO_LENGTH, MidiError, Piece, notes_fingerprint, read_midi
from rollgen.music.roll import (
    MERGED_BY_GRID,
    MERGED_IN_FILE,
    NOT_SAMPLED,
    OUT_OF_RANGE,
    PITCH_RANGE,
    TOO_SHORT,
    max_steps_for,
    piece_to_roll,
)
from rollgen.params import ImagesParams, IngestParams

MIDI_SUFFIXES = frozenset({".mid", ".midi", ".kar", ".rmi"})
# Every note read from a file is drawn (struck on the roll at a step of its own) or counted in one of these
# columns, by the reasons rollgen.music.midi and rollgen.music.roll give (see rollgen.music.roll's docstring for
# merged notes).
NOTE_COLUMNS = {
    "out_of_range": (OUT_OF_RANGE,),
    "drums": (DRUMS,),
    "zero_length": (ZERO_LENGTH, OFF_BEFORE_ON),
    "too_short": (TOO_SHORT, NOT_SAMPLED),  # images.grid: floor and sample only
    "merged_by_grid": (MERGED_BY_GRID,),
    "merged_in_file": (MERGED_IN_FILE,),
}
COLUMN_OF_REASON = {reason: column for column, reasons in NOTE_COLUMNS.items() for reason in reasons}
# The notes `lost_share` counts: what the file or the grid loses. Notes merged in the file are left out of
# it: they are unisons (two voices on one note, 5.7% of the Bach chorales' notes), which no roll shows at any
# resolution; a re-struck note is drawn.
LOST_COLUMNS = ("zero_length", "too_short", "merged_by_grid")
LOST_SHARE_FLAG = 0.01  # `rollgen check` flags a file that loses more of its in-range notes
MANIFEST_COLUMNS = [
    *("path", "sha256", "status", "reason", "midi", "notes_read", "notes_drawn", "lost_share"),
    *("steps", "quarters", "seconds", *NOTE_COLUMNS, "dropped_reasons", "repairs"),
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
    notes_read: int = 0  # notes in the file: every note-on of velocity > 0, drums and zero lengths too
    notes_drawn: int = 0  # runs of the roll: the notes image2midi reads back
    lost_share: float = 0.0  # LOST_COLUMNS over the notes in range (in_range), 0 when there are none
    steps: int = 0
    quarters: float = 0.0
    seconds: float = 0.0
    out_of_range: int = 0
    drums: int = 0
    zero_length: int = 0
    too_short: int = 0
    merged_by_grid: int = 0
    merged_in_file: int = 0
    dropped_reasons: str = ""  # every reason a note was not drawn, with its count, as rollgen.music.midi/roll name it
    repairs: str = ""
    music: str = ""

    @property
    def in_range(self) -> int:
        """Notes of the file that a roll can hold: pitches 21..126, drums unless ingest.include_drums."""
        return self.notes_read - self.out_of_range - self.drums

    @property
    def lost(self) -> int:
        return sum(getattr(self, column) for column in LOST_COLUMNS)


def list_sources(source: str) -> list[Source]:
    """The inputs of `ingest.source`: 'music21:COMPOSER' or a folder searched recursively, sorted by path.
    Hidden files and folders (.gitkeep, .DS_Store, .git/, a killed write's .NAME.XXXXXXXX.tmp) are no inputs."""
    if source.startswith(MUSIC21_PREFIX):
        try:
            root, scores = music21_corpus_files(source[len(MUSIC21_PREFIX) :])
        except ValueError as error:
            raise RollgenError(f"ingest.source '{source}': {error}") from None
        return [Source(path.relative_to(root).as_posix(), str(path)) for path in scores]
    folder = Path(source)
    if not folder.is_dir():
        raise RollgenError(f"ingest.source '{source}' is neither 'music21:COMPOSER' nor a folder")
    found = []
    for directory, subdirectories, filenames in os.walk(folder):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        # A folder named like a MIDI file is listed so it is rejected on record, not skipped unseen.
        names = filenames + [name for name in subdirectories if Path(name).suffix.lower() in MIDI_SUFFIXES]
        for name in names:
            if not name.startswith("."):
                path = Path(directory) / name
                found.append(Source(path.relative_to(folder).as_posix(), str(path)))
    return sorted(found, key=lambda item: item.path)


def midi_name(path: str, sha256: str) -> str:
    """A portable, unique file name for an accepted piece: its cleaned-up stem and a hash prefix."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem).strip("._")[:60] or "piece"
    return f"{stem}-{sha256[:8]}.mid"


def examine(source: Source, params: IngestParams, images: ImagesParams) -> tuple[Row, bytes | None]:
    """The manifest row for one input and, when accepted, its MIDI bytes. Bad input is a row, not a raise.

    What a usable piece may be: the `ingest` params, and the grid the images stage draws on
    (`images.steps_per_quarter`, `images.grid`), so the manifest counts its steps and notes. One length rule
    for the whole pipeline: a piece may last `params.max_quarters` quarter notes and `params.max_seconds`
    seconds; the step limit of its roll follows (rollgen.music.roll.max_steps_for), here and in the images
    stage, so nothing accepted here can be too long to draw there.
    """
    row = Row(path=source.path)
    midi = read_input(Path(source.file), row)
    if midi is None:
        return row, None
    try:
        piece = read_midi(
            midi, include_drums=params.include_drums, max_quarters=params.max_quarters, parser=params.parser
        )
        if piece.seconds > params.max_seconds:
            raise MidiError(f"too long: {piece.seconds:.0f} seconds (limit {params.max_seconds:.0f})")
        max_steps = max_steps_for(params.max_quarters, images.steps_per_quarter)
        roll, dropped = piece_to_roll(piece, images.steps_per_quarter, max_steps=max_steps, grid=images.grid)
    except MidiError as error:
        row.reason = str(error)
        return row, None
    count_notes(row, piece, roll, dropped)
    if not roll.any():
        row.reason = f"no notes to draw ({row.dropped_reasons})" if row.in_range else f"no notes in range {PITCH_RANGE}"
        return row, None
    row.status, row.midi = "accepted", midi_name(source.path, row.sha256)
    return row, midi


def read_input(file: Path, row: Row) -> bytes | None:
    """The file's bytes as MIDI (a score converted by music21), its hash in `row`; None with the reason in
    `row` when it is no MIDI or score file or cannot be read or converted."""
    if file.is_dir():
        row.reason = "is a directory, not a file"
        return None
    if file.exists() and not file.is_file():  # reading a pipe would wait for a writer that never comes
        row.reason = "not a regular file (a pipe, socket or device)"
        return None
    try:
        data = file.read_bytes()
    except OSError as error:
        row.reason = f"cannot read: {error.strerror or error}"
        return None
    row.sha256 = files.sha256_bytes(data)
    suffix = file.suffix.lower()
    if data[:4] in (b"MThd", b"RIFF") or suffix in MIDI_SUFFIXES:
        return data
    if suffix not in SCORE_SUFFIXES:
        row.reason = f"not a MIDI or score file (suffix '{file.suffix}')"
        return None
    try:
        return score_to_midi(file)
    except (MemoryError, SystemError) as error:
        # Under the worker's memory limit music21 fails either way; the pool reports it with the limit.
        raise MemoryError(str(error)) from error
    except Exception as error:  # music21 raises many exception types; each is a reason on record
        if "memory" in str(error).lower():
            raise MemoryError(str(error)) from error
        row.reason = f"music21 cannot convert it: {type(error).__name__}: {error}".strip()
        return None


def count_notes(row: Row, piece: Piece, roll: np.ndarray, dropped: Counter) -> None:
    """Fills `row`'s counts: every note of `piece` drawn in `roll` or in the column of the reason it was not
    (`dropped` by the grid, `piece.dropped` by the reader), the piece's length and its notes' fingerprint."""
    row.notes_read = len(piece.pitches) + piece.dropped.total()
    dropped = Counter(dropped)
    dropped.update(piece.dropped)
    row.notes_drawn = row.notes_read - dropped.total()
    for reason, count in dropped.items():
        column = COLUMN_OF_REASON[reason]  # a reason without a column is a bug: every note is counted once
        setattr(row, column, getattr(row, column) + count)
    row.lost_share = round(row.lost / row.in_range, 6) if row.in_range else 0.0
    row.steps = int(roll.shape[1])
    row.quarters = round(float(piece.length_quarters), 4)
    row.seconds = round(piece.seconds, 3)
    row.dropped_reasons = "; ".join(f"{reason}: {count}" for reason, count in sorted(dropped.items()))
    row.repairs = "; ".join(f"{reason}: {count}" for reason, count in sorted(piece.repaired.items()))
    row.music = notes_fingerprint(piece)


def start_worker(memory_mb: int) -> None:
    """A worker's start: the memory cap (limits.limit_memory), set once this module and its parsers are loaded."""
    limit_memory(memory_mb)


def examine_within_limits(source: Source, params: IngestParams, images: ImagesParams) -> tuple[Row, bytes | None]:
    """`examine`, stopped once the file has cost `params.timeout_s` seconds of processor time (not of the
    clock: see rollgen.data.limits), with the reason on its row."""
    try:
        with processor_time_limit(params.timeout_s):
            return examine(source, params, images)
    except ProcessorTimeExceeded:
        reason = f"took more than {params.timeout_s:g} s of processor time (ingest.timeout_s)"
        return Row(path=source.path, reason=reason), None


def examine_all(
    sources: list[Source], params: IngestParams, images: ImagesParams
) -> Iterator[tuple[Row, bytes | None]]:
    """Yields (row, MIDI bytes or None) for every source, in order, examined (see `examine`) by
    `params.workers` processes (0: one per core) that each limit a file's processor time and memory: a file
    that hangs or balloons a parser is rejected, the run goes on. A worker that waits without computing is
    stopped by the clock, at `WALL_FACTOR` times the processor limit."""
    workers = params.workers or os.cpu_count() or 1
    context = get_context("spawn")
    wall_s = params.timeout_s * WALL_FACTOR
    with ProcessPool(
        max_workers=workers, initializer=start_worker, initargs=(params.memory_mb,), context=context
    ) as pool:
        schedule = partial(pool.schedule, examine_within_limits, timeout=wall_s)
        futures = [schedule(args=(source, params, images)) for source in sources]
        for source, future in zip(sources, tqdm(futures, desc="ingest", unit="file")):
            try:
                yield future.result()
            except FutureTimeout:
                reason = f"did not finish in {wall_s:g} s of wall-clock time ({WALL_FACTOR} × ingest.timeout_s)"
                yield Row(path=source.path, reason=reason), None
            except MemoryError:
                yield (
                    Row(path=source.path, reason=f"ran out of memory (limit {params.memory_mb} MB, ingest.memory_mb)"),
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
    params: IngestParams,
    images: ImagesParams,
    midi_dir: Path = paths.MIDI_DIR,
    manifest_path: Path = paths.MANIFEST,
    metrics_path: Path = paths.INGEST_METRICS,
) -> pd.DataFrame:
    """Examines every input of `params.source` (the first `params.limit`, if not 0) in parallel (see
    `examine_all`) and writes accepted MIDI, the manifest and counts."""
    sources = list_sources(params.source)
    if params.limit:
        sources = sources[: params.limit]
    rows = []
    duplicates = DuplicateFinder()
    with files.atomic_dir(midi_dir) as folder:
        for row, midi in examine_all(sources, params, images):  # streamed: memory stays flat
            duplicates.check(row)
            if row.status == "accepted":
                files.write_bytes(folder / row.midi, midi)
            rows.append(row)
    manifest = pd.DataFrame([asdict(row) for row in rows], columns=[*MANIFEST_COLUMNS, "music"])
    files.write_csv(manifest_path, manifest.drop(columns="music"))
    files.write_json(metrics_path, summarize(manifest))
    if not (manifest["status"] == "accepted").any():
        raise RollgenError(f"none of {len(manifest)} inputs from '{params.source}' is usable; see {manifest_path}")
    return manifest


def summarize(manifest: pd.DataFrame) -> dict:
    """Counts by status and by rejection reason, and the notes of the accepted pieces, for metrics/ingest.json.

    Notes: `notes_read` = `notes_drawn` + every count of `notes_lost_by_reason` (the manifest's
    NOTE_COLUMNS); `lost_share_in_range` is what the file or the grid loses (LOST_COLUMNS) over the notes
    in range (`notes_in_range`: read, less out of range and drums); `merged_in_file_share_in_range` is
    what no roll can show (unisons: two voices on one note). Those two and the drawn share make 1.
    """
    by_status = manifest["status"].value_counts()
    rejected = manifest.loc[manifest["status"] == "rejected", "reason"]
    accepted = manifest[manifest["status"] == "accepted"]
    lost_by_reason = {column: int(accepted[column].sum()) for column in NOTE_COLUMNS}
    in_range = int(accepted["notes_read"].sum()) - lost_by_reason["out_of_range"] - lost_by_reason["drums"]
    lost = sum(lost_by_reason[column] for column in LOST_COLUMNS)
    return {
        "files": int(len(manifest)),
        "accepted": int(by_status.get("accepted", 0)),
        "rejected": int(by_status.get("rejected", 0)),
        "duplicate": int(by_status.get("duplicate", 0)),
        "rejected_by_reason": {reason: int(count) for reason, count in rejected.value_counts().sort_index().items()},
        "notes_read": int(accepted["notes_read"].sum()),
        "notes_in_range": in_range,
        "notes_drawn": int(accepted["notes_drawn"].sum()),
        "notes_lost_by_reason": lost_by_reason,
        "lost_share_in_range": round(lost / in_range, 6) if in_range else 0.0,
        "merged_in_file_share_in_range": round(lost_by_reason["merged_in_file"] / in_range, 6) if in_range else 0.0,
        "files_losing_over_1_percent": int((accepted["lost_share"] > LOST_SHARE_FLAG).sum()),
    }
