"""Spurious notes in what the Transformer's attention reads (`train.transformernade.noise`): added at the rate
asked, struck where the frames carry onsets, in training only; the frame the head holds notes by stays true,
and a model trained with them saves and loads as any other."""

from __future__ import annotations

import keras
import numpy as np

from rollgen.models import builders
from rollgen.models.builders import build_transformer_nade
from rollgen.music.roll import NUM_PITCHES
from rollgen.params import TransformerNadeParams

SIZES = TransformerNadeParams(width=8, heads=2, layers=1, expansion=1, nade_units=4, noise=0.02)


def frames(steps: int, seed: int) -> np.ndarray:
    """Frames of sounding, then struck notes, a few notes each: what a model reads."""
    sounding = (np.random.default_rng(seed).random((4, steps, NUM_PITCHES)) < 0.03).astype(np.float32)
    sounding[:, ::10] = 0  # rests
    return np.concatenate([sounding, sounding], axis=-1)


def test_notes_are_added_at_the_rate_asked_and_struck_never_removed():
    keras.utils.set_random_seed(0)
    encoder = build_transformer_nade(SIZES, sequence_steps=8).get_layer("encoder")
    previous = frames(500, 1)
    noisy = np.asarray(encoder.spurious_notes(previous))
    assert np.all(noisy >= previous)  # nothing removed
    sounding, struck = noisy[..., :NUM_PITCHES], noisy[..., NUM_PITCHES:]
    np.testing.assert_array_equal(sounding, struck)  # an added note is struck where it sounds
    sounding_frames = previous[..., :NUM_PITCHES].max(axis=-1) > 0
    added = (noisy - previous)[..., :NUM_PITCHES]
    assert added[~sounding_frames].sum() == 0  # a rest stays a rest
    rate = added.sum() / (previous[..., :NUM_PITCHES][sounding_frames] == 0).sum()
    assert 0.018 < rate < 0.022  # ~200,000 silent cells of sounding frames: the rate within ~10 deviations
    assert not np.array_equal(noisy, np.asarray(encoder.spurious_notes(previous)))  # new draws each call


def test_only_training_reads_them_and_the_head_reads_the_true_frame():
    keras.utils.set_random_seed(0)
    model = build_transformer_nade(SIZES, sequence_steps=8)
    encoder = model.get_layer("encoder")
    clean = build_transformer_nade(SIZES.model_copy(update={"noise": 0.0}), sequence_steps=8).get_layer("encoder")
    previous, positions = frames(8, 2), np.zeros((4, 8, 4), np.int32)
    clean([previous, positions])
    clean.set_weights(encoder.get_weights())
    np.testing.assert_array_equal(encoder([previous, positions]), clean([previous, positions]))  # inference
    trained = np.asarray(encoder([previous, positions], training=True))
    np.testing.assert_array_equal(trained[..., -previous.shape[-1] :], previous)  # the frame before, true


def test_a_model_trained_with_them_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_transformer_nade(SIZES, sequence_steps=8)
    builders.save_model(model, tmp_path / "model.keras", {})
    loaded = builders.load_model(tmp_path / "model.keras")
    assert loaded.get_layer("encoder").noise == SIZES.noise
    for ours, theirs in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
