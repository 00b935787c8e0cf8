"""Turning predicted probabilities into the next frame of notes (0/1 per pitch)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MODES = ("threshold", "vanish_proof", "bernoulli")

# (probabilities (pieces, pitches), step number from 0, random generator) -> frame uint8 0/1
Sampler = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def check_caps(max_notes: int, min_notes: int) -> None:
    """Raises ValueError for caps that cannot hold: negative, or a floor above the ceiling."""
    if max_notes < 0 or min_notes < 0:
        raise ValueError(f"note caps must be 0 (off) or positive, not max_notes {max_notes}, min_notes {min_notes}")
    if max_notes and min_notes > max_notes:
        raise ValueError(f"generate.min_notes ({min_notes}) is above generate.max_notes ({max_notes})")


def limit_notes(frame: np.ndarray, probabilities: np.ndarray, max_notes: int = 0, min_notes: int = 0) -> np.ndarray:
    """The frame (pieces, pitches) with at most `max_notes` and at least `min_notes` sounding per piece (0 = no cap).

    Too many: the `max_notes` most probable of the sounding pitches stay. Too few: the most probable silent
    pitches join until `min_notes` sound. Whole batch at once, no loop over pieces.
    """
    check_caps(max_notes, min_notes)
    sounding = np.asarray(frame) > 0
    pitches = sounding.shape[1]
    p = np.asarray(probabilities, dtype=np.float64)
    if max_notes and max_notes < pitches:
        # Silent pitches rank below every sounding one, so a top-k over the scores keeps sounding pitches only.
        scores = np.where(sounding, p, -1.0)
        top = np.argpartition(-scores, max_notes - 1, axis=1)[:, :max_notes]
        keep = np.zeros_like(sounding)
        np.put_along_axis(keep, top, True, axis=1)
        sounding &= keep
    if min_notes:
        # Sounding pitches rank above every silent one (p <= 1 < 2 + p), so they always stay in the top-k.
        count = min(min_notes, pitches)
        scores = np.where(sounding, 2.0 + p, p)
        top = np.argpartition(-scores, count - 1, axis=1)[:, :count]
        np.put_along_axis(sounding, top, True, axis=1)
    return sounding.astype(np.uint8)


def threshold_sampler(threshold: float = 0.5, max_notes: int = 0, min_notes: int = 0) -> Sampler:
    """A pitch sounds when its probability exceeds `threshold` (then the note caps, see `limit_notes`)."""
    check_caps(max_notes, min_notes)

    def sample(probabilities: np.ndarray, step: int, rng: np.random.Generator) -> np.ndarray:
        return limit_notes(probabilities > threshold, probabilities, max_notes, min_notes)

    return sample


def vanish_proof_sampler(offset: float = 0.65, growth: float = 1.001) -> Sampler:
    """The article's loop, exactly: add `offset` (x `growth` after every step) and cast with astype(uint8).

    The cast floors, so a pitch sounds when p + offset >= 1: a threshold of 1 - 0.65 * 1.001**step that
    falls every step (0.35 at first; every pitch sounds from step 431 on). Without the offset the cast
    turns any p < 1 into silence, which is why the article's first loop stayed silent.
    """
    state = {"offset": offset}

    def sample(probabilities: np.ndarray, step: int, rng: np.random.Generator) -> np.ndarray:
        # float32 + Python float stays float32 in NumPy, as in the article's Keras output.
        frame = (probabilities.astype(np.float32) + np.float32(state["offset"])).astype(np.uint8)
        state["offset"] *= growth
        return frame

    return sample


def bernoulli_sampler(temperature: float = 1.0, max_notes: int = 0, min_notes: int = 0) -> Sampler:
    """Each pitch sounds with its predicted probability, sharpened (temperature < 1) or flattened (> 1);
    then the note caps (see `limit_notes`) rank the pitches by that tempered probability."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, not {temperature}")
    check_caps(max_notes, min_notes)

    def sample(probabilities: np.ndarray, step: int, rng: np.random.Generator) -> np.ndarray:
        p = np.clip(probabilities.astype(np.float64), 1e-7, 1 - 1e-7)
        logits = np.log(p) - np.log1p(-p)
        tempered = 1.0 / (1.0 + np.exp(-logits / temperature))
        return limit_notes(rng.random(p.shape) < tempered, tempered, max_notes, min_notes)

    return sample


def make_sampler(
    mode: str,
    threshold: float = 0.5,
    temperature: float = 1.0,
    vanish_proof: float = 0.65,
    vanish_inc: float = 1.001,
    max_notes: int = 0,
    min_notes: int = 0,
) -> Sampler:
    """The sampler for `generate.sampling`. The note caps (0 = off) apply to `threshold` and `bernoulli`;
    `vanish_proof` ignores them, since it reproduces the article's loop and nothing else."""
    if mode == "threshold":
        return threshold_sampler(threshold, max_notes, min_notes)
    if mode == "vanish_proof":
        return vanish_proof_sampler(vanish_proof, vanish_inc)
    if mode == "bernoulli":
        return bernoulli_sampler(temperature, max_notes, min_notes)
    raise ValueError(f"generate.sampling must be one of {MODES}, not '{mode}'")
