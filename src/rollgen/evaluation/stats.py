"""Simple statistics of rolls, to compare generated music with real music."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def roll_stats(rolls: Iterable[np.ndarray]) -> dict[str, float]:
    """Over all frames of bool rolls (pitches, steps): silent_fraction (frames with no note),
    notes_per_step (note onsets per frame), mean_polyphony (sounding pitches per non-silent frame)."""
    frames = silent = onsets = sounding = 0
    for roll in rolls:
        roll = np.asarray(roll, dtype=bool)
        per_frame = roll.sum(axis=0)
        frames += roll.shape[1]
        silent += int((per_frame == 0).sum())
        sounding += int(per_frame.sum())
        started = roll & ~np.pad(roll, ((0, 0), (1, 0)))[:, :-1]
        onsets += int(started.sum())
    if frames == 0:
        return {
            "frames": 0,
            "silent_fraction": float("nan"),
            "notes_per_step": float("nan"),
            "mean_polyphony": float("nan"),
        }
    return {
        "frames": frames,
        "silent_fraction": silent / frames,
        "notes_per_step": onsets / frames,
        "mean_polyphony": sounding / (frames - silent) if frames > silent else 0.0,
    }
