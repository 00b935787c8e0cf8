"""The interface every model family implements (rollgen.models.window_model, rollgen.models.sequence_model),
and what it answers: training batches, every-frame predictions, generation steps. rollgen.models.frame_model
builds and loads models behind it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from rollgen.data.archive import Sequences
from rollgen.models import builders
from rollgen.models.nade import NadeHead
from rollgen.models.sampling import Sampler, check_autoregressive_caps
from rollgen.params import TrainParams

PREDICT_FRAMES = 16_384  # frames scored per model call in `predict`


@dataclass(frozen=True)
class Batching:
    """How training examples are cut: the `train` params that shape batches (`from_params`)."""

    batch_size: int
    seed: int | None  # shuffles the examples each epoch (None: archive order; sequence models: 0)
    transpose: int  # shift each example by up to this many semitones
    sequence_steps: int  # sequence models: frames per stretch

    @classmethod
    def from_params(cls, params: TrainParams) -> Batching:
        """The batching `params` (the train section) describe."""
        return cls(params.batch_size, params.seed, params.transpose, params.sequence_steps)


class Taught(NamedTuple):
    """A training batch scored with the true frames (teacher forcing), one row per predicted frame: what the
    trainer's loss reads. A model without an onset head leaves the onset parts None."""

    probabilities: object  # (rows, pitches): P(pitch sounds | context, the true notes below it for a NADE)
    targets: object  # (rows, pitches): the true sounding notes, 0/1
    weights: object  # (rows,): 0 on padding; None: every row counts
    onset_probabilities: object = None  # (rows, pitches): P(pitch is struck | context, the frame's sounding notes)
    onsets: object = None  # (rows, pitches): the true struck notes, 0/1
    uncertain: object = None  # (rows, pitches): 1 where the onset is a question (rollgen.models.onsets.uncertain)


@dataclass(frozen=True)
class Prediction:
    """A model's scores for every frame of a split, in archive order."""

    probabilities: np.ndarray  # float32 (frames, pitches): P(pitch sounds | context), given the true notes
    # below it for a NADE model, so their summed Bernoulli NLL is the model's exact frame NLL
    marginals: np.ndarray  # float32 (frames, pitches): P(pitch sounds | context), without seeing the frame (a
    # NADE's: the share of the frames drawn in which it sounds; greedily decoded, 0 or 1)

    # float32 (frames, pitches): P(pitch is struck | context, the true frame's sounding notes), 1 or 0 where that is
    # certain (rollgen.models.onsets.OnsetHead); None for a model that predicts no onsets (the window models)
    onsets: np.ndarray | None = None

    @property
    def predicted(self) -> np.ndarray:
        """bool (frames, pitches): the frame the model predicts without seeing it (marginal above one half)."""
        return self.marginals > 0.5


class FrameModel:
    """A Keras next-frame model and the operations every caller needs."""

    family = ""
    draws_onsets = False  # whether it strikes a held pitch again (an onset head; Sampler.onset_temperature)

    def __init__(self, model: keras.Model, jit_compile: bool) -> None:
        self.keras = model
        self.name = builders.model_name(model.name)  # its MODELS name, also for a model saved before a rename
        self.jit_compile = jit_compile
        # What it was trained on and what built it (rollgen.models.builders.save_model), once loaded from a file.
        self.info: dict = {}
        heads = [layer for layer in model.layers if isinstance(layer, NadeHead)]
        self.head: NadeHead | None = heads[0] if heads else None

    @property
    def steps_per_quarter(self) -> int:
        """The grid it was trained on (4 = 16th notes)."""
        return int(self._trained_on("steps_per_quarter"))

    @property
    def grid(self) -> str:
        """How notes were put on that grid (rollgen.music.roll: nearest, or floor as the article)."""
        return str(self._trained_on("grid"))

    def _trained_on(self, key: str):
        if key not in self.info:
            raise ValueError(f"{self.name}: no {key} in its info; a model knows it once saved by training and loaded")
        return self.info[key]

    def check(self, sampler: Sampler) -> None:
        """Raises ValueError where `sampler` cannot drive this model (note caps on a NADE model)."""
        if self.head is not None:
            check_autoregressive_caps(getattr(sampler, "max_notes", 0), getattr(sampler, "min_notes", 0))

    def training_batches(self, data: Sequences, batching: Batching, epoch: int) -> tf.data.Dataset:
        raise NotImplementedError

    def batch_count(self, data: Sequences, batching: Batching) -> int:
        raise NotImplementedError

    def teacher_forced(self, batch, training: bool) -> Taught:
        """A training batch scored (Taught), one row per predicted frame. Runs inside a compiled step."""
        raise NotImplementedError

    def predict(self, data: Sequences, samples: int = 0, seed: int = 0) -> Prediction:
        """Every frame of every sequence scored, the first from silence or the initial state. A NADE model's
        guess is decoded from `samples` draws per frame (0: greedily; see rollgen.models.nade.Decoder)."""
        raise NotImplementedError

    def start(self, primer: np.ndarray, positions: np.ndarray):
        """The state after reading `primer` (pieces, steps, pitches) once: uint8 levels (rollgen.music.roll: 0,
        HELD, ONSET; anything else, bool or floats in 0..1, is read as a roll without onsets, each run struck at
        its first step); `positions` (pieces, steps + 1, 4) are those of the primer's frames and of the first
        frame to generate."""
        raise NotImplementedError

    def step(
        self, state, sampler: Sampler, step: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, object]:
        """The next frame (pieces, pitches) of uint8 levels (0, HELD, ONSET) drawn by `sampler`, each pitch's
        probability of sounding (a NADE's: given the pitches drawn below it, untempered), and the state after
        the frame. A model with an onset head draws whether each pitch that goes on sounding is struck again
        (`Sampler.onset_levels`); one without strikes a note where its pitch starts to sound, never again."""
        raise NotImplementedError

    def generate(
        self, state, sampler: Sampler, steps: int, rng: np.random.Generator, first_step: int = 0
    ) -> tuple[np.ndarray, object]:
        """`steps` new frames (pieces, steps, pitches) of uint8 levels and the state after them: what `steps` calls
        of `step` numbered from `first_step` draw, with the same random numbers."""
        if steps < 1:
            raise ValueError(f"generate takes 1 step or more, not {steps}")
        frames = []
        for step in range(first_step, first_step + steps):
            frame, _, state = self.step(state, sampler, step, rng)
            frames.append(frame)
        return np.stack(frames, axis=1), state
