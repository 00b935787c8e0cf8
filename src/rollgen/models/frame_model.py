"""One interface to every model: what training, evaluation, generation, the MLflow model and the CLI ask of
a model, whatever its family (rollgen.models.builders), so none of them asks what kind of model it holds. Its
two implementations: rollgen.models.window_model and rollgen.models.sequence_model.

    model = frame_model.build(load_params("train"), context=9)   # a new model, as params.yaml describes it
    model = frame_model.load("models/model.keras")
    prediction = model.predict(test)              # every frame of every piece: its scores, and the guess
    state = model.start(primer, positions)        # the primer is read once ...
    frame, probabilities, state = model.step(state, sampler, 0, rng)  # ... then one step per new frame
    frames, state = model.generate(state, sampler, 64, rng, first_step=1)  # ... or many steps at once

Frames are uint8 levels over the 106 pitches (rollgen.music.roll: 0 silent, HELD, ONSET where a note is struck):
archives, primers and generated frames alike; positions are int rows (rollgen.music.meter). Sequence models read
and predict onsets; window models read what sounds, and strike a note where its pitch starts to sound.
"""

from __future__ import annotations

from pathlib import Path

import keras

from rollgen.models import builders
from rollgen.models.interface import PREDICT_FRAMES, Batching, FrameModel, Prediction, Taught
from rollgen.models.sequence_model import SequenceModel
from rollgen.models.window_model import WindowModel
from rollgen.params import TrainParams

__all__ = ["PREDICT_FRAMES", "Batching", "FrameModel", "Prediction", "Taught", "build", "load", "wrap"]

FAMILIES: dict[str, type[FrameModel]] = {"window": WindowModel, "sequence": SequenceModel}


def wrap(model: keras.Model, jit_compile: bool | None = None) -> FrameModel:
    """The interface to a Keras model rollgen built (its name is its MODELS entry). jit_compile: XLA for the
    generation step (None: the family's default)."""
    family = FAMILIES[builders.entry(model.name).family]
    return family(model) if jit_compile is None else family(model, jit_compile)


def build(params: TrainParams, context: int) -> FrameModel:
    """A new model `params.model` of its sizes (train.<model>): a window model reads `context` frames
    (windows.steps), a sequence model trains on stretches of `params.sequence_steps`, the Transformer's
    attention span."""
    return wrap(builders.build(params, context))


# What a file saved before a key was recorded was trained with: every model before models carried
# rollgen.json was trained on 16th notes, on the nearest grid; its name and sizes are in its Keras config alone.
EARLIER_INFO = {"steps_per_quarter": 4, "grid": "nearest", "architecture": None}


def load(path: str | Path, jit_compile: bool | None = None) -> FrameModel:
    """A saved .keras model (safe_mode on), behind the interface, with what it was trained on (`info`)."""
    model = wrap(builders.load_model(path), jit_compile)
    model.info = {**EARLIER_INFO, **builders.model_info(path), "model": model.name}
    return model
