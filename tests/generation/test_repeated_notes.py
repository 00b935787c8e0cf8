"""Issue #27: a model trained on a tiny corpus of repeated notes generates repeated notes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rollgen.generation.generate import sample_frames
from rollgen.models import frame_model
from rollgen.models.frame_model import Batching
from rollgen.music import meter
from rollgen.music.roll import HELD, NUM_PITCHES, ONSET, roll_to_notes, sounding
from rollgen.params import RnnNadeParams, TrainParams
from rollgen.training.trainer import Trainer
from tests.archives import sequences
from tests.defaults import STEPS_PER_QUARTER, sampler_with

TUNE = [60, 62, 64, 65, 67, 65, 64, 62]  # a bar of 16ths per pitch: four repeated eighths, struck, held


def repeated_eighths(first_bar: int, bars: int) -> np.ndarray:
    """uint8 levels (steps, pitches) on 16ths: each bar one pitch of TUNE (from `first_bar` on, with its fifth
    below), played as four eighths struck again and again without a gap."""
    frames = np.zeros((16 * bars, NUM_PITCHES), np.uint8)
    for bar in range(bars):
        pitch = TUNE[(first_bar + bar) % len(TUNE)]
        for row in (pitch - 21, pitch - 21 - 7):
            frames[16 * bar : 16 * bar + 16, row] = np.tile([ONSET, HELD], 8)
    return frames


@pytest.mark.slow
def test_a_model_trained_on_repeated_notes_generates_repeated_notes():
    keras.utils.set_random_seed(0)
    data = sequences([repeated_eighths(first, 8) for first in range(8)])
    params = TrainParams(model="rnnnade", rnnnade=RnnNadeParams(units=48, nade_units=32, dropout=0.0))
    model = frame_model.build(params, context=9)
    model.keras.compile(optimizer=keras.optimizers.Adam(0.01))
    trainer = Trainer(model, "bce", tf.distribute.get_strategy())
    batching = Batching(batch_size=4, seed=0, transpose=0, sequence_steps=32)
    for epoch in range(30):
        logs = trainer.run_epoch(model.training_batches(data, batching, epoch))
    assert logs["onset_nll"] < 0.5  # nats per frame: it has learnt when a held pitch is struck again

    primers = repeated_eighths(0, 1)[None, :8].repeat(4, axis=0)
    positions = meter.default_positions(9, STEPS_PER_QUARTER)[None].repeat(4, axis=0).astype(np.int32)
    frames = sample_frames(model, primers, positions, 64, sampler_with("bernoulli", temperature=0.5),
                           np.random.default_rng(1), progress=False)  # fmt: skip
    for piece in frames:
        notes = roll_to_notes(piece.T)
        runs = roll_to_notes(sounding(piece.T))  # the same music without its onsets: each run one note
        assert len(notes.pitches) >= 3 * len(runs.pitches) and len(notes.pitches) >= 40
        assert np.median(notes.lengths) <= 2  # eighths, not notes held for bars
