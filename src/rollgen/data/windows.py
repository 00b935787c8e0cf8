"""Training archives: each split's frame sequences, their bar positions, and which piece went where and why.

An archive holds every piece's frames once (`frames`, sequence i = frames[frame_offsets[i]:frame_offsets[i+1]]),
each frame's bar position (`positions`, rollgen.music.meter), the piece names, and for the window models the
window length and target gap (`context`, `target_gap`); training and evaluation cut windows or stretches
from the frames on the fly. Article mode also stores the article's `x`/`y` arrays (split_sequences).
The frames are the images' pixels: levels with onsets from lossless images (`onsets` True), the article's
pictures in article mode (`onsets` False; rollgen.data.archive reads them as levels).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from tqdm import tqdm

from rollgen import files, paths
from rollgen.data import splits
from rollgen.data.archive import SPLITS, sounding
from rollgen.data.images import METERS_NAME, load_png
from rollgen.music import meter
from rollgen.music.roll import NUM_PITCHES
from rollgen.params import ImagesParams, WindowsParams

MODES = ("next", "article")
SPLITS_TABLE = "splits.csv"


def piece_frames(images: list[np.ndarray], valid_steps: list[int], mode: str) -> list[np.ndarray]:
    """Frame sequences (steps, pitches) of a piece. `next`: one sequence, the chunks joined back without their
    padding. `article`: each image on its own, all 106 columns, as the article."""
    if mode == "next":
        return [np.concatenate([image[:, :steps] for image, steps in zip(images, valid_steps)], axis=1).T]
    return [image.T for image in images]


def make_windows(frames: np.ndarray, context: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (n, context, pitches) and targets (n, pitches) from frames (steps, pitches), for article mode.

    `next`: frames i..i+context-1 predict frame i+context, as generation uses the model.
    `article`: they predict frame i+context+1, the article's split_sequences (it skips a frame).
    """
    if mode not in MODES:
        raise ValueError(f"windows.mode must be one of {MODES}, not '{mode}'")
    gap = 0 if mode == "next" else 1
    count = len(frames) - context - gap
    if count <= 0:
        return (
            np.zeros((0, context, frames.shape[1]), frames.dtype),
            np.zeros((0, frames.shape[1]), frames.dtype),
        )
    inputs = np.lib.stride_tricks.sliding_window_view(frames, context, axis=0)[:count].transpose(0, 2, 1)
    return np.ascontiguousarray(inputs), np.ascontiguousarray(frames[context + gap : context + gap + count])


class LoadedPiece(NamedTuple):
    """A piece read back from its images: what splitting needs to know of it, and what its archive holds."""

    info: splits.PieceInfo
    sequences: list[np.ndarray]  # frame sequences (steps, pitches): the piece's, or each image's in article mode
    positions: list[np.ndarray]  # each sequence's frames' bar positions (rollgen.music.meter)


def load_pieces(index_path: Path, mode: str, images: ImagesParams) -> list[LoadedPiece]:
    """Every piece of the images stage's index (index.csv, meters.csv beside it), in the index's order, as
    `mode` cuts it: `next` one sequence per piece, `article` one per image. Bar positions are counted on the
    images' grid (`images.steps_per_quarter`); article mode's stretched columns are mapped back to the
    `images.chunk_steps` steps each image was drawn from."""
    index = pd.read_csv(
        index_path, keep_default_na=False, dtype={"sha256": str, "piece": str, "image": str, "path": str}
    )
    images_dir = index_path.parent
    meters = meter.read_meters(images_dir / METERS_NAME, images.steps_per_quarter)
    no_meter = meter.Meter.from_steps((), images.steps_per_quarter)
    loaded = []
    for piece, chunks in tqdm(index.groupby("piece", sort=False), desc="windows", unit="piece"):
        chunks = chunks.sort_values("chunk")
        pictures = [load_png(images_dir / name) for name in chunks["image"]]
        steps = chunks["steps"].tolist()
        frames = piece_frames(pictures, steps, "next")[0]
        where = meter.frame_positions(meters.get(piece) or no_meter, len(frames))
        if mode == "article":
            # Each stretched image's columns, at the positions of the steps they were drawn from.
            sequences = piece_frames(pictures, steps, mode)
            columns = np.arange(pictures[0].shape[1]) * images.chunk_steps // pictures[0].shape[1]
            placed = [where[np.minimum(start + columns, len(frames) - 1)] for start in chunks["start_step"]]
        else:
            sequences, placed = [frames], [where]
        row = chunks.iloc[0]
        info = splits.PieceInfo(name=piece, path=row["path"], sha256=row["sha256"], roll=sounding(frames.T))
        loaded.append(LoadedPiece(info, sequences, placed))
    return loaded


