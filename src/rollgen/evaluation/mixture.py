"""A test-time ensemble over transpositions: the model heard each piece moved by -reach..reach semitones and
averaged, frame by frame, as one exact distribution.

Trained with transposition (`train.transpose`), one network is in effect several models, one per shift, that
err differently; their average predicts better than any of them (on the chorales' validation pieces, 2.00
nats per frame against 2.06 for ±2; `benchmarks/transposition_ensemble.py`). At every frame,

    p(x_t | x_<t) = mean over shifts s of p_s(x_t | x_<t),    p_s(x | past) = network(x moved by s | past moved by s)

is a mixture of distributions over the frame, so it sums to 1 and the piece's NLL is exact. Expert s cannot
play a pitch that its shift pushes off the 106 rows: it gives that pitch probability 0, and pitches it
conditions on come from the moved frame, so each expert sums to 1 over the frames too.

A NADE scores pitch by pitch, given the true notes below; so does the mixture: each expert's weight is its
probability of the notes below so far (Bayes), so the per-pitch conditionals multiply to the mixture's frame
probability and `Prediction.probabilities` means what it means for one network.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rollgen.data.archive import Sequences, sounding
from rollgen.evaluation.scores import clipped
from rollgen.models.frame_model import FrameModel, Prediction


def shift_frames(frames: np.ndarray, shift: int) -> np.ndarray:
    """Frames (..., pitches) moved up by `shift` rows (down if negative); notes pushed off the rows vanish."""
    moved = np.zeros_like(frames)
    if shift > 0:
        moved[..., shift:] = frames[..., :-shift]
    elif shift < 0:
        moved[..., :shift] = frames[..., -shift:]
    else:
        moved[...] = frames
    return moved


def mixture_conditionals(expert_probabilities: np.ndarray, truth: np.ndarray, playable: np.ndarray) -> np.ndarray:
    """Per-pitch conditionals (frames, pitches) of an equal-weight mixture of experts, from each expert's
    conditionals given the true notes below (experts, frames, pitches), the true frames (frames, pitches) and
    which pitches each expert can play (experts, pitches; elsewhere its probability is 0):

        P(x_d = 1 | x_<d) = sum_k w_k(d) q_k(d),   w_k(d) proportional to prod_{j<d} q_k(x_j),

    so the product of the conditionals of the true notes is the mixture's probability of the true frame (a
    factorised expert is one whose conditionals ignore the notes below). Playable probabilities are clipped
    as rollgen.evaluation.scores clips one model's."""
    playable = np.asarray(playable, bool)[:, None, :]
    q = np.where(playable, clipped(expert_probabilities), 0.0)
    y = np.asarray(truth, bool)[None]
    with np.errstate(divide="ignore"):
        log_true = np.log(np.where(y, q, 1 - q))  # -inf where an expert cannot play a true note
    before = np.zeros_like(log_true)
    before[..., 1:] = np.cumsum(log_true[..., :-1], axis=-1)  # log prod_{j<d}; the unshifted expert is never -inf
    weights = np.exp(before - before.max(axis=0, keepdims=True))
    weights /= weights.sum(axis=0, keepdims=True)
    return (weights * q).sum(axis=0).astype(np.float32)


def playable_pitches(pitches: int, shift: int) -> np.ndarray:
    """bool (pitches,): the pitches whose row, moved by `shift`, stays on the roll."""
    moved = np.arange(pitches) + shift
    return (moved >= 0) & (moved < pitches)


class TranspositionMixture:
    """A FrameModel's test-time ensemble over shifts -reach..reach, scored through the same `predict`."""

    def __init__(self, model: FrameModel, reach: int) -> None:
        if reach < 0:
            raise ValueError(f"reach must be 0 or more semitones, not {reach}")
        self.model, self.reach = model, reach
        self.shifts = list(range(-reach, reach + 1))
        self.head = model.head
        self.info = model.info

    def predict(self, data: Sequences, samples: int = 0, seed: int = 0) -> Prediction:
        """Every frame of every sequence scored by the mixture (see `experts` for how it decodes)."""
        return self.combine(self.experts(data, samples, seed), data, samples)

    def experts(self, data: Sequences, samples: int = 0, seed: int = 0) -> list[Prediction]:
        """Each expert's prediction of the pieces (one per shift, moved back onto the pieces' rows, its onsets too).
        A NADE's
        `samples` draws are shared out among the experts, so the mixture costs the draws one network does;
        an expert's `marginals` are the shares of its own draws (or its greedy frame, with samples 0)."""
        shares = self.shares(samples)
        found = []
        for number, (shift, share) in enumerate(zip(self.shifts, shares)):
            moved = replace(data, frames=shift_frames(data.frames, shift))
            expert_seed = int(np.random.SeedSequence([seed, number]).generate_state(1)[0])
            prediction = self.model.predict(moved, samples=int(share), seed=expert_seed)
            back = (shift_frames(part, -shift) if part is not None else None
                    for part in (prediction.probabilities, prediction.marginals, prediction.onsets))  # fmt: skip
            found.append(Prediction(*back))
        return found

    def shares(self, samples: int) -> np.ndarray:
        """How many of `samples` draws each expert makes: as equal as whole numbers allow."""
        return np.diff(np.linspace(0, samples, len(self.shifts) + 1).round().astype(int))

    def combine(self, experts: list[Prediction], data: Sequences, samples: int) -> Prediction:
        """The mixture's prediction from its experts': per-pitch conditionals weighted by Bayes
        (mixture_conditionals); the guess from the mean of the experts' marginals, each weighted by its share
        of the draws (greedily: a pitch is guessed when most experts guess it). It mixes what sounds only: its
        prediction has no onsets (rollgen.evaluation.evaluate reports the network alone's)."""
        truth = sounding(data.frames)
        playable = np.stack([playable_pitches(truth.shape[1], shift) for shift in self.shifts])
        probabilities = mixture_conditionals(np.stack([e.probabilities for e in experts]), truth, playable)
        drawn = self.shares(samples) if samples else np.ones(len(experts), int)
        weights = drawn / drawn.sum()
        marginals = sum(weight * expert.marginals.astype(np.float64) for weight, expert in zip(weights, experts))
        return Prediction(probabilities, np.asarray(marginals, np.float32))
