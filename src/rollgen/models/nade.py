"""The NADE output of RNN-NADE (Boulanger-Lewandowski et al., 2012): the 106 pitches of a frame modelled
jointly, one after another, so chords are learnt rather than 106 independent coin flips."""

from __future__ import annotations

import keras
import numpy as np


@keras.utils.register_keras_serializable(package="rollgen")
class NadeHead(keras.layers.Layer):
    """A NADE over the pitches of one frame whose biases come from the model's features for that frame.

    Pitches are taken lowest first: hidden_d = sigmoid(c + W[<d]^T v[<d]), p_d = sigmoid(b_d + V_d . hidden_d),
    with b and c linear in the features. `call` gives every p_d at once from the true frame (teacher forcing;
    features (..., F) and frames (..., pitches), any leading axes: windows, or batch and time); `sample`
    draws a frame one pitch after another from features (batch, F). `initial_bias`: the pitches' starting
    logit; a negative one (few of 106 pitches sound at once) spares the first thousand steps of training.
    """

    def __init__(self, hidden: int, initial_bias: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden, self.initial_bias = hidden, initial_bias

    def build(self, input_shape) -> None:
        features, pitches = int(input_shape[0][-1]), int(input_shape[1][-1])
        glorot = keras.initializers.GlorotUniform
        self.visible_kernel = self.add_weight(shape=(features, pitches), initializer=glorot(), name="visible_kernel")
        start = keras.initializers.Constant(self.initial_bias)
        self.visible_bias = self.add_weight(shape=(pitches,), initializer=start, name="visible_bias")
        self.hidden_kernel = self.add_weight(shape=(features, self.hidden), initializer=glorot(), name="hidden_kernel")
        self.hidden_bias = self.add_weight(shape=(self.hidden,), initializer="zeros", name="hidden_bias")
        self.input_weights = self.add_weight(shape=(pitches, self.hidden), initializer=glorot(), name="input_weights")
        self.output_weights = self.add_weight(shape=(pitches, self.hidden), initializer=glorot(), name="output_weights")

    @property
    def pitches(self) -> int:
        return int(self.input_weights.shape[0])

    def biases(self, features):
        """Per-frame visible biases (..., pitches) and hidden biases (..., hidden) from the features."""
        ops = keras.ops
        visible = ops.matmul(features, self.visible_kernel) + self.visible_bias
        hidden = ops.matmul(features, self.hidden_kernel) + self.hidden_bias
        return visible, hidden

    def call(self, inputs):
        """Each pitch's probability given the frame's notes below it (values above one half sound).

        The hidden units of pitch d see the sum of W over the notes below d, which changes only at a note:
        with k notes there are k + 1 distinct sums, so they are computed once each (k + 1 rows, not 106),
        about 8x less work than one hidden vector per pitch and the same numbers.
        """
        ops = keras.ops
        features, frame = inputs
        visible, hidden = self.biases(features)
        notes = ops.cast(frame > 0.5, features.dtype)
        below = ops.cumsum(notes, axis=-1) - notes  # how many notes lie strictly below each pitch
        levels = ops.arange(ops.cast(ops.max(ops.sum(notes, axis=-1)), "int32") + 1, dtype=features.dtype)
        lowest = notes[..., None, :] * ops.cast(below[..., None, :] < levels[:, None], features.dtype)
        activations = ops.sigmoid(hidden[..., None, :] + ops.matmul(lowest, self.input_weights))  # (..., k+1, H)
        logits = ops.matmul(activations, ops.transpose(self.output_weights))  # (..., k+1, pitches)
        mine = ops.cast(ops.equal(below[..., None, :], levels[:, None]), features.dtype)  # each pitch's row
        return ops.sigmoid(visible + ops.sum(logits * mine, axis=-2))

    def sample(self, features, levels, temperature: float = 1.0):
        """A frame (batch, pitches) of 0/1, one pitch after another: pitch d sounds when its probability given
        the pitches already drawn, tempered, exceeds levels[:, d] (uniform noise samples; a constant thresholds).
        Also gives those conditional probabilities (untempered).

        The hidden units change only where a note is drawn, so each round scores every undecided pitch at
        once from the notes drawn so far and keeps them up to the first that sounds: a frame of k notes takes
        k + 1 rounds, not 106 steps, and draws exactly what pitch-by-pitch drawing would.
        """
        ops = keras.ops
        visible, hidden = self.biases(features)
        pitches = self.pitches
        rows = ops.arange(pitches)[None, :]
        done = ops.full((ops.shape(features)[0],), pitches, dtype="int32")

        def undecided(start, frame, chosen, running):
            return ops.any(start < pitches)

        def draw_next(start, frame, chosen, running):
            logits = visible + ops.matmul(ops.sigmoid(running), ops.transpose(self.output_weights))
            open_ = rows >= start[:, None]
            on = (ops.sigmoid(logits / temperature) > levels) & open_
            first = ops.where(ops.any(on, axis=-1), ops.cast(ops.argmax(on, axis=-1), "int32"), done)
            decided = open_ & (rows <= first[:, None])
            chosen = ops.where(decided, ops.sigmoid(logits), chosen)
            note = ops.one_hot(ops.minimum(first, pitches - 1), pitches, dtype=features.dtype)
            note = note * ops.cast(first < pitches, features.dtype)[:, None]
            return first + 1, frame + note, chosen, running + ops.matmul(note, self.input_weights)

        start = ops.zeros_like(done)
        _, frame, chosen, _ = ops.while_loop(
            undecided, draw_next, (start, ops.zeros_like(visible), ops.zeros_like(visible), hidden)
        )
        return frame, chosen

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden": self.hidden, "initial_bias": self.initial_bias}

    @classmethod
    def from_config(cls, config: dict) -> NadeHead:
        """The head a saved config describes; files saved before `initial_bias` existed started from 0."""
        return cls(**{"initial_bias": 0.0, **config})


class Decoder:
    """The frames a NADE predicts from features, without the true notes; its compiled draw is traced once."""

    def __init__(self, head: NadeHead) -> None:
        import tensorflow as tf

        self.head = head
        self.draw = tf.function(lambda features, levels: head.sample(features, levels)[0], reduce_retracing=True)

    def __call__(self, features, samples: int, rng: np.random.Generator) -> np.ndarray:
        """bool (n, pitches) from features (n, F): each pitch on where its marginal (`marginals`) exceeds 0.5."""
        return self.marginals(features, samples, rng) > 0.5

    def marginals(self, features, samples: int, rng: np.random.Generator) -> np.ndarray:
        """float32 (n, pitches) from features (n, F). samples 0: the frame decoded greedily (0 or 1), lowest pitch
        first, each pitch on when its probability given the pitches already decided exceeds 0.5. samples N:
        the share of N frames drawn from the model in which each pitch sounds, an estimate of its marginal
        probability; above 0.5 it is predicted, the rule the factorised models follow."""
        shape = (int(features.shape[0]), self.head.pitches)
        if samples == 0:
            return np.asarray(self.draw(features, np.full(shape, 0.5, np.float32)), np.float32)
        sounding = np.zeros(shape, np.int32)
        for _ in range(samples):
            sounding += np.asarray(self.draw(features, rng.random(shape, dtype=np.float32)), dtype=np.int32)
        return (sounding / samples).astype(np.float32)
