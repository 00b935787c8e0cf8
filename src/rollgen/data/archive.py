"""The archive format: one split's frame sequences and their bar positions, in a NumPy .npz file.

An archive holds every piece's frames once (`frames`, sequence i = frames[frame_offsets[i]:frame_offsets[i+1]]),
each frame's bar position (`positions`, rollgen.music.meter), the piece names, and for the window models the
window length and target gap (`context`, `target_gap`); training and evaluation cut windows or stretches
from the frames on the fly. Reading one needs numpy alone (no images, splits or pandas).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rollgen import files, paths
from rollgen.music.roll import sounding  # noqa: F401  (re-exported: frames are read where archives are)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sequences:
    """One split's frame sequences as the windows stage archives them (a piece's, or an image's in article
    mode); frames are uint8 0/255 over the 106 pitches (`sounding` reads them)."""

    frames: np.ndarray  # uint8 (frames, pitches)
    offsets: np.ndarray  # int64 (sequences + 1): sequence i = frames[offsets[i]:offsets[i + 1]]
    positions: np.ndarray  # int16 (frames, 4): bar position of each frame (rollgen.music.meter.POSITION_COLUMNS)
    names: np.ndarray  # str (pieces,)
    context: int = 9  # frames a window model reads
    target_gap: int = 0  # 1 in article mode: a window predicts the frame after its next one

    def __len__(self) -> int:
        return len(self.offsets) - 1

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
    """The archive at `path`, loaded without pickle."""
    archive = files.load_npz(path)
    return Sequences(
        frames=archive["frames"],
        offsets=archive["frame_offsets"],
        positions=archive["positions"],
        names=archive["pieces"],
        context=int(archive["context"]),
        target_gap=int(archive["target_gap"]),
    )
