"""Sequence models behind the FrameModel interface: they read the whole piece and carry their state
(rollgen.models.encoders), and tell a struck note from a held one (rollgen.models.onsets)."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from rollgen.data.archive import Sequences
from rollgen.models import batches
from rollgen.models.interface import PREDICT_FRAMES, Batching, FrameModel, Prediction, Taught
from rollgen.models.nade import Decoder
from rollgen.models.onsets import OnsetHead, as_levels, level_inputs, to_levels
from rollgen.models.sampling import Sampler
from rollgen.music.meter import next_position
from rollgen.music.roll import sounding

STEPS_PER_CALL = 64  # steps `generate` draws per compiled call


@dataclass
class SequenceState:
    """Where generation stands: the encoder's state, and the next step's input (last frame, its position)."""

    encoder: list
    previous: np.ndarray  # uint8 (pieces, pitches): the levels of the frame before the one to generate
    position: np.ndarray  # (pieces, 4): the position of the frame to generate


class SequenceModel(FrameModel):
    """Models that read the whole piece and carry their state (rollgen.models.encoders): trained on stretches of
    `sequence_steps` frames, every frame predicted at once; scored over whole pieces; generated one step at a
    time from the state the primer left.

    A model saved before onsets (an encoder reading the sounding notes alone, no onset head) still scores and
    generates: it reads the sounding part of its input, and strikes a note only where its pitch starts to sound.
    """

    family = "sequence"

    def __init__(self, model: keras.Model, jit_compile: bool | None = None) -> None:
        # XLA halves a generation step on a CPU (~1 s to compile); on a GPU Keras runs its LSTMs with cuDNN,
        # which XLA does not compile, so there the step stays a plain tf.function unless asked.
        if jit_compile is None:
            jit_compile = not tf.config.list_physical_devices("GPU")
        super().__init__(model, jit_compile)
        self.encoder = model.get_layer("encoder")
        self.decoder = Decoder(self.head)
        onset_heads = [layer for layer in model.layers if isinstance(layer, OnsetHead)]
        self.onset_head: OnsetHead | None = onset_heads[0] if onset_heads else None
        self.draws_onsets = self.onset_head is not None
        self.input_width = int(model.inputs[0].shape[-1])  # 2 x pitches; pitches for a model saved before onsets
        self.advance = tf.function(
            lambda previous, positions, state: self.encoder.advance(previous, positions, state), reduce_retracing=True
        )
        pitches = self.head.pitches

        def draw(previous, position, state, levels, temperature, onset_temperature):
            # previous: float levels (pieces, pitches); levels: the sampler's, for sounding then for onsets
            before = tf.concat([batches.sounding_tensor(previous), batches.struck_tensor(previous)], axis=-1)
            features, state = self.encoder.advance(before[:, None, : self.input_width], position[:, None], state)
            frame, probabilities = self.head.sample(features[:, 0], levels[:, :pitches], temperature)
            struck = self.onset_probabilities(features[:, 0], frame, before, onset_temperature) > levels[:, pitches:]
            new = frame * (1 - before[:, :pitches])  # struck for certain: sounding after silence
            return to_levels(frame, tf.maximum(new, tf.cast(struck, frame.dtype))), probabilities, state

        self.draw = tf.function(draw, jit_compile=jit_compile)

        def draw_steps(previous, positions, state, levels, count, temperature, onset_temperature):
            # The first `count` of the call's STEPS_PER_CALL steps, one model step each, in one compiled loop.
            def one_step(t, previous, state, frames):
                frame, _, state = draw(previous, positions[:, t], state, levels[:, t], temperature, onset_temperature)
                return t + 1, frame, state, tf.tensor_scatter_nd_update(frames, [[t]], frame[None])

            frames = tf.zeros_like(tf.transpose(levels[..., :pitches], (1, 0, 2)))  # (steps, pieces, pitches)
            _, previous, state, frames = tf.while_loop(
                lambda t, *_: t < count, one_step, (tf.constant(0), previous, state, frames)
            )
            return tf.transpose(frames, (1, 0, 2)), previous, state

        self.draw_steps = tf.function(draw_steps, jit_compile=jit_compile)

    def onset_probabilities(self, features, frame, previous, temperature=1.0):
        """P(struck) per pitch (..., pitches) given the features, the frame's sounding notes (0/1) and the frame
        before (its sounding notes first): the onset head's, tempered; 1 after silence and 0 where held
        on for a model without one."""
        if self.onset_head is not None:
            return self.onset_head([features, frame, previous], temperature=temperature)
        return frame * (1 - previous[..., : frame.shape[-1]])

    def training_batches(self, data: Sequences, batching: Batching, epoch: int) -> tf.data.Dataset:
        return batches.stretch_batches(data.frames, data.positions, data.offsets, batching.sequence_steps,
                                       batching.batch_size, batching.seed or 0, epoch, batching.transpose,
                                       pack=self.encoder.packs)  # fmt: skip

    def batch_count(self, data: Sequences, batching: Batching) -> int:
        _, placed = batches.stretch_rows(
            data.offsets, batching.sequence_steps, batching.seed or 0, 0, self.encoder.packs
        )
        return -(-batches.row_count(placed) // batching.batch_size)

    def teacher_forced(self, batch, training: bool) -> Taught:
        previous, positions, frames, struck, mask, segments, counts = batch
        heard = [previous[..., : self.input_width], positions]
        features = self.encoder(heard, segments=segments, counts=counts, training=training)
        probabilities = self.head([features, frames])
        pitches = frames.shape[-1]
        rows = lambda tensor: tf.reshape(tensor, [-1, pitches])  # noqa: E731
        if self.onset_head is None:
            return Taught(rows(probabilities), rows(frames), tf.reshape(mask, [-1]))
        onset_probabilities = self.onset_head([features, frames, previous])
        uncertain = frames * previous[..., :pitches]
        return Taught(rows(probabilities), rows(frames), tf.reshape(mask, [-1]),
                      rows(onset_probabilities), rows(struck), rows(uncertain))  # fmt: skip

    def features(self, previous: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Encoder features (pieces, steps, F) of padded sequences (`previous`: rollgen.models.onsets.level_inputs),
        read the encoder's steps_per_read steps at a time with the state carried."""
        read = self.encoder.steps_per_read
        state = self.encoder.initial_state(len(previous))
        parts = []
        for first in range(0, previous.shape[1], read):
            heard = previous[:, first : first + read, : self.input_width]
            features, state = self.advance(tf.constant(heard), tf.constant(positions[:, first : first + read]), state)
            parts.append(np.asarray(features))
        return np.concatenate(parts, axis=1)

    def predict(self, data: Sequences, samples: int = 0, seed: int = 0) -> Prediction:
        rng = np.random.default_rng(seed)
        lengths = np.diff(data.offsets)
        order = np.argsort(-lengths, kind="stable")  # similar lengths together: little padding
        probabilities = np.zeros(data.frames.shape, np.float32)
        predicted = np.zeros(data.frames.shape, np.float32)
        struck = np.zeros(data.frames.shape, np.float32)
        group: list[int] = []
        for number, sequence in enumerate(order):
            group.append(int(sequence))
            if number + 1 < len(order) and (len(group) + 1) * lengths[group[0]] <= PREDICT_FRAMES:
                continue
            previous, positions, truth, real = _padded(data, group)
            features = self.features(previous, positions)[real]
            truth, previous = truth[real], previous[real]
            rows = np.concatenate([np.arange(data.offsets[s], data.offsets[s + 1]) for s in group])
            probabilities[rows] = np.asarray(self.head([features, truth]))
            struck[rows] = np.asarray(self.onset_probabilities(features, truth, previous))
            predicted[rows] = self.decoder.marginals(features, samples, rng)
            group = []
        return Prediction(probabilities, predicted, struck)

    def start(self, primer: np.ndarray, positions: np.ndarray) -> SequenceState:
        primer = as_levels(primer, time_axis=1)
        pieces, steps, pitches = primer.shape
        positions = np.asarray(positions, np.int32)
        state = self.encoder.initial_state(pieces)
        previous = np.zeros((pieces, pitches), np.uint8)
        if steps:
            before = level_inputs(np.concatenate([previous[:, None], primer[:, :-1]], axis=1))[..., : self.input_width]
            _, state = self.advance(tf.constant(before), tf.constant(positions[:, :steps]), state)
            previous = primer[:, -1]
        return SequenceState(list(state), previous, positions[:, steps])

    def step(self, state: SequenceState, sampler: Sampler, step: int, rng: np.random.Generator):
        levels = _levels(sampler, state.previous.shape, step, rng)
        temperatures = _temperatures(sampler)
        previous = tf.constant(state.previous.astype(np.float32))
        frame, probabilities, encoder_state = self.draw(
            previous, tf.constant(state.position), state.encoder, tf.constant(levels), *temperatures
        )
        frame = frame.numpy().astype(np.uint8)
        return frame, probabilities.numpy(), SequenceState(list(encoder_state), frame, next_position(state.position))

    def generate(self, state: SequenceState, sampler: Sampler, steps: int, rng: np.random.Generator, first_step=0):
        """As `step` `steps` times, STEPS_PER_CALL steps per compiled call: the levels and positions of a call's
        steps are made first, in the order `step` makes them, then one call draws their frames (a call per
        step costs more than the step itself: ~2x for one piece on a CPU). Every call has one shape, so the
        loop is compiled once."""
        if steps < 1:
            raise ValueError(f"generate takes 1 step or more, not {steps}")
        pieces, pitches = state.previous.shape
        temperatures = _temperatures(sampler)
        frames = np.zeros((pieces, steps, pitches), np.uint8)
        for first in range(0, steps, STEPS_PER_CALL):
            count = min(STEPS_PER_CALL, steps - first)
            levels = np.zeros((pieces, STEPS_PER_CALL, 2 * pitches), np.float32)
            positions = np.zeros((pieces, STEPS_PER_CALL, state.position.shape[-1]), np.int32)
            position = state.position
            for t in range(count):
                levels[:, t] = _levels(sampler, (pieces, pitches), first_step + first + t, rng)
                positions[:, t], position = position, next_position(position)
            drawn, previous, encoder_state = self.draw_steps(
                tf.constant(state.previous.astype(np.float32)),
                tf.constant(positions),
                state.encoder,
                tf.constant(levels),
                tf.constant(count),
                *temperatures,
            )
            frames[:, first : first + count] = drawn.numpy()[:, :count]
            state = SequenceState(list(encoder_state), previous.numpy().astype(np.uint8), position)
        return frames, state


