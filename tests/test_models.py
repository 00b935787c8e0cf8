"""The article's network, rebuilt exactly, and safe saving/loading."""

import keras
import numpy as np
import pytest

from rollgen.models import build_model, build_nade, build_seed, is_autoregressive, load_model, nade_parts


def test_seed_model_has_the_articles_251370_parameters():
    model = build_seed()
    assert model.count_params() == 251_370
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    assert trainable == 251_242  # the article's summary: 128 non-trainable (BatchNorm moving stats)
    assert model.output_shape == (None, 106)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("LSTM") == 2 and kinds[-2:] == ["BatchNormalization", "Dense"]


def test_unknown_model_names_are_a_clear_error():
    with pytest.raises(ValueError, match="unknown"):
        build_model("transformer-xl")


def test_saved_model_reloads_in_safe_mode_with_the_same_outputs(tmp_path):
    keras.utils.set_random_seed(1)
    model = build_seed()
    windows = np.random.default_rng(0).random((4, 9, 106)).astype(np.float32)
    model.save(tmp_path / "model.keras")
    again = load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(model.predict(windows, verbose=0), again.predict(windows, verbose=0), rtol=1e-6)


def every_frame(pitches: int) -> np.ndarray:
    """All 2**pitches frames of 0/1, one per row."""
    return ((np.arange(2**pitches)[:, None] >> np.arange(pitches)) & 1).astype(np.float32)


def test_nade_defines_a_distribution_over_whole_frames():
    keras.utils.set_random_seed(2)
    model = build_nade(context=3, num_pitches=6, units=8, hidden=5)
    frames = every_frame(6)
    window = np.random.default_rng(0).random((1, 3, 6)).astype(np.float32)
    conditionals = np.asarray(model([np.repeat(window, len(frames), axis=0), frames]))
    joint = np.prod(np.where(frames > 0, conditionals, 1 - conditionals), axis=1)
    assert joint.sum() == pytest.approx(1.0, abs=1e-5)  # so the summed Bernoulli NLL is the exact frame NLL


def test_nade_sampling_follows_its_own_conditionals():
    keras.utils.set_random_seed(3)
    model = build_nade(context=4, num_pitches=20, units=8, hidden=6)
    windows = np.random.default_rng(1).random((5, 4, 20)).astype(np.float32)
    encoder, head = nade_parts(model)
    levels = np.random.default_rng(2).random((5, 20)).astype(np.float32)
    frame, conditionals = head.sample(encoder(windows), levels)
    frame, conditionals = np.asarray(frame), np.asarray(conditionals)
    np.testing.assert_allclose(conditionals, np.asarray(model([windows, frame])), atol=1e-5)
    np.testing.assert_array_equal(frame, conditionals > levels)  # pitch d on exactly when p(d | below) > level


def test_nade_model_reloads_in_safe_mode(tmp_path):
    model = build_model("nade", context=9)
    assert is_autoregressive(model) and not is_autoregressive(build_model("lstm"))
    model.save(tmp_path / "nade.keras")
    again = load_model(tmp_path / "nade.keras")
    inputs = [np.random.default_rng(0).random((2, 9, 106)).astype(np.float32), np.zeros((2, 106), np.float32)]
    np.testing.assert_allclose(np.asarray(model(inputs)), np.asarray(again(inputs)), rtol=1e-6)
