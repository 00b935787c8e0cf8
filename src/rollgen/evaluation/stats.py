"""Simple statistics of rolls, to compare generated music with real music."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from rollgen.music.roll import roll_to_notes, sounding


def roll_stats(rolls: Iterable[np.ndarray]) -> dict[str, float]:
    """Over all frames of rolls (pitches, steps) of uint8 levels (rollgen.music.roll; or bool, each run struck
    once): silent_fraction (frames with no note), notes_per_step (notes struck per frame, a re-strike counted:
    rollgen.music.roll.roll_to_notes), mean_polyphony (sounding pitches per non-silent frame)."""
    frames = silent = onsets = sounds = 0
    for roll in rolls:
        per_frame = sounding(roll).sum(axis=0)
        frames += roll.shape[1]
        silent += int((per_frame == 0).sum())
        sounds += int(per_frame.sum())
        onsets += len(roll_to_notes(roll).pitches)
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
        "mean_polyphony": sounds / (frames - silent) if frames > silent else 0.0,
    }
