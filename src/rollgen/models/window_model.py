"""Window models behind the FrameModel interface: the article's family, a window of frames read at a time. They
read and predict what sounds, not onsets: a note they draw is struck where its pitch starts to sound."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rollgen.data.archive import Sequences, sounding
from rollgen.models import batches
from rollgen.models.interface import PREDICT_FRAMES, Batching, FrameModel, Prediction, Taught
from rollgen.models.nade import Decoder
from rollgen.models.onsets import as_levels, to_levels
from rollgen.models.sampling import Sampler


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
        frames, offsets = data.brightness(), data.offsets
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

    def teacher_forced(self, batch, training: bool) -> Taught:
        x, y = batch
        return Taught(self.keras([x, y] if self.head is not None else x, training=training), y, None)

    def predict(self, data: Sequences, samples: int = 0, seed: int = 0) -> Prediction:
        frames, starts = self._windows(data, pad=True)  # one window per frame: every frame is scored
        rng = np.random.default_rng(seed)
        within = np.arange(self.context)
        probabilities, predicted = [], []
        for first in range(0, len(starts), PREDICT_FRAMES // 8):
            chosen = starts[first : first + PREDICT_FRAMES // 8]
            windows = frames[chosen[:, None] + within].astype(np.float32) / 255.0
            truth = sounding(frames[chosen + self.context + data.target_gap]).astype(np.float32)
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
        primer = sounding(as_levels(primer, time_axis=1)).astype(np.float32)
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
        frame = (np.asarray(frame) > 0).astype(np.uint8)  # the article's cast gives 2 once its offset passes 1
        after = np.concatenate([state[:, 1:], frame[:, None].astype(np.float32)], axis=1)
        new = frame * (state[:, -1] < 0.5)  # struck where the pitch starts to sound, never again while it sounds
        return to_levels(frame, new).astype(np.uint8), probabilities, after


def _joined(probabilities: list, predicted: list, pitches: int) -> Prediction:
    if not probabilities:
        return Prediction(np.zeros((0, pitches), np.float32), np.zeros((0, pitches), np.float32))
    return Prediction(np.concatenate(probabilities).astype(np.float32), np.concatenate(predicted).astype(np.float32))
