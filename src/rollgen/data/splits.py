"""Train/val/test splits by piece that do not leak: pre-split folders are honoured, and copies of one work
(the same score in two formats, a near-identical or transposed roll) always land in the same split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from rollgen.errors import RollgenError

SPLITS = ("train", "val", "test")
MODES = ("auto", "folders", "groups")
# Top-level folder names (any case) that name a split, as benchmark data sets ship them.
SPLIT_FOLDERS = {"train": "train", "valid": "val", "val": "val", "validation": "val", "test": "test"}

# Copies are found by their shingles (`roll_shingles`): runs of this many consecutive onset chords.
SHINGLE_CHORDS = 3
# Pieces whose shingle sets have a Jaccard similarity at least this are copies of one work. Measured on the
# 412 Bach scores music21 ships (benchmarks/split_similarity.py), with 3 chords a shingle: bwv281.krn ~ .mxl
# 0.85, bwv366.krn ~ .mxl 1.0, and 8 pairs of other scores at 0.87..1.0, each a harmonisation Bach reused
# (their onset chords match 0.79..1.0); the most alike different harmonisations of one tune lie at 0.575
# (bwv176.6 ~ bwv280) and 0.52, and half the scores are at most 0.04 alike to any other. Each score with 2
# notes moved a tone, transposed or not, stays at >= 0.7 with its original for 97.8% of the scores (0.855
# median); 4 chords a shingle would separate no better (0.536 against 0.81) and tolerate edits less.
SIMILARITY_THRESHOLD = 0.7
# A shingle in more than this share of the pieces (and in more than COMMON_MIN_PIECES of them) says nothing
# about which pieces are copies (a cadence every chorale ends with) and only fills the similarity matrix.
COMMON_FRACTION = 0.05
COMMON_MIN_PIECES = 50
# Bound on the similarities computed at once (rows in a chunk times pieces), to bound memory.
PAIRS_PER_CHUNK = 4_000_000


@dataclass(frozen=True)
class PieceInfo:
    """What the split of one accepted piece depends on."""

    name: str  # the accepted piece's file name in data/interim/midi, e.g. "bwv281-1a2b3c4d.mid"
    path: str  # the input file relative to the source, e.g. "bach/bwv281.krn" or "train/song.mid"
    sha256: str  # content hash of the input file
    roll: np.ndarray  # bool (NUM_PITCHES, steps): the piece's piano roll, row 0 = MIDI 21


@dataclass(frozen=True)
class Assignment:
    """A piece's split, the group of copies it was placed with, and why, for a person to read."""

    split: str  # "train" | "val" | "test"
    group: str  # path of the group's first member (by name); the piece's own path when it is alone
    reason: str  # e.g. "hash of its group", "folder 'test/'", "same work as bach/bwv281.mxl"


def split_of(sha256: str, val_fraction: float, test_fraction: float) -> str:
    """The split a hash falls in: its first 16 hex digits as a position in [0, 1), test first, then val."""
    position = int(sha256[:16], 16) / 16**16
    if position < test_fraction:
        return "test"
    if position < test_fraction + val_fraction:
        return "val"
    return "train"


def folder_split(path: str) -> str | None:
    """The split named by the top-level folder of `path` ('Test/x.mid' -> 'test'), or None."""
    parts = PurePosixPath(path).parts
    return SPLIT_FOLDERS.get(parts[0].lower()) if len(parts) > 1 else None


def assign_splits(pieces: list[PieceInfo], mode: str, val_fraction: float, test_fraction: float) -> list[Assignment]:
    """Each piece's split, in the order given; the same pieces give the same splits in any order.

    `folders`: the top-level folder names the split (train/, val/ or valid/ or validation/, test/); a piece
    outside them is an error. `groups`: copies of one work are grouped (`find_groups`), and each group's split
    follows the smallest sha256 among its members, so a piece never moves when unrelated pieces come or go;
    a small data set whose val or test would be empty gets the train group with the smallest hash there.
    `auto`: folders when every piece lies in a split folder and some in train/, else groups.
    """
    if mode not in MODES:
        raise ValueError(f"splits mode must be one of {MODES}, not '{mode}'")
    order = sorted(range(len(pieces)), key=lambda i: (pieces[i].name, pieces[i].path, pieces[i].sha256))
    ordered = [pieces[i] for i in order]
    folders = [folder_split(piece.path) for piece in ordered]
    if mode == "folders" or (mode == "auto" and None not in folders and "train" in folders):
        assigned = _by_folders(ordered, folders)
    else:
        assigned = _by_groups(ordered, val_fraction, test_fraction)
    result: list[Assignment] = [None] * len(pieces)  # type: ignore[list-item]
    for position, index in enumerate(order):
        result[index] = assigned[position]
    return result