def _temperatures(sampler: Sampler) -> tuple:
    """The sampler's temperatures for the sounding notes and for the onsets, as the compiled draws read them."""
    return tf.constant(sampler.temperature, tf.float32), tf.constant(sampler.onset_temperature, tf.float32)


def _levels(sampler: Sampler, shape: tuple[int, int], step: int, rng: np.random.Generator) -> np.ndarray:
    """A step's levels from the sampler (pieces, 2 x pitches): for the sounding notes, then for the onsets."""
    return np.concatenate([sampler.levels(shape, step, rng), sampler.onset_levels(shape, step, rng)], axis=-1)


def _padded(data: Sequences, group: list[int]):
    """(previous frames as level_inputs, positions, true sounding frames, real-step mask) of some sequences,
    padded to the longest."""
    lengths = [int(data.offsets[s + 1] - data.offsets[s]) for s in group]
    steps, pitches = max(lengths), data.frames.shape[1]
    levels = np.zeros((len(group), steps, pitches), np.uint8)
    positions = np.zeros((len(group), steps, data.positions.shape[1]), np.int32)
    real = np.zeros((len(group), steps), bool)
    for row, (sequence, length) in enumerate(zip(group, lengths)):
        start = data.offsets[sequence]
        levels[row, :length] = data.frames[start : start + length]
        positions[row, :length] = data.positions[start : start + length]
        real[row, :length] = True
    previous = level_inputs(np.concatenate([np.zeros_like(levels[:, :1]), levels[:, :-1]], axis=1))
    return previous, positions, sounding(levels).astype(np.float32), real
