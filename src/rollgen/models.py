"""Model builders by name (`train.model`): each takes windows (batch, context, 106) and gives, per pitch, the
probability that it sounds in the next frame. Factorised models (`lstm`, `convlstm`, `seed`) give 106
independent probabilities; the NADE models (`convnade`, `nade`) also take the next frame itself and give each
pitch's probability given the pitches below it (teacher forcing), which is how they learn which notes sound
together."""

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


def convlstm_features(window, filters: int = 16, kernel: int = 7):
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


def build_convlstm(context: int = 9, num_pitches: int = NUM_PITCHES, filters: int = 16, kernel: int = 7) -> keras.Model:
    """The ConvLSTM (convlstm_features) with one independent sigmoid per pitch."""
    window = keras.Input(shape=(context, num_pitches))
    features = convlstm_features(window, filters, kernel)
    return keras.Model(window, layers.Dense(num_pitches, activation="sigmoid")(features), name="convlstm")


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


@keras.utils.register_keras_serializable(package="rollgen")
class NadeHead(layers.Layer):
    """The output of RNN-NADE (Boulanger-Lewandowski et al., 2012): a NADE over the 106 pitches of one frame
    whose biases come from the recurrent features, so chords are modelled, not 106 independent coin flips.

    Pitches are taken lowest first: hidden_d = sigmoid(c + W[<d]^T v[<d]), p_d = sigmoid(b_d + V_d . hidden_d),
    with b and c linear in the features. `call` gives every p_d at once from the true frame; `sample` draws a
    frame one pitch after another.
    """

    def __init__(self, hidden: int = 64, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden = hidden

    def build(self, input_shape) -> None:
        features, pitches = int(input_shape[0][-1]), int(input_shape[1][-1])
        glorot = keras.initializers.GlorotUniform
        self.visible_kernel = self.add_weight(shape=(features, pitches), initializer=glorot(), name="visible_kernel")
        self.visible_bias = self.add_weight(shape=(pitches,), initializer="zeros", name="visible_bias")
        self.hidden_kernel = self.add_weight(shape=(features, self.hidden), initializer=glorot(), name="hidden_kernel")
        self.hidden_bias = self.add_weight(shape=(self.hidden,), initializer="zeros", name="hidden_bias")
        self.input_weights = self.add_weight(shape=(pitches, self.hidden), initializer=glorot(), name="input_weights")
        self.output_weights = self.add_weight(shape=(pitches, self.hidden), initializer=glorot(), name="output_weights")

    def biases(self, features):
        """Per-frame visible biases (batch, pitches) and hidden biases (batch, hidden) from the features."""
        ops = keras.ops
        visible = ops.matmul(features, self.visible_kernel) + self.visible_bias
        hidden = ops.matmul(features, self.hidden_kernel) + self.hidden_bias
        return visible, hidden

    def call(self, inputs):
        ops = keras.ops
        features, frame = inputs
        visible, hidden = self.biases(features)
        contributions = frame[:, :, None] * self.input_weights[None]  # (batch, pitches, hidden)
        below = ops.cumsum(contributions, axis=1)[:, :-1]
        below = ops.concatenate([ops.zeros_like(contributions[:, :1]), below], axis=1)  # pitches strictly below
        activations = ops.sigmoid(hidden[:, None, :] + below)
        return ops.sigmoid(visible + ops.sum(activations * self.output_weights[None], axis=-1))

    def sample(self, features, levels, temperature: float = 1.0):
        """A frame (batch, pitches) of 0/1, one pitch after another: pitch d sounds when its probability given
        the pitches already drawn, tempered, exceeds levels[:, d] (uniform noise samples; a constant thresholds).
        Also gives those conditional probabilities (untempered)."""
        ops = keras.ops
        visible, running = self.biases(features)
        pitches = self.input_weights.shape[0]
        frame, chosen = [], []
        for pitch in range(pitches):
            logit = visible[:, pitch] + ops.sum(ops.sigmoid(running) * self.output_weights[pitch], axis=-1)
            on = ops.cast(ops.sigmoid(logit / temperature) > levels[:, pitch], features.dtype)
            running = running + on[:, None] * self.input_weights[pitch][None]
            frame.append(on)
            chosen.append(ops.sigmoid(logit))
        return ops.stack(frame, axis=1), ops.stack(chosen, axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden": self.hidden}


def build_nade(context: int = 9, num_pitches: int = NUM_PITCHES, units: int = 128, hidden: int = 64) -> keras.Model:
    """RNN-NADE: an LSTM reads the window; a NADE head (NadeHead) models the next frame's notes jointly.

    Inputs: the window and the next frame (its true notes, teacher forcing); output: each pitch's probability
    given the notes below it. Their Bernoulli NLL summed over pitches is the exact frame NLL of the model.
    """
    window = keras.Input(shape=(context, num_pitches), name="window")
    frame = keras.Input(shape=(num_pitches,), name="frame")
    features = layers.LSTM(units, name="encoder")(window)
    probabilities = NadeHead(hidden, name="nade")([features, frame])
    return keras.Model([window, frame], probabilities, name="nade")


def build_convnade(
    context: int = 9, num_pitches: int = NUM_PITCHES, filters: int = 16, kernel: int = 7, hidden: int = 64
) -> keras.Model:
    """The ConvLSTM's features (convlstm_features) under a NADE head: interval patterns shared across
    pitches, as in convlstm, and whole chords, as in nade. Inputs and outputs as build_nade's."""
    window = keras.Input(shape=(context, num_pitches), name="window")
    frame = keras.Input(shape=(num_pitches,), name="frame")
    features = convlstm_features(window, filters, kernel)
    probabilities = NadeHead(hidden, name="nade")([features, frame])
    return keras.Model([window, frame], probabilities, name="convnade")


def is_autoregressive(model: keras.Model) -> bool:
    """True for models that take the next frame as a second input (a NADE head), False for factorised ones."""
    return len(model.inputs) == 2


def nade_parts(model: keras.Model) -> tuple[keras.Model, NadeHead]:
    """The window -> features sub-model and the NADE head of a `nade` model, for sampling frame by frame."""
    head = next(layer for layer in model.layers if isinstance(layer, NadeHead))
    encoder = keras.Model(model.inputs[0], head.input[0])
    return encoder, head


MODELS: dict[str, Callable[..., keras.Model]] = {
    "seed": build_seed,
    "convlstm": build_convlstm,
    "lstm": build_lstm,
    "nade": build_nade,
    "convnade": build_convnade,
}


def build_model(name: str, context: int = 9) -> keras.Model:
    """The model called `name` in MODELS, for windows of `context` frames."""
    if name not in MODELS:
        raise ValueError(f"train.model '{name}' is unknown; choose one of {sorted(MODELS)}")
    return MODELS[name](context=context)


def load_model(path) -> keras.Model:
    """A saved .keras model, loaded with safe_mode on (no arbitrary code from the file)."""
    return keras.models.load_model(path, safe_mode=True, compile=False)