def _by_folders(pieces: list[PieceInfo], folders: list[str | None]) -> list[Assignment]:
    stray = [piece.path for piece, split in zip(pieces, folders) if split is None]
    if stray:
        others = f" (and {len(stray) - 1} more)" if len(stray) > 1 else ""
        names = ", ".join(f"{name}/" for name in SPLIT_FOLDERS)
        raise RollgenError(
            f"{stray[0]}{others}: not in a split folder; splits mode 'folders' wants every piece in one of {names}"
        )
    return [
        Assignment(split, piece.path, f"folder '{PurePosixPath(piece.path).parts[0]}/'")
        for piece, split in zip(pieces, folders)
    ]


def _by_groups(pieces: list[PieceInfo], val_fraction: float, test_fraction: float) -> list[Assignment]:
    labels, reasons = find_groups(pieces)
    first: dict[int, int] = {}  # group label -> its first member (pieces are sorted by name)
    smallest: dict[int, str] = {}  # group label -> smallest sha256 of its members
    for index, (label, piece) in enumerate(zip(labels.tolist(), pieces)):
        first.setdefault(label, index)
        smallest[label] = min(smallest.get(label, piece.sha256), piece.sha256)
    splits = {label: split_of(sha, val_fraction, test_fraction) for label, sha in smallest.items()}
    moved: dict[int, str] = {}
    for wanted, fraction in (("test", test_fraction), ("val", val_fraction)):
        train = [(sha, label) for label, sha in smallest.items() if splits[label] == "train"]
        if wanted not in splits.values() and len(train) > 1 and fraction > 0:
            donor = min(train)[1]
            splits[donor] = moved[donor] = wanted
    assignments = []
    for label, reason in zip(labels.tolist(), reasons):
        reason = reason or "hash of its group"
        if label in moved:
            reason += f"; its group moved to {moved[label]}, which was empty (smallest hash of the train groups)"
        assignments.append(Assignment(splits[label], pieces[first[label]].path, reason))
    return assignments


def find_groups(pieces: list[PieceInfo]) -> tuple[np.ndarray, list[str]]:
    """A group label per piece (copies of one work share it) and, per piece, the link that put it in its
    group ('same work as X', 'near-identical roll to X (Jaccard 0.93)'), or '' for a group's first member.

    Two pieces are linked when they are the same work (same path, suffix and case aside: bwv281.krn and
    bwv281.mxl) or their rolls are near-identical (`similar_pairs`); groups are the linked components.
    """
    count = len(pieces)
    same_work: list[tuple[int, int]] = []
    first_of_work: dict[str, int] = {}
    for index, piece in enumerate(pieces):
        work = PurePosixPath(piece.path).with_suffix("").as_posix().lower()
        if work in first_of_work:
            same_work.append((first_of_work[work], index))
        first_of_work.setdefault(work, index)
    rows, cols, similarity = similar_pairs([roll_shingles(piece.roll) for piece in pieces])
    work_rows = np.array([a for a, _ in same_work], dtype=np.int64)
    work_cols = np.array([b for _, b in same_work], dtype=np.int64)
    graph = sparse.coo_matrix(
        (np.ones(len(work_rows) + len(rows)), (np.concatenate([work_rows, rows]), np.concatenate([work_cols, cols]))),
        shape=(count, count),
    )
    _, labels = csgraph.connected_components(graph, directed=False)
    # Each piece but the first of its group is explained by its best link to another piece, which is
    # necessarily in its group: the same work first, else the most similar roll, ties to the first by name.
    best: dict[int, tuple] = {}
    for a, b in same_work:
        for index, other in ((a, b), (b, a)):
            best[index] = min(best.get(index, (2.0,)), (0.0, other, f"same work as {pieces[other].path}"))
    for a, b, value in zip(rows.tolist(), cols.tolist(), similarity.tolist()):
        for index, other in ((a, b), (b, a)):
            link = (1.0 - value, other, f"near-identical roll to {pieces[other].path} (Jaccard {value:.2f})")
            best[index] = min(best.get(index, (2.0,)), link)
    seen: set[int] = set()
    reasons = []
    for index, label in enumerate(labels.tolist()):
        reasons.append(best[index][2] if label in seen else "")
        seen.add(label)
    return labels, reasons


