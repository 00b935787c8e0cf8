"""Training examples: windows of context frames and the frame to predict, split by piece."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from rollgen import files, paths
from rollgen.images import load_png
from rollgen.roll import NUM_PITCHES

SPLITS = ("train", "val", "test")
MODES = ("next", "article")


def split_of(sha256: str, val_fraction: float, test_fraction: float) -> str:
    """The split of a piece, fixed by its content hash: a piece never moves when others come or go."""
    position = int(sha256[:16], 16) / 16**16
    if position < test_fraction:
        return "test"
    if position < test_fraction + val_fraction:
        return "val"
    return "train"


def assign_splits(hashes: list[str], val_fraction: float, test_fraction: float) -> list[str]:
    """Splits for all pieces; when a small data set leaves val or test empty, the train pieces whose
    hashes lie nearest take their place, so every split has a piece whenever there are three."""
    splits = [split_of(sha, val_fraction, test_fraction) for sha in hashes]
    for wanted in ("test", "val"):
        fraction = test_fraction if wanted == "test" else val_fraction
        if wanted not in splits and splits.count("train") > 1 and fraction > 0:
            donor = min((sha, i) for i, (sha, split) in enumerate(zip(hashes, splits)) if split == "train")[1]
            splits[donor] = wanted
    return splits


def piece_frames(images: list[np.ndarray], valid_steps: list[int], mode: str) -> list[np.ndarray]:
    """Frame sequences (steps, pitches) to cut windows from. `next`: one sequence per piece, the chunks
    joined back without their padding. `article`: each image on its own, all 106 columns, as the article."""
    if mode == "next":
        return [np.concatenate([image[:, :steps] for image, steps in zip(images, valid_steps)], axis=1).T]
    return [image.T for image in images]


def make_windows(frames: np.ndarray, context: int, mode: str = "next") -> tuple[np.ndarray, np.ndarray]:
    """Inputs (n, context, pitches) and targets (n, pitches) from frames (steps, pitches).

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


def run(
    index_path: Path = paths.IMAGES_INDEX,
    out_dir: Path = paths.WINDOWS_DIR,
    metrics_path: Path = paths.WINDOWS_METRICS,
    context: int = 9,
    mode: str = "next",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> dict:
    """Writes train/val/test .npz archives: x uint8 (n, context, 106), y uint8 (n, 106) in 0..255,
    plus each window's piece index into `pieces`, and the frame sequences the windows were cut from
    (`frames`, sequence i = frames[frame_offsets[i]:frame_offsets[i+1]]): the window of frames t..t+context-1
    predicts frame t+context+target_gap, so training can cut windows on the fly."""
    index = pd.read_csv(index_path, keep_default_na=False, dtype={"sha256": str, "piece": str, "image": str})
    images_dir = index_path.parent
    pieces = list(dict.fromkeys(index["piece"]))
    hashes = [index.loc[index["piece"] == piece, "sha256"].iloc[0] for piece in pieces]
    splits = assign_splits(hashes, val_fraction, test_fraction)
    collected: dict[str, dict[str, list]] = {split: {"x": [], "y": [], "piece": [], "frames": []} for split in SPLITS}
    names: dict[str, list[str]] = {split: [] for split in SPLITS}
    for piece, split in tqdm(list(zip(pieces, splits)), desc="windows", unit="piece"):
        chunks = index[index["piece"] == piece].sort_values("chunk")
        images = [load_png(images_dir / name) for name in chunks["image"]]
        for frames in piece_frames(images, chunks["steps"].tolist(), mode):
            x, y = make_windows(frames, context, mode)
            part = collected[split]
            part["x"].append(x)
            part["y"].append(y)
            part["piece"].append(np.full(len(x), len(names[split]), dtype=np.int32))
            part["frames"].append(frames)
        names[split].append(piece)
    summary = {}
    for split in SPLITS:
        part = collected[split]
        frames = part["frames"]
        arrays = {
            "x": np.concatenate(part["x"]) if part["x"] else np.zeros((0, context, NUM_PITCHES), np.uint8),
            "y": np.concatenate(part["y"]) if part["y"] else np.zeros((0, NUM_PITCHES), np.uint8),
            "piece": np.concatenate(part["piece"]) if part["piece"] else np.zeros(0, np.int32),
            "pieces": np.asarray(names[split], dtype=str),
            "frames": np.concatenate(frames) if frames else np.zeros((0, NUM_PITCHES), np.uint8),
            "frame_offsets": np.cumsum([0] + [len(f) for f in frames]).astype(np.int64),
            "context": np.int64(context),
            "target_gap": np.int64(0 if mode == "next" else 1),
        }
        files.write_npz(out_dir / f"{split}.npz", **arrays)
        summary[split] = {"pieces": len(names[split]), "windows": int(len(arrays["y"]))}
    files.write_json(metrics_path, summary)
    return summary


def load_split(split: str, folder: Path = paths.WINDOWS_DIR) -> dict[str, np.ndarray]:
    """One split's arrays (see `run`), loaded without pickle."""
    return files.load_npz(folder / f"{split}.npz")
