"""The archive format: one split's frame sequences and their bar positions, in a NumPy .npz file.

An archive holds every piece's frames once (`frames`, sequence i = frames[frame_offsets[i]:frame_offsets[i+1]]),
each frame's bar position (`positions`, rollgen.music.meter), the piece names, and for the window models the
window length and target gap (`context`, `target_gap`); training and evaluation cut windows or stretches
from the frames on the fly. Reading one needs numpy alone (no images, splits or pandas).

`onsets` says whether the frames hold onsets: True where they are the levels of lossless images
(rollgen.music.roll: 0, HELD, ONSET); False in article mode, whose frames are the article's stretched
pictures (0/255 and grays), and missing in an archive written before onsets were kept (0/255). Reading one
gives levels either way: frames without onsets have each run of sounding frames of a pitch struck at its
first frame, sequence by sequence (`strike_sequences`), as the article's image2midi reads runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rollgen import files, paths
from rollgen.music.roll import ONSET, sounding, strike_runs  # sounding re-exported: frames are read here

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sequences:
    """One split's frame sequences as the windows stage archives them (a piece's, or an image's in article
    mode); frames are uint8 levels over the 106 pitches (rollgen.music.roll: 0, HELD, ONSET; `sounding` and
    `onsets` read them)."""

    frames: np.ndarray  # uint8 (frames, pitches) levels
    offsets: np.ndarray  # int64 (sequences + 1): sequence i = frames[offsets[i]:offsets[i + 1]]
    positions: np.ndarray  # int16 (frames, 4): bar position of each frame (rollgen.music.meter.POSITION_COLUMNS)
    names: np.ndarray  # str (pieces,)
    context: int = 9  # frames a window model reads
    target_gap: int = 0  # 1 in article mode: a window predicts the frame after its next one
    # The stored pixels where they hold no onsets (article mode's LANCZOS grays, old archives): what the window
    # models read, so article mode trains on exactly the article's values; None where the frames are the pixels.
    pixels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def brightness(self) -> np.ndarray:
        """uint8 (frames, pitches): how bright each cell's picture is without its onsets, as the window models
        read a frame (divided by 255): the stored pixels (grays in article mode), or 0/255 for what sounds."""
        if self.pixels is not None:
            return self.pixels
        return np.where(sounding(self.frames), np.uint8(255), np.uint8(0))

    def sequence(self, number: int) -> np.ndarray:
        """Frames (steps, pitches) of sequence `number`."""
        return self.frames[self.offsets[number] : self.offsets[number + 1]]

    def previous_frames(self) -> np.ndarray:
        """For every frame, the frame `target_gap` + 1 before it in its sequence, silence before the start."""
        back = self.target_gap + 1
        previous = np.zeros_like(self.frames)
        for start, end in zip(self.offsets[:-1], self.offsets[1:]):
            previous[start + back : end] = self.frames[start : max(start, end - back)]
        return previous


def load_sequences(split: str, folder: Path = paths.WINDOWS_DIR) -> Sequences:
    """One split's archive (see the module docstring), loaded without pickle."""
    return read_sequences(Path(folder) / f"{split}.npz")


def read_sequences(path: Path) -> Sequences:
    """The archive at `path`, loaded without pickle, its frames as levels (see the module docstring)."""
    archive = files.load_npz(path)
    frames, pixels = archive["frames"], None
    if not bool(archive.get("onsets", False)):
        frames, pixels = strike_sequences(frames, archive["frame_offsets"]), frames
    return Sequences(
        frames=frames,
        pixels=pixels,
        offsets=archive["frame_offsets"],
        positions=archive["positions"],
        names=archive["pieces"],
        context=int(archive["context"]),
        target_gap=int(archive["target_gap"]),
    )


def strike_sequences(frames: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """uint8 levels of frames (steps, pitches) without onsets (0/255 or grays): each run of sounding frames of a
    pitch struck at its first frame, no run going on from one sequence (`offsets`) into the next."""
    levels = strike_runs(frames, time_axis=0)
    firsts = offsets[:-1][offsets[:-1] < offsets[1:]]  # each non-empty sequence's first frame
    levels[firsts] = np.where(sounding(frames[firsts]), ONSET, 0)
    return levels