def onset_chords(roll: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The onset chords of a bool roll (pitches, steps), in time order, described the same for the roll
    transposed: per chord a 64-bit hash of its pitches as intervals above the lowest one (all that sound
    where some note starts, held notes too), and the motion in semitones of that lowest pitch from the
    previous chord's (0 for the first)."""
    roll = np.asarray(roll, dtype=bool)
    starts = roll & ~np.pad(roll, ((0, 0), (1, 0)))[:, :-1]
    chords = roll[:, np.flatnonzero(starts.any(axis=0))]
    count = chords.shape[1]
    if not count:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    bass = chords.argmax(axis=0)
    pitch_rows, chord_index = np.nonzero(chords)
    intervals = np.zeros((count, 128), dtype=bool)
    intervals[chord_index, pitch_rows - bass[chord_index]] = True
    words = np.packbits(intervals, axis=1).view("<u8")  # (chords, 2): the interval set as 128 bits
    return _mix(_mix(words[:, 0]) ^ words[:, 1]), np.diff(bass, prepend=bass[0]).astype(np.int64)


def roll_shingles(roll: np.ndarray, chords: int = SHINGLE_CHORDS) -> np.ndarray:
    """The distinct shingles of a roll, sorted 64-bit hashes: every run of `chords` consecutive onset chords
    (`onset_chords`), or the whole piece when it has fewer, each chord's intervals and, from the second on,
    its bass motion. A transposed copy has the same shingles, and a changed note only changes the shingles
    that hold a chord it sounds in (or, in the bass, the chord after)."""
    shapes, motions = onset_chords(roll)
    if not len(shapes):
        return shapes
    width = min(chords, len(shapes))
    count = len(shapes) - width + 1
    moves = motions.view(np.uint64)  # the bits of each signed motion
    shingle = _mix(shapes[:count])
    for offset in range(1, width):
        shingle = _mix(_mix(shingle ^ shapes[offset : offset + count]) ^ moves[offset : offset + count])
    return np.unique(shingle)


def similar_pairs(
    shingle_sets: list[np.ndarray], threshold: float = SIMILARITY_THRESHOLD
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs (i, j, Jaccard similarity), i < j, of shingle sets at least `threshold` alike.

    Exact Jaccard over the shingles left once those in more than COMMON_FRACTION of the sets (and more than
    COMMON_MIN_PIECES) are dropped; an empty set is alike to none. The intersections come from a sparse
    product, a chunk of rows at a time, so memory stays bounded for tens of thousands of pieces.
    """
    count = len(shingle_sets)
    lengths = np.array([len(shingles) for shingles in shingle_sets], dtype=np.int64)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    if count > 1 and lengths.sum():
        owners = np.repeat(np.arange(count), lengths)
        _, columns = np.unique(np.concatenate(shingle_sets), return_inverse=True)
        columns = columns.reshape(-1)
        frequency = np.bincount(columns)[columns]
        informative = frequency <= max(COMMON_MIN_PIECES, COMMON_FRACTION * count)
        sizes = np.bincount(owners[informative], minlength=count)
        shared = informative & (frequency > 1)  # a shingle of one set only counts in its size
        _, shared_columns = np.unique(columns[shared], return_inverse=True)
        matrix = sparse.csr_matrix(
            (np.ones(int(shared.sum()), np.int32), (owners[shared], shared_columns.reshape(-1))),
            shape=(count, int(shared_columns.max(initial=-1)) + 1),
        )
        transposed = matrix.T.tocsr()
        chunk = max(1, PAIRS_PER_CHUNK // count)
        for start in range(0, count, chunk):
            common = (matrix[start : start + chunk] @ transposed).tocoo()
            rows, cols, together = common.row.astype(np.int64) + start, common.col.astype(np.int64), common.data
            upper = cols > rows
            rows, cols, together = rows[upper], cols[upper], together[upper]
            similarity = together / (sizes[rows] + sizes[cols] - together)
            alike = similarity >= threshold
            found.append((rows[alike], cols[alike], similarity[alike]))
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    rows, cols, similarity = (np.concatenate(parts) for parts in zip(*found))
    order = np.lexsort((cols, rows))
    return rows[order], cols[order], similarity[order]


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 values: a bijection that scatters every input bit over the output."""
    with np.errstate(over="ignore"):
        values = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return values ^ (values >> np.uint64(31))