def archive_arrays(chosen: list[LoadedPiece], mode: str, context: int, onsets: bool) -> dict[str, np.ndarray]:
    """The arrays of one split's archive (see the module docstring) holding the `chosen` pieces; `onsets`:
    whether their frames hold onset levels (lossless images) or are pictures without onsets (article)."""
    sequences = [sequence for piece in chosen for sequence in piece.sequences]
    arrays = {
        "frames": np.concatenate(sequences) if sequences else np.zeros((0, NUM_PITCHES), np.uint8),
        "frame_offsets": np.cumsum([0] + [len(s) for s in sequences]).astype(np.int64),
        "positions": (
            np.concatenate([where for piece in chosen for where in piece.positions]).astype(np.int16)
            if sequences
            else np.zeros((0, len(meter.POSITION_COLUMNS)), np.int16)
        ),
        "pieces": np.asarray([piece.info.name for piece in chosen], dtype=str),
        "context": np.int64(context),
        "target_gap": np.int64(0 if mode == "next" else 1),
        "onsets": np.bool_(onsets),
    }
    if mode == "article":
        windows = [make_windows(sequence, context, mode) for sequence in sequences]
        arrays["x"] = (
            np.concatenate([x for x, _ in windows]) if windows else np.zeros((0, context, NUM_PITCHES), np.uint8)
        )
        arrays["y"] = np.concatenate([y for _, y in windows]) if windows else np.zeros((0, NUM_PITCHES), np.uint8)
    return arrays


def run(
    params: WindowsParams,
    images: ImagesParams,
    index_path: Path = paths.IMAGES_INDEX,
    out_dir: Path = paths.WINDOWS_DIR,
    metrics_path: Path = paths.WINDOWS_METRICS,
) -> dict:
    """Writes train/val/test .npz archives (see the module docstring) and splits.csv, which says for every
    piece its split and why (rollgen.data.splits), into `out_dir`, replaced as a whole; windows of
    `params.steps` frames. `images`: the grid the images were drawn on (see `load_pieces`), and their mode:
    lossless images hold onsets, article images do not."""
    loaded = load_pieces(index_path, params.mode, images)
    assignments = splits.assign_splits(
        [piece.info for piece in loaded], params.split, params.val_fraction, params.test_fraction
    )
    with files.atomic_dir(out_dir) as folder:
        summary = {}
        for name in SPLITS:
            chosen = [piece for piece, assignment in zip(loaded, assignments) if assignment.split == name]
            arrays = archive_arrays(chosen, params.mode, params.steps, onsets=images.mode == "lossless")
            files.write_npz(folder / f"{name}.npz", **arrays)
            summary[name] = {"pieces": len(chosen), "frames": int(len(arrays["frames"]))}
        table = pd.DataFrame(
            [(piece.info.name, piece.info.path, a.split, a.group, a.reason) for piece, a in zip(loaded, assignments)],
            columns=["piece", "path", "split", "group", "reason"],
        )
        files.write_csv(folder / SPLITS_TABLE, table)
    summary["grouped_pieces"] = int((table["group"] != table["path"]).sum())
    files.write_json(metrics_path, summary)
    return summary
