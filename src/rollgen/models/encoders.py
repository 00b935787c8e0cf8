"""Sequence encoders: read a whole piece frame by frame and carry what they heard, so a model knows the key,
the phrase and where the bar is, not only the last two beats.

An encoder reads, at every step t, the frame before (silence at t = 0: its sounding notes, then, in a model
that reads onsets, its struck notes; rollgen.models.onsets.level_inputs) and the bar position of frame t, and
gives features from which the NADE head predicts frame t: what it heard, and the position and the frame
before themselves, so "this pitch goes on sounding", the commonest event at 16th notes, is one weight.
`advance` reads a run of steps from a state and gives the state after it, so a piece can be scored a run
at a time and generated one step at a time at a cost per step that does not grow with its length; `call`
reads from the initial state (training).

Positions are int rows (step_in_beat, steps_per_beat, step_in_bar, steps_per_bar), as rollgen.music.meter
gives them; `PositionFeatures` turns them into the numbers the networks read.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from rollgen.models import key_summary
from rollgen.models.attention import RelativeAttention
from rollgen.music.roll import NUM_PITCHES

BEAT_SLOTS = 16  # one-hot slots for the step within the beat (16 = a half-note beat of 32nd notes)
BAR_SLOTS = 12  # one-hot slots for the beat within the bar (12/8 has 4, 12/4 has 12)
POSITION_FEATURES = BEAT_SLOTS + BAR_SLOTS + 2
ACTIVATIONS = ("relu", "gelu")  # the Transformer's feed-forward network's, as train.transformernade.activation


@keras.utils.register_keras_serializable(package="rollgen")
class PositionFeatures(layers.Layer):
    """Bar positions (..., 4) as features (..., 30): the step within the beat and the beat within the bar,
    one-hot (clipped to the last slot), and the phase within the bar as a sine and a cosine."""

    def call(self, positions):
        positions = ops.cast(positions, "int32")
        step_in_beat, steps_per_beat = positions[..., 0], ops.maximum(positions[..., 1], 1)
        step_in_bar, steps_per_bar = positions[..., 2], ops.maximum(positions[..., 3], 1)
        beat = ops.minimum(step_in_bar // steps_per_beat, BAR_SLOTS - 1)
        phase = 2 * math.pi * ops.cast(step_in_bar, "float32") / ops.cast(steps_per_bar, "float32")
        return ops.concatenate(
            [
                ops.one_hot(ops.minimum(step_in_beat, BEAT_SLOTS - 1), BEAT_SLOTS),
                ops.one_hot(beat, BAR_SLOTS),
                ops.stack([ops.sin(phase), ops.cos(phase)], axis=-1),
            ],
            axis=-1,
        )

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], POSITION_FEATURES)


class SequenceEncoder(layers.Layer):
    """(previous frames (batch, steps, 2 x pitches: sounding, then struck), positions (batch, steps, 4)) -> features
    (batch, steps, F).

    `packs`: whether training may pack several stretches into one row (rollgen.models.batches.packed_rows) and pass
    `segments` (batch, steps) to tell them apart; an encoder that cannot keep them apart (a recurrent one
    carries its state along the row) is given one stretch per row and ignores `segments`.
    """

    packs = False
    steps_per_read = 512  # steps read per `advance` call when a whole piece is scored

    def initial_state(self, batch_size) -> list:
        raise NotImplementedError

    def advance(self, previous, positions, state, training=None):
        """Features for the steps read after `state`, and the state after them."""
        raise NotImplementedError

    def call(self, inputs, training=None, segments=None, counts=None):
        previous, positions = inputs  # `counts`: the key counts training batches carry, for encoders that read them
        features, _ = self.advance(previous, positions, self.initial_state(ops.shape(previous)[0]), training)
        return features


@keras.utils.register_keras_serializable(package="rollgen")
class LstmEncoder(SequenceEncoder):
    """RNN-NADE's recurrent part: LSTM layers over the frames and their bar positions."""

    def __init__(self, units: int, depth: int, dropout: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.depth, self.dropout_rate = units, depth, dropout
        self.positions = PositionFeatures()
        self.lstms = [layers.LSTM(units, return_sequences=True, return_state=True) for _ in range(depth)]
        self.dropout = layers.Dropout(dropout)

    def build(self, input_shape) -> None:
        size = int(input_shape[0][-1]) + POSITION_FEATURES
        for lstm in self.lstms:
            lstm.build((None, None, size))
            size = self.units
        self.built = True

    def initial_state(self, batch_size) -> list:
        return [ops.zeros((batch_size, self.units)) for _ in range(2 * self.depth)]

    def advance(self, previous, positions, state, training=None):
        where = self.positions(positions)
        x = ops.concatenate([previous, where], axis=-1)
        after = []
        for number, lstm in enumerate(self.lstms):
            x, hidden, cell = lstm(self.dropout(x, training=training), initial_state=state[2 * number : 2 * number + 2])
            after += [hidden, cell]
        return ops.concatenate([self.dropout(x, training=training), where, previous], axis=-1), after

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "depth": self.depth, "dropout": self.dropout_rate}


