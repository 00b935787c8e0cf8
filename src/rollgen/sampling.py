"""Turning predicted probabilities into the next frame of notes (0/1 per pitch)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MODES = ("threshold", "vanish_proof", "bernoulli")

# (probabilities (pieces, pitches), step number from 0, random generator) -> frame uint8 0/1
Sampler = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def threshold_sampler(threshold: float = 0.5) -> Sampler:
    """A pitch sounds when its probability exceeds `threshold`."""

    def sample(probabilities: np.ndarray, step: int, rng: np.random.Generator) -> np.ndarray:
        return (probabilities > threshold).astype(np.uint8)

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


def bernoulli_sampler(temperature: float = 1.0) -> Sampler:
    """Each pitch sounds with its predicted probability, sharpened (temperature < 1) or flattened (> 1)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, not {temperature}")

    def sample(probabilities: np.ndarray, step: int, rng: np.random.Generator) -> np.ndarray:
        p = np.clip(probabilities.astype(np.float64), 1e-7, 1 - 1e-7)
        logits = np.log(p) - np.log1p(-p)
        tempered = 1.0 / (1.0 + np.exp(-logits / temperature))
        return (rng.random(p.shape) < tempered).astype(np.uint8)

    return sample


def make_sampler(
    mode: str,
    threshold: float = 0.5,
    temperature: float = 1.0,
    vanish_proof: float = 0.65,
    vanish_inc: float = 1.001,
) -> Sampler:
    """The sampler for `generate.sampling`."""
    if mode == "threshold":
        return threshold_sampler(threshold)
    if mode == "vanish_proof":
        return vanish_proof_sampler(vanish_proof, vanish_inc)
    if mode == "bernoulli":
        return bernoulli_sampler(temperature)
    raise ValueError(f"generate.sampling must be one of {MODES}, not '{mode}'")
