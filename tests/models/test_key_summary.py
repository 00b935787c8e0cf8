"""The key so far (`train.transformernade.key_summary`): a Transformer that reads it hears past its attention
span, carries the counts in its generation state, and saves and loads with them. The training batches' counts
are checked in test_batches; scoring and generation against one Keras call in test_frame_model
(tests.tiny's "transformerkey")."""

from __future__ import annotations

import numpy as np

from rollgen.models import builders, frame_model, key_summary
from rollgen.music import meter
from rollgen.music.roll import HELD, ONSET, sounding
from tests.defaults import STEPS_PER_QUARTER, sampler_with
from tests.tiny import PITCHES, WINDOW, heard_before, tiny


def last_features(name: str, levels: np.ndarray) -> np.ndarray:
    """The encoder's features at the last step of a piece's levels (steps, PITCHES), read in one call."""
    encoder = tiny(name, seed=3).get_layer("encoder")
    positions = np.zeros((1, len(levels), 4), np.int32)
    return np.asarray(encoder([heard_before(levels)[None], positions]))[0, -1]


def test_only_the_key_summary_hears_what_sounded_before_the_attention_span():
    steps = 4 * WINDOW
    one = np.zeros((steps, PITCHES), np.uint8)
    one[:, 0] = HELD
    one[0, 0] = ONSET
    other = one.copy()
    other[: steps - 2 * WINDOW, 3] = HELD  # another pitch class, long before the last step's span
    other[0, 3] = ONSET
    np.testing.assert_array_equal(last_features("transformernade", one), last_features("transformernade", other))
    assert not np.allclose(last_features("transformerkey", one), last_features("transformerkey", other))


def test_generation_carries_the_counts_of_every_frame_it_read():
    model = frame_model.wrap(tiny("transformerkey", seed=6))
    model.keras.get_layer("nade").visible_bias.assign(np.zeros(PITCHES, np.float32))  # lively
    rng = np.random.default_rng(0)
    primers = np.where(rng.random((2, 5, PITCHES)) < 0.4, ONSET, 0).astype(np.uint8)
    steps = 3 * WINDOW
    positions = np.repeat(meter.default_positions(5 + steps + 1, STEPS_PER_QUARTER)[None], 2, axis=0).astype(np.int32)
    state = model.start(primers, positions[:, :6])
    frames = []
    for step in range(steps):
        frame, _, state = model.step(state, sampler_with("bernoulli"), step, rng)
        frames.append(frame)
    read = np.concatenate([primers, np.stack(frames, axis=1)[:, :-1]], axis=1)  # the last drawn is not read yet
    expected = sounding(read).sum(axis=1) @ key_summary.class_matrix(PITCHES)
    assert expected.sum() > 0
    np.testing.assert_array_equal(np.asarray(state.encoder[-1]), expected)


def test_shares_are_each_class_part_of_all_and_zero_before_anything_sounds():
    counts = np.array([[0.0] * 12, [3.0, 1.0] + [0.0] * 10])
    np.testing.assert_allclose(np.asarray(key_summary.shares(counts)), [[0.0] * 12, [0.75, 0.25] + [0.0] * 10])


def test_a_model_that_reads_the_key_saves_and_loads(tmp_path):
    for name, reads in (("transformerkey", True), ("transformernade", False)):
        model = tiny(name, seed=1)
        builders.save_model(model, tmp_path / f"{name}.keras", {})
        loaded = builders.load_model(tmp_path / f"{name}.keras")
        assert loaded.get_layer("encoder").key_summary == reads
        for ours, theirs in zip(model.get_weights(), loaded.get_weights(), strict=True):
            np.testing.assert_array_equal(ours, theirs)