@keras.utils.register_keras_serializable(package="rollgen")
class PitchEncoder(SequenceEncoder):
    """Interval patterns learnt once for every pitch: tied parallel networks (Johnson, 2017). At every pitch
    the same small LSTM recurs over time, reading what sounded around that pitch in the frame before (a
    convolution along the pitch axis, two octaves wide), the pitch's class and register, and the bar
    position; its 4 features per pitch, side by side, let the NADE head place the patterns in register.
    The LSTM's batch is pieces x pitches, so its weights are shared by all 106. The frame before comes in
    `channels` parts of `pitches` columns (sounding, then struck: two channels per pitch for the convolution;
    a model saved before onsets reads one)."""

    def __init__(self, pitches: int, units: int, filters: int, dropout: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pitches, self.units, self.filters, self.dropout_rate = pitches, units, filters, dropout
        self.positions = PositionFeatures()
        self.position_channels = layers.Dense(8)
        self.around = layers.Conv1D(filters, 25, padding="same", activation="relu")  # +-12 semitones
        self.lstm = layers.LSTM(units, return_sequences=True, return_state=True)
        self.narrow = layers.Dense(4, activation="relu")
        self.dropout = layers.Dropout(dropout)

    def build(self, input_shape) -> None:
        self.channels = int(input_shape[0][-1]) // self.pitches
        self.position_channels.build((None, POSITION_FEATURES))
        self.around.build((None, self.pitches, self.channels))
        self.lstm.build((None, None, self.filters + PITCH_FEATURES + 8))
        self.narrow.build((None, self.units))
        self.built = True

    def initial_state(self, batch_size) -> list:
        return [ops.zeros((batch_size * self.pitches, self.units)) for _ in range(2)]

    def advance(self, previous, positions, state, training=None):
        batch, steps = ops.shape(previous)[0], ops.shape(previous)[1]
        where = self.positions(positions)
        heard = self.dropout(previous, training=training)
        by_pitch = ops.transpose(ops.reshape(heard, (-1, self.channels, self.pitches)), (0, 2, 1))
        around = ops.reshape(self.around(by_pitch), (batch, steps, self.pitches, -1))
        identity = ops.broadcast_to(pitch_features(self.pitches), (batch, steps, self.pitches, PITCH_FEATURES))
        when = ops.broadcast_to(self.position_channels(where)[:, :, None, :], (batch, steps, self.pitches, 8))
        x = ops.concatenate([around, identity, when], axis=-1)  # (batch, steps, pitches, channels)
        x = ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (batch * self.pitches, steps, ops.shape(x)[-1]))
        x, hidden, cell = self.lstm(x, initial_state=state)
        x = ops.transpose(ops.reshape(x, (batch, self.pitches, steps, self.units)), (0, 2, 1, 3))
        features = ops.reshape(self.narrow(x), (batch, steps, self.pitches * 4))
        return ops.concatenate([self.dropout(features, training=training), where, previous], axis=-1), [hidden, cell]

    def get_config(self) -> dict:
        sizes = dict(pitches=self.pitches, units=self.units, filters=self.filters)
        return {**super().get_config(), **sizes, "dropout": self.dropout_rate}


PITCH_FEATURES = 13  # pitch class one-hot, and the register from 0 (lowest row) to 1


