"""Model builders by name (`train.model`), in two families.

Window models (`article`, `lstm`, `convlstm`, `nade`, `convnade`) read a window of `context` frames (the
article's 9) and give, per pitch, the probability that it sounds in the next frame: the factorised ones 106
independent probabilities; the NADE ones also take the next frame itself and give each pitch's probability
given the pitches below it (teacher forcing), which is how they learn which notes sound together.

Sequence models (`rnnnade`, `pitchnade`, `transformernade`) read a whole stretch of a piece: at every step the
frame before (its sounding and its struck notes) and the bar position of the frame to predict, and give,
through a NADE head, each pitch's probability given the pitches below it, for every frame at once, and,
through an onset head, each sounding pitch's probability of being struck rather than held.
rollgen.models.frame_model gives both families one interface.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers

from rollgen.models.encoders import LstmEncoder, PitchEncoder, SequenceEncoder, TransformerEncoder
from rollgen.models.nade import NadeHead
from rollgen.models.onsets import ONSET_BIAS, OnsetHead
from rollgen.music.roll import NUM_PITCHES
from rollgen.params import (
    RENAMED_MODELS,
    ConvLstmParams,
    ConvNadeParams,
    LstmParams,
    NadeParams,
    PitchNadeParams,
    RnnNadeParams,
    TrainParams,
    TransformerNadeParams,
)


def build_article(context: int, num_pitches: int = NUM_PITCHES) -> keras.Model:
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
        name="article",
    )


def convlstm_features(window, filters: int, kernel: int):
    """A real ConvLSTM over a window (batch, context, pitches): a ConvLSTM1D layer recurs over time and
    convolves along the pitch axis, so an interval pattern learnt at one pitch applies at every pitch (a
    7-semitone kernel spans a fifth; the dilated convolution after it, two octaves). Gives 4 features per
    pitch, flattened, for a dense output that places the patterns in register. Small, because on a CPU each
    ConvLSTM step costs a convolution per gate: 16 filters of 7 train an epoch of the chorales in a few
    minutes on 2 cores, 32 of 13 in ~14."""
    context, pitches = window.shape[1], window.shape[2]
    x = layers.Reshape((context, pitches, 1))(window)
    x = layers.ConvLSTM1D(filters, kernel, padding="same")(x)
    x = layers.Conv1D(filters, 13, padding="same", dilation_rate=2, activation="relu")(x)
    x = layers.Conv1D(4, 1, activation="relu")(x)
    return layers.Flatten()(x)


def build_convlstm(sizes: ConvLstmParams, context: int, num_pitches: int = NUM_PITCHES) -> keras.Model:
    """The ConvLSTM (convlstm_features) with one independent sigmoid per pitch."""
    window = keras.Input(shape=(context, num_pitches))
    features = convlstm_features(window, sizes.filters, sizes.kernel)
    return keras.Model(window, layers.Dense(num_pitches, activation="sigmoid")(features), name="convlstm")


def build_lstm(sizes: LstmParams, context: int, num_pitches: int = NUM_PITCHES) -> keras.Model:
    """A plain LSTM over the frames, then one sigmoid per pitch: the 'LSTM' row of the classic tables, and
    the simplest model that sees the frames in order (the article's network pools that order away)."""
    return keras.Sequential(
        [
            keras.Input(shape=(context, num_pitches)),
            layers.LSTM(sizes.units),
            layers.Dense(num_pitches, activation="sigmoid"),
        ],
        name="lstm",
    )


def build_nade(sizes: NadeParams, context: int, num_pitches: int = NUM_PITCHES) -> keras.Model:
    """RNN-NADE: an LSTM reads the window; a NADE head (NadeHead) models the next frame's notes jointly.

    Inputs: the window and the next frame (its true notes, teacher forcing); output: each pitch's probability
    given the notes below it. Their Bernoulli NLL summed over pitches is the exact frame NLL of the model.
    """
    window = keras.Input(shape=(context, num_pitches), name="window")
    frame = keras.Input(shape=(num_pitches,), name="frame")
    features = layers.LSTM(sizes.units, name="encoder")(window)
    probabilities = NadeHead(sizes.nade_units, initial_bias=0.0, name="nade")([features, frame])
    return keras.Model([window, frame], probabilities, name="nade")


def build_convnade(sizes: ConvNadeParams, context: int, num_pitches: int = NUM_PITCHES) -> keras.Model:
    """The ConvLSTM's features (convlstm_features) under a NADE head: interval patterns shared across
    pitches, as in convlstm, and whole chords, as in nade. Inputs and outputs as build_nade's."""
    window = keras.Input(shape=(context, num_pitches), name="window")
    frame = keras.Input(shape=(num_pitches,), name="frame")
    features = convlstm_features(window, sizes.filters, sizes.kernel)
    probabilities = NadeHead(sizes.nade_units, initial_bias=0.0, name="nade")([features, frame])
    return keras.Model([window, frame], probabilities, name="convnade")


def sequence_nade(encoder: SequenceEncoder, name: str, num_pitches: int, nade_units: int) -> keras.Model:
    """A sequence model: `encoder` over (previous frames, positions), a NADE head and an onset head per step.

    Inputs: the frame before each step (silence first) as its sounding notes then its struck ones
    (rollgen.models.onsets.level_inputs, 2 x `num_pitches`), each step's bar position (int rows, see
    rollgen.models.encoders) and each step's true sounding notes (teacher forcing). Outputs: each pitch's
    probability of sounding given the notes below it, for every step (their Bernoulli NLL summed over pitches
    is the exact frame NLL of what sounds), and each pitch's probability of being struck given the frame's
    sounding notes (OnsetHead: 1 or 0 where certain). The NADE head starts each pitch at a logit of -3 (few of
    106 pitches sound at once).
    """
    previous = keras.Input(shape=(None, 2 * num_pitches), name="previous")
    position = keras.Input(shape=(None, 4), dtype="int32", name="position")
    frame = keras.Input(shape=(None, num_pitches), name="frame")
    features = encoder([previous, position])
    probabilities = NadeHead(nade_units, initial_bias=-3.0, name="nade")([features, frame])
    struck = OnsetHead(initial_bias=ONSET_BIAS, name="onset")([features, frame, previous])
    return keras.Model([previous, position, frame], [probabilities, struck], name=name)


def build_rnn_nade(sizes: RnnNadeParams, sequence_steps: int, num_pitches: int = NUM_PITCHES) -> keras.Model:
    """RNN-NADE proper (Boulanger-Lewandowski et al., 2012): an LSTM over the whole sequence, a NADE per frame.
    It reads pieces of any length: `sequence_steps` shapes its training batches only."""
    encoder = LstmEncoder(sizes.units, sizes.layers, sizes.dropout, name="encoder")
    return sequence_nade(encoder, "rnnnade", num_pitches, sizes.nade_units)


def build_pitch_nade(sizes: PitchNadeParams, sequence_steps: int, num_pitches: int = NUM_PITCHES) -> keras.Model:
    """Interval patterns shared by every pitch (one LSTM per pitch, tied, over the sequence), a NADE per frame.
    It reads pieces of any length: `sequence_steps` shapes its training batches only."""
    encoder = PitchEncoder(num_pitches, sizes.units, sizes.filters, sizes.dropout, name="encoder")
    return sequence_nade(encoder, "pitchnade", num_pitches, sizes.nade_units)


def build_transformer_nade(
    sizes: TransformerNadeParams, sequence_steps: int, num_pitches: int = NUM_PITCHES
) -> keras.Model:
    """A causal Transformer attending `sequence_steps` back (the stretches it trains on), a NADE per frame.

    Its default sizes were chosen on validation (docs/design.md): a ReLU feed-forward network, no dropout on
    the attention weights and a head of 128 hidden units (the other NADE models have 64) make a step ~1.25x
    faster than GELU, attention dropout and 192 units, and 100 epochs of it reach a lower validation NLL
    (2.059) than 80 of the slower one (2.063) in less time.
    """
    encoder = TransformerEncoder(
        sizes.width,
        sizes.heads,
        sizes.layers,
        window=sequence_steps,
        dropout=sizes.dropout,
        expansion=sizes.expansion,
        activation=sizes.activation,
        attention_dropout=sizes.attention_dropout,
        relative=sizes.relative,
        noise=sizes.noise,
        key_summary=sizes.key_summary,
        name="encoder",
    )
    return sequence_nade(encoder, "transformernade", num_pitches, sizes.nade_units)


@dataclass(frozen=True)
class Entry:
    """A model `train.model` can name: its builder and its family.

    family "window": built for `context` frames; "sequence": built for stretches of `sequence_steps` steps.
    The builder takes the model's sizes (train.<name>) first, except the article's, which has none."""

    build: Callable[..., keras.Model]
    family: str


MODELS: dict[str, Entry] = {
    "article": Entry(build_article, "window"),
    "convlstm": Entry(build_convlstm, "window"),
    "lstm": Entry(build_lstm, "window"),
    "nade": Entry(build_nade, "window"),
    "convnade": Entry(build_convnade, "window"),
    "rnnnade": Entry(build_rnn_nade, "sequence"),
    "pitchnade": Entry(build_pitch_nade, "sequence"),
    "transformernade": Entry(build_transformer_nade, "sequence"),
}


def model_name(name: str) -> str:
    """The MODELS name of a model saved as `name`: a model saved before a rename (`seed`) loads as what it is."""
    return RENAMED_MODELS.get(name, name)


def entry(name: str) -> Entry:
    """The MODELS entry called `name` (or called so before a rename), or a clear error naming the choices."""
    if model_name(name) not in MODELS:
        raise ValueError(f"train.model '{name}' is unknown; choose one of {sorted(MODELS)}")
    return MODELS[model_name(name)]


def build(params: TrainParams, context: int) -> keras.Model:
    """A new Keras model `params.model` of its sizes (train.<model>): a window model reads `context` frames
    (windows.steps), a sequence model trains on stretches of `params.sequence_steps`. It carries what built it
    (`built_with`), which save_model writes into the file."""
    model_entry = entry(params.model)
    steps = context if model_entry.family == "window" else params.sequence_steps
    sizes = params.architecture
    model = model_entry.build(steps) if sizes is None else model_entry.build(sizes, steps)
    model.built_with = {"model": params.model, "architecture": sizes.model_dump() if sizes else {}}
    return model


def load_model(path) -> keras.Model:
    """A saved .keras model, loaded with safe_mode on (no arbitrary code from the file)."""
    return keras.models.load_model(path, safe_mode=True, compile=False)


MODEL_INFO = "rollgen.json"  # inside the .keras zip: what the model was trained on (Keras ignores the entry)


def save_model(model: keras.Model, path, info: dict) -> None:
    """Saves `model` as .keras atomically, with `info` (e.g. its grid, steps_per_quarter) and, for a model
    `build` made, its name and sizes (`built_with`) inside the file, so whoever loads the model knows what it
    was trained on and what built it."""
    from rollgen import files

    recorded = {**getattr(model, "built_with", {}), **info}
    with files.atomic_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(MODEL_INFO, json.dumps(recorded, sort_keys=True))


def model_info(path) -> dict:
    """The `info` saved with a model by save_model; {} for a .keras file without it."""
    with zipfile.ZipFile(path) as archive:
        if MODEL_INFO not in archive.namelist():
            return {}
        return json.loads(archive.read(MODEL_INFO))
