"""Small frame archives in the windows stage's format (rollgen.data.windows), for tests that train, score or
generate without running the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rollgen import files
from rollgen.data.archive import Sequences
from rollgen.music import meter
from rollgen.music.roll import HELD, NUM_PITCHES, ONSET, strike_runs
from tests.defaults import STEPS_PER_QUARTER


def random_pieces(count: int, steps: int | list[int], seed: int = 0, pitches: int = NUM_PITCHES) -> list[np.ndarray]:
    """`count` pieces of random sustained notes: uint8 frames (steps, pitches) of 0/255, as the archives hold."""
    rng = np.random.default_rng(seed)
    lengths = [steps] * count if isinstance(steps, int) else list(steps)
    pieces = []
    for length in lengths:
        frames = np.zeros((length, pitches), np.uint8)
        for _ in range(max(1, length // 2)):
            pitch, start = rng.integers(pitches // 4, 3 * pitches // 4), rng.integers(0, max(1, length - 4))
            frames[start : start + rng.integers(1, 8), pitch] = 255
        pieces.append(frames)
    return pieces


def with_restrikes(pieces: list[np.ndarray], share: float = 0.3, seed: int = 0) -> list[np.ndarray]:
    """The pieces (0/255 or bool frames (steps, pitches)) as uint8 levels (rollgen.music.roll): each run struck at
    its first step, and about `share` of the held cells struck again, as repeated notes are."""
    rng = np.random.default_rng(seed)
    levels = [strike_runs(piece, time_axis=0) for piece in pieces]
    return [np.where((piece == HELD) & (rng.random(piece.shape) < share), ONSET, piece).astype(np.uint8)
            for piece in levels]  # fmt: skip


def sequences(pieces: list[np.ndarray], context: int = 9, target_gap: int = 0) -> Sequences:
    """The pieces as one split's Sequences, each in 4/4 from a bar line."""
    positions = [meter.default_positions(len(piece), STEPS_PER_QUARTER) for piece in pieces]
    return Sequences(
        frames=np.concatenate(pieces) if pieces else np.zeros((0, NUM_PITCHES), np.uint8),
        offsets=np.cumsum([0] + [len(piece) for piece in pieces]).astype(np.int64),
        positions=np.concatenate(positions).astype(np.int16) if pieces else np.zeros((0, 4), np.int16),
        names=np.array([f"piece{number}" for number in range(len(pieces))]),
        context=context,
        target_gap=target_gap,
    )


def write_archive(path: Path, data: Sequences, onsets: bool | None = None) -> None:
    """Writes `data` as the windows stage writes a split's archive; `onsets`: its flag (True: the frames are
    levels with onsets), None: none, as an archive written before onsets were kept (frames 0/255)."""
    flag = {} if onsets is None else {"onsets": np.bool_(onsets)}
    files.write_npz(
        path,
        **flag,
        frames=data.frames,
        frame_offsets=data.offsets,
        positions=data.positions,
        pieces=data.names,
        context=np.int64(data.context),
        target_gap=np.int64(data.target_gap),
    )


def write_windows(folder: Path, pieces: int = 6, steps: int = 80, seed: int = 0) -> dict[str, Sequences]:
    """train/val/test archives of random pieces as levels, some held notes struck again, split 4/1/1 (or
    (n - 2)/1/1) in `folder`; gives them."""
    made = with_restrikes(random_pieces(pieces, steps, seed), seed=seed)
    splits = {"train": made[:-2], "val": made[-2:-1], "test": made[-1:]}
    written = {}
    for split, chosen in splits.items():
        written[split] = sequences(chosen)
        write_archive(Path(folder) / f"{split}.npz", written[split], onsets=True)
    return written
