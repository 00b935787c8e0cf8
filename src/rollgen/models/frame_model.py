"""One interface to every model: what training, evaluation, generation, the MLflow model and the CLI ask of
a model, whatever its family (rollgen.models.builders), so none of them asks what kind of model it holds.

    model = frame_model.load("models/model.keras")
    prediction = model.predict(test)              # every frame of every piece: its scores, and the guess
    state = model.start(primer, positions)        # the primer is read once ...
    frame, probabilities, state = model.step(state, sampler, 0, rng)  # ... then one step per new frame
    frames, state = model.generate(state, sampler, 64, rng, first_step=1)  # ... or many steps at once

Frames are 0/1 (or 0..1) floats over the 106 pitches; positions are int rows (rollgen.music.meter).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from rollgen.data.archive import Sequences
from rollgen.models import batches
from rollgen.models.builders import entry, load_model, model_info
from rollgen.models.nade import Decoder, NadeHead
from rollgen.models.sampling import Sampler, check_autoregressive_caps

PREDICT_FRAMES = 16_384  # frames scored per model call in `predict`
GENERATED_CHUNK = 64  # steps a sequence model generates per compiled call


@dataclass(frozen=True)
class Batching:
    """How training examples are cut (the `train` params that shape batches)."""

    batch_size: int
    seed: int | None = None
    transpose: int = 0  # shift each example by up to this many semitones
    sequence_steps: int = 128  # sequence models: frames per stretch


@dataclass(frozen=True)
class Prediction:
    """A model's scores for every frame of a split, in archive order."""

    probabilities: np.ndarray  # float32 (frames, pitches): P(pitch sounds | context), given the true notes
    # below it for a NADE model, so their summed Bernoulli NLL is the model's exact frame NLL
    marginals: np.ndarray  # float32 (frames, pitches): P(pitch sounds | context), without seeing the frame (a
    # NADE's: the share of the frames drawn in which it sounds; greedily decoded, 0 or 1)

    @property
    def predicted(self) -> np.ndarray:
        """bool (frames, pitches): the frame the model predicts without seeing it (marginal above one half)."""
        return self.marginals > 0.5


class FrameModel:
    """A Keras next-frame model and the operations every caller needs."""

    @property
    def steps_per_quarter(self) -> int:
        """The grid it was trained on (4 = 16th notes, when the file does not say)."""
        return int(self.info.get("steps_per_quarter", 4))

    @property
    def grid(self) -> str:
        """How notes were put on that grid (rollgen.music.roll: nearest, or floor as the article)."""
        return str(self.info.get("grid", "nearest"))

    family = ""

    def __init__(self, model: keras.Model, jit_compile: bool = False) -> None:
        self.keras = model
        self.name = model.name
        self.jit_compile = jit_compile
        self.info: dict = {}  # what it was trained on (rollgen.models.builders.save_model), when loaded from a file
        heads = [layer for layer in model.layers if isinstance(layer, NadeHead)]
        self.head: NadeHead | None = heads[0] if heads else None

    def check(self, sampler: Sampler) -> None:
        """Raises ValueError where `sampler` cannot drive this model (note caps on a NADE model)."""
        if self.head is not None:
            check_autoregressive_caps(getattr(sampler, "max_notes", 0), getattr(sampler, "min_notes", 0))

    def training_batches(self, data: Sequences, batching: Batching, epoch: int) -> tf.data.Dataset:
        raise NotImplementedError

    def batch_count(self, data: Sequences, batching: Batching) -> int:
        raise NotImplementedError

    def teacher_forced(self, batch, training: bool):
        """(probabilities, targets, weights) of a training batch, one row per predicted frame; weights 0 mark
        padding (None: all count). Runs inside a compiled step."""
        raise NotImplementedError

    def predict(self, data: Sequences, samples: int = 0, seed: int = 0) -> Prediction:
        """Every frame of every sequence scored, the first from silence or the initial state. A NADE model's
        guess is decoded from `samples` draws per frame (0: greedily; see rollgen.models.nade.Decoder)."""
        raise NotImplementedError

    def start(self, primer: np.ndarray, positions: np.ndarray):
        """The state after reading `primer` (pieces, steps, pitches) in 0..1 once; `positions` (pieces, steps
        + 1, 4) are those of the primer's frames and of the first frame to generate."""
        raise NotImplementedError

    def step(
        self, state, sampler: Sampler, step: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, object]:
        """The next frame (pieces, pitches) of uint8 0/1 drawn by `sampler`, each pitch's probability (a
        NADE's: given the pitches drawn below it, untempered), and the state after the frame."""
        raise NotImplementedError

    def generate(
        self, state, sampler: Sampler, steps: int, rng: np.random.Generator, first_step: int = 0
    ) -> tuple[np.ndarray, object]:
        """`steps` new frames (pieces, steps, pitches) of uint8 0/1 and the state after them: what `steps` calls
        of `step` numbered from `first_step` draw, with the same random numbers."""
        if steps < 1:
            raise ValueError(f"generate takes 1 step or more, not {steps}")
        frames = []
        for step in range(first_step, first_step + steps):
            frame, _, state = self.step(state, sampler, step, rng)
            frames.append(frame)
        return np.stack(frames, axis=1), state


