"""Model builders by name (`train.model`): each takes windows (batch, context, 106) and returns the
probability that each of the 106 pitches sounds in the next frame."""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from rollgen.roll import NUM_PITCHES


def build_seed(context: int = 9, num_pitches: int = NUM_PITCHES) -> keras.Model:
    """The article's network, layer for layer: 251,370 parameters for 9 frames of 106 pitches.

    The article fed each window as (1, 9, 106): a sequence of one "subsequence", so its Conv1D layers
    (kernel 1) mix pitches per frame and pool over time, and the LSTMs see a single step. The Reshape
    restores that layout from plain (9, 106) windows and adds no parameter.
    """
    conv = dict(filters=128, kernel_size=1, activation="relu")
    return keras.Sequential(
        [
            keras.Input(shape=(context, num_pitches)),
            layers.Reshape((1, context, num_pitches)),
            layers.TimeDistributed(layers.Conv1D(**conv)),
            layers.TimeDistributed(layers.MaxPooling1D(pool_size=2)),
            layers.TimeDistributed(layers.Conv1D(**conv)),
            layers.TimeDistributed(layers.MaxPooling1D(pool_size=2)),
            layers.TimeDistributed(layers.Conv1D(**conv)),
            layers.TimeDistributed(layers.MaxPooling1D(pool_size=2)),
            layers.TimeDistributed(layers.Conv1D(**conv)),
            layers.TimeDistributed(layers.Flatten()),
            layers.LSTM(128, return_sequences=True),
            layers.LSTM(64),
            layers.BatchNormalization(),
            layers.Dense(num_pitches, activation="sigmoid"),
        ],
        name="seed",
    )


def build_convlstm(
    context: int = 9, num_pitches: int = NUM_PITCHES, filters: int = 32, kernel: int = 13
) -> keras.Model:
    """A real ConvLSTM: ConvLSTM1D layers recur over time and convolve along the pitch axis, so an interval
    pattern learnt at one pitch applies at every pitch (a 13-semitone kernel spans an octave). A final
    dense layer over all pitches then places the pattern in register."""
    return keras.Sequential(
        [
            keras.Input(shape=(context, num_pitches)),
            layers.Reshape((context, num_pitches, 1)),
            layers.ConvLSTM1D(filters, kernel, padding="same"),
            layers.Conv1D(filters, 13, padding="same", dilation_rate=2, activation="relu"),
            layers.Conv1D(4, 1, activation="relu"),
            layers.Flatten(),
            layers.Dense(num_pitches, activation="sigmoid"),
        ],
        name="convlstm",
    )


def build_lstm(context: int = 9, num_pitches: int = NUM_PITCHES, units: int = 128) -> keras.Model:
    """A plain LSTM over the frames, then one sigmoid per pitch: the 'LSTM' row of the classic tables, and
    the simplest model that sees the frames in order (the seed network pools that order away)."""
    return keras.Sequential(
        [
            keras.Input(shape=(context, num_pitches)),
            layers.LSTM(units),
            layers.Dense(num_pitches, activation="sigmoid"),
        ],
        name="lstm",
    )


MODELS: dict[str, Callable[..., keras.Model]] = {"seed": build_seed, "convlstm": build_convlstm, "lstm": build_lstm}


def build_model(name: str, context: int = 9) -> keras.Model:
    """The model called `name` in MODELS, for windows of `context` frames."""
    if name not in MODELS:
        raise ValueError(f"train.model '{name}' is unknown; choose one of {sorted(MODELS)}")
    return MODELS[name](context=context)


def load_model(path) -> keras.Model:
    """A saved .keras model, loaded with safe_mode on (no arbitrary code from the file)."""
    return keras.models.load_model(path, safe_mode=True, compile=False)
