"""Turning predicted probabilities into the next frame of notes (0/1 per pitch), and, for a model that predicts
onsets, into whether each note that goes on sounding is struck again."""

from __future__ import annotations

import numpy as np

MODES = ("threshold", "vanish_proof", "bernoulli")


class Sampler:
    """Turns a model's output into the next frame, seeded by the generator it is given.

    Factorised models: `sampler(probabilities, step, rng)` gives the frame (pieces, pitches) of uint8 0/1.
    Autoregressive (NADE) models decide pitch by pitch inside the model: `levels(shape, step, rng)` gives,
    per pitch, the level its (tempered) conditional probability must exceed, with `temperature` applied.
    A model with an onset head strikes a held pitch again where its tempered onset probability exceeds
    `onset_levels(shape, step, rng)`, drawn right after the step's `levels`.
    """

    temperature = 1.0  # untempered: what a sampler that draws no Bernoulli leaves the model's probabilities
    onset_temperature = 1.0  # ... and the onset head's

    def __call__(self, probabilities: np.ndarray, step: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def levels(self, shape: tuple[int, int], step: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def onset_levels(self, shape: tuple[int, int], step: int, rng: np.random.Generator) -> np.ndarray:
        """Per pitch, the level its onset probability must exceed: one half (the likelier choice), unless the
        sampler draws (Bernoulli)."""
        return np.full(shape, 0.5, np.float32)


def check_autoregressive_caps(max_notes: int, min_notes: int) -> None:
    """Raises ValueError for note caps, which a model that draws each chord pitch by pitch cannot honour."""
    if max_notes or min_notes:
        raise ValueError(
            "generate.max_notes/min_notes apply to factorised models; a NADE model (nade, convnade, rnnnade,"
            " pitchnade, transformernade) draws whole chords pitch by pitch (set both to 0)"
        )


def check_caps(max_notes: int, min_notes: int) -> None:
    """Raises ValueError for caps that cannot hold: negative, or a floor above the ceiling."""
    if max_notes < 0 or min_notes < 0:
        raise ValueError(f"note caps must be 0 (off) or positive, not max_notes {max_notes}, min_notes {min_notes}")
    if max_notes and min_notes > max_notes:
        raise ValueError(f"generate.min_notes ({min_notes}) is above generate.max_notes ({max_notes})")


def limit_notes(frame: np.ndarray, probabilities: np.ndarray, *, max_notes: int, min_notes: int) -> np.ndarray:
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


class ThresholdSampler(Sampler):
    """A pitch sounds when its probability exceeds `threshold` (then the note caps, see `limit_notes`)."""

    def __init__(self, threshold: float, *, max_notes: int, min_notes: int) -> None:
        check_caps(max_notes, min_notes)
        self.threshold, self.max_notes, self.min_notes = threshold, max_notes, min_notes

    def __call__(self, probabilities: np.ndarray, step: int, rng: np.random.Generator) -> np.ndarray:
        return limit_notes(
            probabilities > self.threshold, probabilities, max_notes=self.max_notes, min_notes=self.min_notes
        )

    def levels(self, shape: tuple[int, int], step: int, rng: np.random.Generator) -> np.ndarray:
        check_autoregressive_caps(self.max_notes, self.min_notes)
        return np.full(shape, self.threshold, np.float32)

    def onset_levels(self, shape: tuple[int, int], step: int, rng: np.random.Generator) -> np.ndarray:
        return np.full(shape, self.threshold, np.float32)


class VanishProofSampler(Sampler):
    """The article's loop, exactly: add `offset` (x `growth` after every step) and cast with astype(uint8).

    The cast floors, so a pitch sounds when p + offset >= 1: a threshold of 1 - 0.65 * 1.001**step that
    falls every step (0.35 at first; every pitch sounds from step 431 on). Without the offset the cast
    turns any p < 1 into silence, which is why the article's first loop stayed silent. One instance
    generates one batch: the offset grows with every call.
    """

    def __init__(self, offset: float, growth: float) -> None:
        self.initial, self.growth, self.offset = offset, growth, offset

    def __call__(self, probabilities: np.ndarray, step: int, rng: np.random.Generator) -> np.ndarray:
        # float32 + Python float stays float32 in NumPy, as in the article's Keras output.
        frame = (probabilities.astype(np.float32) + np.float32(self.offset)).astype(np.uint8)
        self.offset *= self.growth
        return frame

    def levels(self, shape: tuple[int, int], step: int, rng: np.random.Generator) -> np.ndarray:
        # The same falling threshold, applied to each conditional probability (p > level, not p >= level).
        return np.full(shape, 1.0 - self.initial * self.growth**step, np.float32)


class BernoulliSampler(Sampler):
    """Each pitch sounds with its predicted probability, sharpened (temperature < 1) or flattened (> 1);
    then the note caps (see `limit_notes`) rank the pitches by that tempered probability. A held pitch is
    struck again with its onset probability tempered by `onset_temperature` (None: `temperature`): below 1
    fewer repeated notes and longer ones, above 1 more."""

    def __init__(
        self, temperature: float, *, max_notes: int, min_notes: int, onset_temperature: float | None = None
    ) -> None:
        onset_temperature = temperature if onset_temperature is None else onset_temperature
        if min(temperature, onset_temperature) <= 0:
            raise ValueError(f"temperatures must be positive, not {temperature} and {onset_temperature}")
        check_caps(max_notes, min_notes)
        self.temperature, self.max_notes, self.min_notes = temperature, max_notes, min_notes
        self.onset_temperature = onset_temperature

    def __call__(self, probabilities: np.ndarray, step: int, rng: np.random.Generator) -> np.ndarray:
        p = np.clip(probabilities.astype(np.float64), 1e-7, 1 - 1e-7)
        logits = np.log(p) - np.log1p(-p)
        tempered = 1.0 / (1.0 + np.exp(-logits / self.temperature))
        return limit_notes(rng.random(p.shape) < tempered, tempered, max_notes=self.max_notes, min_notes=self.min_notes)

    def levels(self, shape: tuple[int, int], step: int, rng: np.random.Generator) -> np.ndarray:
        check_autoregressive_caps(self.max_notes, self.min_notes)
        return rng.random(shape).astype(np.float32)  # p > u with u uniform: a draw with probability p

    def onset_levels(self, shape: tuple[int, int], step: int, rng: np.random.Generator) -> np.ndarray:
        return rng.random(shape).astype(np.float32)


def make_sampler(
    mode: str,
    *,
    threshold: float,
    temperature: float,
    onset_temperature: float | None = None,
    vanish_proof: float,
    vanish_inc: float,
    max_notes: int,
    min_notes: int,
) -> Sampler:
    """The sampler for `generate.sampling`, every setting as generate's params give it (the defaults are
    theirs: rollgen.params.GenerateParams). The note caps (0 = off) apply to `threshold` and `bernoulli`;
    `vanish_proof` ignores them, since it reproduces the article's loop and nothing else; `temperature` and
    `onset_temperature` (None: `temperature`) are read by `bernoulli` alone."""
    if mode == "threshold":
        return ThresholdSampler(threshold, max_notes=max_notes, min_notes=min_notes)
    if mode == "vanish_proof":
        return VanishProofSampler(vanish_proof, vanish_inc)
    if mode == "bernoulli":
        return BernoulliSampler(
            temperature, max_notes=max_notes, min_notes=min_notes, onset_temperature=onset_temperature
        )
    raise ValueError(f"generate.sampling must be one of {MODES}, not '{mode}'")