class WindowModel(FrameModel):
    """The article's family: a window of `context` frames predicts the next frame (or the one after, in
    article mode); before a piece's first frames the window holds silence."""

    family = "window"

    def __init__(self, model: keras.Model, jit_compile: bool = False) -> None:
        super().__init__(model, jit_compile)
        self.context = int(model.inputs[0].shape[1])
        if self.head is None:
            self.call = tf.function(lambda window: model(window, training=False), jit_compile=jit_compile)
        else:
            self.encoder = keras.Model(model.inputs[0], self.head.input[0])
            self.decoder = Decoder(self.head)

            def draw(window, levels, temperature):
                return self.head.sample(self.encoder(window, training=False), levels, temperature)

            self.draw = tf.function(draw, jit_compile=jit_compile)

    def _windows(self, data: Sequences, pad: bool) -> tuple[np.ndarray, np.ndarray]:
        frames, offsets = data.frames, data.offsets
        if pad:
            frames, offsets = batches.padded_sequences(frames, offsets, self.context + data.target_gap)
        return frames, batches.window_starts(offsets, self.context, data.target_gap)

    def training_batches(self, data: Sequences, batching: Batching, epoch: int) -> tf.data.Dataset:
        # Next mode trains on every frame, the first ones from silence; article mode keeps the article's windows.
        frames, starts = self._windows(data, pad=data.target_gap == 0)
        return batches.window_batches(frames, starts, self.context, data.target_gap, batching.batch_size,
                                      batching.seed, epoch, 1, batching.transpose)  # fmt: skip

    def batch_count(self, data: Sequences, batching: Batching) -> int:
        return -(-len(self._windows(data, pad=data.target_gap == 0)[1]) // batching.batch_size)

    def teacher_forced(self, batch, training: bool):
        x, y = batch
        probabilities = self.keras([x, y] if self.head is not None else x, training=training)
        return probabilities, y, None

    def predict(self, data: Sequences, samples: int = 0, seed: int = 0) -> Prediction:
        frames, starts = self._windows(data, pad=True)  # one window per frame: every frame is scored
        rng = np.random.default_rng(seed)
        within = np.arange(self.context)
        probabilities, predicted = [], []
        for first in range(0, len(starts), PREDICT_FRAMES // 8):
            chosen = starts[first : first + PREDICT_FRAMES // 8]
            windows = frames[chosen[:, None] + within].astype(np.float32) / 255.0
            truth = (frames[chosen + self.context + data.target_gap] > 127).astype(np.float32)
            if self.head is None:
                p = np.asarray(self.keras(windows, training=False))
                probabilities.append(p)
                predicted.append(p)
                continue
            features = self.encoder(windows, training=False)
            probabilities.append(np.asarray(self.head([features, truth])))
            predicted.append(self.decoder.marginals(features, samples, rng))
        return _joined(probabilities, predicted, data.frames.shape[1])

    def start(self, primer: np.ndarray, positions: np.ndarray) -> np.ndarray:
        primer = np.asarray(primer, np.float32)
        silence = np.zeros((len(primer), max(0, self.context - primer.shape[1]), primer.shape[2]), np.float32)
        return np.concatenate([silence, primer], axis=1)[:, -self.context :]

    def step(self, state: np.ndarray, sampler: Sampler, step: int, rng: np.random.Generator):
        if self.head is None:
            probabilities = self.call(tf.constant(state)).numpy()
            frame = sampler(probabilities, step, rng)
        else:
            levels = sampler.levels(state[:, 0].shape, step, rng)
            temperature = tf.constant(sampler.temperature, tf.float32)
            frame, probabilities = self.draw(tf.constant(state), tf.constant(levels), temperature)
            frame, probabilities = frame.numpy().astype(np.uint8), probabilities.numpy()
        return frame, probabilities, np.concatenate([state[:, 1:], frame[:, None].astype(np.float32)], axis=1)


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
            # The first `count` of the chunk's steps, one model step each, in one compiled loop.
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

    def features(self, previous: np.ndarray, positions: np.ndarray, chunk: int | None = None) -> np.ndarray:
        """Encoder features (pieces, steps, F) of padded sequences, read in chunks (the encoder's chunk_steps)
        with the state carried."""
        chunk = chunk or self.encoder.chunk_steps
        state = self.encoder.initial_state(len(previous))
        parts = []
        for first in range(0, previous.shape[1], chunk):
            features, state = self.advance(
                tf.constant(previous[:, first : first + chunk]), tf.constant(positions[:, first : first + chunk]), state
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
        from rollgen.music.meter import next_position

        levels = sampler.levels(state.previous.shape, step, rng)
        temperature = tf.constant(sampler.temperature, tf.float32)
        frame, probabilities, encoder_state = self.draw(
            tf.constant(state.previous), tf.constant(state.position), state.encoder, tf.constant(levels), temperature
        )
        frame = frame.numpy().astype(np.uint8)
        after = SequenceState(list(encoder_state), frame.astype(np.float32), next_position(state.position))
        return frame, probabilities.numpy(), after

    def generate(self, state: SequenceState, sampler: Sampler, steps: int, rng: np.random.Generator, first_step=0):
        """As `step` `steps` times, in compiled chunks of GENERATED_CHUNK steps: the levels and positions of a
        chunk are made first, in the order `step` makes them, then one call draws its frames (a call per
        step costs more than the step itself: ~2x for one piece on a CPU). Every chunk has one shape, so the
        loop is compiled once."""
        from rollgen.music.meter import next_position

        if steps < 1:
            raise ValueError(f"generate takes 1 step or more, not {steps}")
        pieces, pitches = state.previous.shape
        temperature = tf.constant(sampler.temperature, tf.float32)
        frames = np.zeros((pieces, steps, pitches), np.uint8)
        for first in range(0, steps, GENERATED_CHUNK):
            count = min(GENERATED_CHUNK, steps - first)
            levels = np.zeros((pieces, GENERATED_CHUNK, pitches), np.float32)
            positions = np.zeros((pieces, GENERATED_CHUNK, state.position.shape[-1]), np.int32)
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
        truth[row, :length] = data.frames[start : start + length] > 127
        positions[row, :length] = data.positions[start : start + length]
        real[row, :length] = True
    previous = np.concatenate([np.zeros_like(truth[:, :1]), truth[:, :-1]], axis=1)
    return previous, positions, truth, real


def _joined(probabilities: list, predicted: list, pitches: int) -> Prediction:
    if not probabilities:
        return Prediction(np.zeros((0, pitches), np.float32), np.zeros((0, pitches), np.float32))
    return Prediction(np.concatenate(probabilities).astype(np.float32), np.concatenate(predicted).astype(np.float32))


FAMILIES: dict[str, type[FrameModel]] = {"window": WindowModel, "sequence": SequenceModel}


def wrap(model: keras.Model, jit_compile: bool | None = None) -> FrameModel:
    """The interface to a Keras model rollgen built (its name is its MODELS entry). jit_compile: XLA for the
    generation step (None: the family's default)."""
    family = FAMILIES[entry(model.name).family]
    return family(model) if jit_compile is None else family(model, jit_compile)


def build(name: str, context: int = 9, sequence_steps: int = 128) -> FrameModel:
    """A new model called `name`: window models for `context` frames, sequence models for stretches of
    `sequence_steps` (the Transformer's attention window)."""
    model_entry = entry(name)
    size = {"context": context} if model_entry.family == "window" else {"window": sequence_steps}
    return wrap(model_entry.build(**size))


def load(path: str | Path, jit_compile: bool | None = None) -> FrameModel:
    """A saved .keras model (safe_mode on), behind the interface, with what it was trained on (`info`)."""
    model = wrap(load_model(path), jit_compile)
    model.info = model_info(path)
    return model