def pitch_features(pitches: int):
    """(pitches, 13): each row's pitch class one-hot (row 0 = MIDI 21, an A) and its register in 0..1."""
    pitch_class = ops.convert_to_tensor(key_summary.class_matrix(pitches))
    register = ops.cast(ops.arange(pitches), "float32")[:, None] / max(pitches - 1, 1)
    return ops.concatenate([pitch_class, register], axis=-1)


@keras.utils.register_keras_serializable(package="rollgen")
class TransformerEncoder(SequenceEncoder):
    """A causal Transformer over frames: each step attends to itself and the `window` - 1 steps before it
    (Keras MultiHeadAttention with a causal, banded mask). No absolute position embedding: the bar position is
    an input, and the mask orders the steps, so a piece may run longer than anything seen in training. The
    state is each layer's last `window` - 1 inputs, so a generated step costs the same at step 10 or 10,000.
    It packs: in training, a step attends only to steps of its own stretch (`segments`). With `key_summary`,
    each step also reads the pitch classes heard since the piece began (rollgen.models.key_summary), carried
    in the state past the span attention reaches."""

    packs = True

    @property
    def steps_per_read(self) -> int:
        """`window` steps read at once attend to themselves and the `window` - 1 cached steps before them:
        longer reads compute masked scores for keys they never use (512 steps: ~4x slower than 64)."""
        return self.window

    def __init__(
        self,
        width: int,
        heads: int,
        depth: int,
        window: int,
        dropout: float,
        expansion: int,
        activation: str,
        attention_dropout: float,
        relative: bool,
        noise: float = 0.0,
        key_summary: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.width, self.heads, self.depth, self.window, self.dropout_rate = width, heads, depth, window, dropout
        self.expansion = expansion  # the feed-forward network's width, in multiples of `width`
        self.activation = activation  # the feed-forward network's (ACTIVATIONS)
        self.attention_dropout = attention_dropout  # dropout on the attention weights
        self.relative = relative  # a learnt bias per head and distance on the attention scores (RelativeAttention)
        self.noise = noise  # in training, the chance of a stray note per silent pitch of a sounding frame read
        self.noise_seeds = keras.random.SeedGenerator() if noise else None  # from the seed training sets
        self.key_summary = key_summary  # read the pitch classes heard so far (rollgen.models.key_summary)
        self.positions = PositionFeatures()
        self.embed = layers.Dense(width)
        # One pre-norm block per layer: attention, then a feed-forward network, each added to its input.
        self.attention_norms = [layers.LayerNormalization() for _ in range(depth)]
        self.attentions = [self._attention() for _ in range(depth)]
        self.feed_forward_norms = [layers.LayerNormalization() for _ in range(depth)]
        self.expands = [layers.Dense(expansion * width, activation=activation) for _ in range(depth)]
        self.contracts = [layers.Dense(width) for _ in range(depth)]
        self.final_norm = layers.LayerNormalization()
        self.dropout = layers.Dropout(dropout)

    def _attention(self) -> layers.Layer:
        if self.relative:
            return RelativeAttention(self.heads, self.width // self.heads, self.window, self.attention_dropout)
        return layers.MultiHeadAttention(self.heads, self.width // self.heads, dropout=self.attention_dropout)

    def build(self, input_shape) -> None:
        step = (None, None, self.width)
        summary = key_summary.CLASSES if self.key_summary else 0
        self.embed.build((None, None, int(input_shape[0][-1]) + POSITION_FEATURES + summary))
        for number in range(self.depth):
            self.attention_norms[number].build(step)
            self.attentions[number].build(step, step, step)
            self.feed_forward_norms[number].build(step)
            self.expands[number].build(step)
            self.contracts[number].build((None, None, self.expansion * self.width))
        self.final_norm.build(step)
        self.built = True

    def initial_state(self, batch_size) -> list:
        kept = self.window - 1
        caches = [ops.zeros((batch_size, kept, self.width)) for _ in range(self.depth)]
        real = [ops.zeros((batch_size, kept))]  # which cached steps hold a step read
        counts = [ops.zeros((batch_size, key_summary.CLASSES))] if self.key_summary else []
        return caches + real + counts

    def advance(self, previous, positions, state, training=None, segments=None, counts=None):
        """With `state` None, reads from nothing before (training; `segments`, when given, keep a packed row's
        stretches apart; `counts`, the key counts of the piece before each step, rollgen.models.batches);
        otherwise attends into the cached steps and counts on from the state's key counts.
        The state: each layer's cached inputs, which cached steps are real, and the key counts (key_summary)."""
        where = self.positions(positions)
        heard = self.spurious_notes(previous) if training and self.noise else previous
        read = [self.dropout(heard, training=training), where]
        if self.key_summary:
            if counts is None:
                start = ops.zeros((ops.shape(previous)[0], key_summary.CLASSES)) if state is None else state[-1]
                pitches = int(previous.shape[-1]) // 2  # sounding, then struck: models with onsets alone read it
                counts = key_summary.running_counts(previous[..., :pitches], start)
            read.append(key_summary.shares(counts))
        x = self.embed(ops.concatenate(read, axis=-1))
        steps = ops.shape(x)[1]
        query = ops.arange(steps)[:, None]
        if state is None:
            key = ops.arange(steps)[None, :]
            mask = (key <= query) & (query - key < self.window)
            mask = ops.broadcast_to(mask[None], (ops.shape(x)[0], steps, steps))
            if segments is not None:
                mask = mask & (segments[:, :, None] == segments[:, None, :])
        else:
            kept = self.window - 1
            valid = ops.concatenate([state[self.depth], ops.ones((ops.shape(x)[0], steps))], axis=1) > 0.5
            key = ops.arange(kept + steps)[None, :] - kept  # cached steps have negative indices
            mask = ((key <= query) & (query - key < self.window))[None] & valid[:, None, :]
        after = []
        for number in range(self.depth):
            normed = self.attention_norms[number](x)
            keys = normed if state is None else ops.concatenate([state[number], normed], axis=1)
            if self.relative:
                attended = self.attentions[number](normed, keys, query - key, mask, training=training)
            else:
                attended = self.attentions[number](normed, keys, keys, attention_mask=mask, training=training)
            x = x + self.dropout(attended, training=training)
            expanded = self.expands[number](self.feed_forward_norms[number](x))
            x = x + self.dropout(self.contracts[number](expanded), training=training)
            if state is not None:
                after.append(keys[:, -(self.window - 1) :])
        if state is not None:
            after.append(ops.cast(valid, "float32")[:, -(self.window - 1) :])
            after += [counts[:, -1]] if self.key_summary else []
        return ops.concatenate([self.final_norm(x), where, previous], axis=-1), after

    def spurious_notes(self, previous):
        """`previous` with notes added at random (`noise` per pitch of a frame where something sounds: a rest
        stays a rest), struck where the frames carry onsets: what attention reads in training, so that a stray
        note in what a model generated itself does not move it to another key (its pieces wandered out of key;
        docs/results.md). The frame before, as the head reads it to hold notes, stays the true one."""
        width = int(previous.shape[-1])
        pitches = NUM_PITCHES if width % NUM_PITCHES == 0 else width  # the roll's pitches, once or twice
        chance = keras.random.uniform(ops.shape(previous[..., :pitches]), seed=self.noise_seeds)
        sounds = ops.max(previous[..., :pitches], axis=-1, keepdims=True)  # silence stays silent
        added = ops.cast(chance < self.noise, previous.dtype) * sounds
        return ops.maximum(previous, ops.concatenate([added] * (width // pitches), axis=-1))

    def call(self, inputs, training=None, segments=None, counts=None):
        previous, positions = inputs
        return self.advance(previous, positions, None, training, segments, counts)[0]

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            **dict(width=self.width, heads=self.heads, depth=self.depth, window=self.window, expansion=self.expansion),
            "dropout": self.dropout_rate,
            "activation": self.activation,
            "attention_dropout": self.attention_dropout,
            "relative": self.relative,
            "noise": self.noise,
            "key_summary": self.key_summary,
        }

    @classmethod
    def from_config(cls, config: dict) -> TransformerEncoder:
        """The encoder a saved config describes. Files saved before an option existed load as they were
        trained: a feed-forward network 4 x `width` wide (before `expansion`), GELU and dropout on the
        attention weights at the `dropout` rate (before `activation` and `attention_dropout`), attention
        without a distance bias (before `relative`)."""
        earlier = {"expansion": 4, "activation": "gelu", "attention_dropout": config["dropout"], "relative": False}
        return cls(**{**earlier, **config})
