"""Sequence models behind the FrameModel interface: they read the whole piece and carry their state
(rollgen.models.encoders)."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from rollgen.data.archive import Sequences, sounding
from rollgen.models import batches
from rollgen.models.interface import PREDICT_FRAMES, Batching, FrameModel, Prediction
from rollgen.models.nade import Decoder
from rollgen.models.sampling import Sampler
from rollgen.music.meter import next_position

STEPS_PER_CALL = 64  # steps `generate` draws per compiled call


@dataclass
class SequenceState:
    """Where generation stands: the encoder's state, and the next step's input (last frame, its position)."""

    encoder: list
    previous: np.ndarray  # (pieces, pitches): the frame before the one to generate
    position: np.ndarray  # (pieces, 4): the position of the frame to generate


class SequenceModel(FrameModel):
    """Models that read the whole piece and carry their state (rollgen.models.encoders): trained on stretches of
    `sequence_steps` frames, every frame predicted at once; scored over whole pieces; generated one step at a
    time from the state the primer left."""

    family = "sequence"

    def __init__(self, model: keras.Model, jit_compile: bool | None = None) -> None:
        # XLA halves a generation step on a CPU (~1 s to compile); on a GPU Keras runs its LSTMs with cuDNN,
        # which XLA does not compile, so there the step stays a plain tf.function unless asked.
        if jit_compile is None:
            jit_compile = not tf.config.list_physical_devices("GPU")
        super().__init__(model, jit_compile)
        self.encoder = model.get_layer("encoder")
        self.decoder = Decoder(self.head)
        self.advance = tf.function(
            lambda previous, positions, state: self.encoder.advance(previous, positions, state), reduce_retracing=True
        )

        def draw(previous, position, state, levels, temperature):
            features, state = self.encoder.advance(previous[:, None], position[:, None], state)
            frame, probabilities = self.head.sample(features[:, 0], levels, temperature)
            return frame, probabilities, state

        self.draw = tf.function(draw, jit_compile=jit_compile)

        def draw_steps(previous, positions, state, levels, count, temperature):
            # The first `count` of the call's STEPS_PER_CALL steps, one model step each, in one compiled loop.
            def one_step(t, previous, state, frames):
                frame, _, state = draw(previous, positions[:, t], state, levels[:, t], temperature)
                return t + 1, frame, state, tf.tensor_scatter_nd_update(frames, [[t]], frame[None])

            frames = tf.zeros_like(tf.transpose(levels, (1, 0, 2)))  # (steps, pieces, pitches)
            _, previous, state, frames = tf.while_loop(
                lambda t, *_: t < count, one_step, (tf.constant(0), previous, state, frames)
            )
            return tf.transpose(frames, (1, 0, 2)), previous, state

        self.draw_steps = tf.function(draw_steps, jit_compile=jit_compile)

    def training_batches(self, data: Sequences, batching: Batching, epoch: int) -> tf.data.Dataset:
        return batches.stretch_batches(data.frames, data.positions, data.offsets, batching.sequence_steps,
                                       batching.batch_size, batching.seed or 0, epoch, batching.transpose,
                                       pack=self.encoder.packs)  # fmt: skip

    def batch_count(self, data: Sequences, batching: Batching) -> int:
        _, placed = batches.stretch_rows(
            data.offsets, batching.sequence_steps, batching.seed or 0, 0, self.encoder.packs
        )
        return -(-batches.row_count(placed) // batching.batch_size)

    def teacher_forced(self, batch, training: bool):
        previous, positions, frames, mask, segments = batch
        features = self.encoder([previous, positions], segments=segments, training=training)
        probabilities = self.head([features, frames])
        pitches = frames.shape[-1]
        return tf.reshape(probabilities, [-1, pitches]), tf.reshape(frames, [-1, pitches]), tf.reshape(mask, [-1])

    def features(self, previous: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Encoder features (pieces, steps, F) of padded sequences, read the encoder's steps_per_read steps at a
        time with the state carried."""
        read = self.encoder.steps_per_read
        state = self.encoder.initial_state(len(previous))
        parts = []
        for first in range(0, previous.shape[1], read):
            features, state = self.advance(
                tf.constant(previous[:, first : first + read]), tf.constant(positions[:, first : first + read]), state
            )
            parts.append(np.asarray(features))
        return np.concatenate(parts, axis=1)

    def predict(self, data: Sequences, samples: int = 0, seed: int = 0) -> Prediction:
        rng = np.random.default_rng(seed)
        lengths = np.diff(data.offsets)
        order = np.argsort(-lengths, kind="stable")  # similar lengths together: little padding
        probabilities = np.zeros(data.frames.shape, np.float32)
        predicted = np.zeros(data.frames.shape, np.float32)
        group: list[int] = []
        for number, sequence in enumerate(order):
            group.append(int(sequence))
            if number + 1 < len(order) and (len(group) + 1) * lengths[group[0]] <= PREDICT_FRAMES:
                continue
            previous, positions, truth, real = _padded(data, group)
            features = self.features(previous, positions)[real]
            truth = truth[real]
            rows = np.concatenate([np.arange(data.offsets[s], data.offsets[s + 1]) for s in group])
            probabilities[rows] = np.asarray(self.head([features, truth]))
            predicted[rows] = self.decoder.marginals(features, samples, rng)
            group = []
        return Prediction(probabilities, predicted)

    def start(self, primer: np.ndarray, positions: np.ndarray) -> SequenceState:
        primer = np.asarray(primer, np.float32)
        pieces, steps, pitches = primer.shape
        positions = np.asarray(positions, np.int32)
        state = self.encoder.initial_state(pieces)
        previous = np.zeros((pieces, pitches), np.float32)
        if steps:
            before = np.concatenate([previous[:, None], primer[:, :-1]], axis=1)
            _, state = self.advance(tf.constant(before), tf.constant(positions[:, :steps]), state)
            previous = primer[:, -1]
        return SequenceState(list(state), previous, positions[:, steps])

    def step(self, state: SequenceState, sampler: Sampler, step: int, rng: np.random.Generator):
        levels = sampler.levels(state.previous.shape, step, rng)
        temperature = tf.constant(sampler.temperature, tf.float32)
        frame, probabilities, encoder_state = self.draw(
            tf.constant(state.previous), tf.constant(state.position), state.encoder, tf.constant(levels), temperature
        )
        frame = frame.numpy().astype(np.uint8)
        after = SequenceState(list(encoder_state), frame.astype(np.float32), next_position(state.position))
        return frame, probabilities.numpy(), after

    def generate(self, state: SequenceState, sampler: Sampler, steps: int, rng: np.random.Generator, first_step=0):
        """As `step` `steps` times, STEPS_PER_CALL steps per compiled call: the levels and positions of a call's
        steps are made first, in the order `step` makes them, then one call draws their frames (a call per
        step costs more than the step itself: ~2x for one piece on a CPU). Every call has one shape, so the
        loop is compiled once."""
        if steps < 1:
            raise ValueError(f"generate takes 1 step or more, not {steps}")
        pieces, pitches = state.previous.shape
        temperature = tf.constant(sampler.temperature, tf.float32)
        frames = np.zeros((pieces, steps, pitches), np.uint8)
        for first in range(0, steps, STEPS_PER_CALL):
            count = min(STEPS_PER_CALL, steps - first)
            levels = np.zeros((pieces, STEPS_PER_CALL, pitches), np.float32)
            positions = np.zeros((pieces, STEPS_PER_CALL, state.position.shape[-1]), np.int32)
            position = state.position
            for t in range(count):
                levels[:, t] = sampler.levels((pieces, pitches), first_step + first + t, rng)
                positions[:, t], position = position, next_position(position)
            drawn, previous, encoder_state = self.draw_steps(
                tf.constant(state.previous),
                tf.constant(positions),
                state.encoder,
                tf.constant(levels),
                tf.constant(count),
                temperature,
            )
            frames[:, first : first + count] = drawn.numpy()[:, :count]
            state = SequenceState(list(encoder_state), previous.numpy(), position)
        return frames, state


def _padded(data: Sequences, group: list[int]):
    """(previous frames, positions, true frames, real-step mask) of some sequences, padded to the longest."""
    lengths = [int(data.offsets[s + 1] - data.offsets[s]) for s in group]
    steps, pitches = max(lengths), data.frames.shape[1]
    truth = np.zeros((len(group), steps, pitches), np.float32)
    positions = np.zeros((len(group), steps, data.positions.shape[1]), np.int32)
    real = np.zeros((len(group), steps), bool)
    for row, (sequence, length) in enumerate(zip(group, lengths)):
        start = data.offsets[sequence]
        truth[row, :length] = sounding(data.frames[start : start + length])
        positions[row, :length] = data.positions[start : start + length]
        real[row, :length] = True
    previous = np.concatenate([np.zeros_like(truth[:, :1]), truth[:, :-1]], axis=1)
    return previous, positions, truth, real
