"""The article's network, rebuilt exactly, and safe saving/loading."""

import keras
import numpy as np
import pytest

from rollgen.models import (
    build_convlstm,
    build_convnade,
    build_model,
    build_nade,
    build_seed,
    is_autoregressive,
    load_model,
    nade_parts,
)


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


TINY_NADES = {
    "nade": lambda context, pitches, hidden: build_nade(context, pitches, units=8, hidden=hidden),
    "convnade": lambda context, pitches, hidden: build_convnade(context, pitches, filters=3, kernel=3, hidden=hidden),
}


@pytest.mark.parametrize("name", sorted(TINY_NADES))
def test_nade_defines_a_distribution_over_whole_frames(name):
    keras.utils.set_random_seed(2)
    model = TINY_NADES[name](3, 6, 5)
    frames = every_frame(6)
    window = np.random.default_rng(0).random((1, 3, 6)).astype(np.float32)
    conditionals = np.asarray(model([np.repeat(window, len(frames), axis=0), frames]))
    joint = np.prod(np.where(frames > 0, conditionals, 1 - conditionals), axis=1)
    assert joint.sum() == pytest.approx(1.0, abs=1e-5)  # so the summed Bernoulli NLL is the exact frame NLL


@pytest.mark.parametrize("name", sorted(TINY_NADES))
def test_nade_sampling_follows_its_own_conditionals(name):
    keras.utils.set_random_seed(3)
    model = TINY_NADES[name](4, 20, 6)
    windows = np.random.default_rng(1).random((5, 4, 20)).astype(np.float32)
    encoder, head = nade_parts(model)
    levels = np.random.default_rng(2).random((5, 20)).astype(np.float32)
    frame, conditionals = head.sample(encoder(windows), levels)
    frame, conditionals = np.asarray(frame), np.asarray(conditionals)
    np.testing.assert_allclose(conditionals, np.asarray(model([windows, frame])), atol=1e-5)
    np.testing.assert_array_equal(frame, conditionals > levels)  # pitch d on exactly when p(d | below) > level


@pytest.mark.parametrize("name", sorted(TINY_NADES))  # every NADE model, at full size here
def test_nade_model_reloads_in_safe_mode(tmp_path, name):
    model = build_model(name, context=9)
    assert is_autoregressive(model) and not is_autoregressive(build_model("lstm"))
    model.save(tmp_path / f"{name}.keras")
    again = load_model(tmp_path / f"{name}.keras")
    inputs = [np.random.default_rng(0).random((2, 9, 106)).astype(np.float32), np.zeros((2, 106), np.float32)]
    np.testing.assert_allclose(np.asarray(model(inputs)), np.asarray(again(inputs)), rtol=1e-6)


def test_convnade_shares_the_convlstm_features_and_adds_a_nade_head():
    """convnade differs from convlstm only in its output: the same ConvLSTM feature layers, then a NADE head."""
    factorised, joint = build_convlstm(), build_convnade()
    kinds = lambda model: [type(layer).__name__ for layer in model.layers]  # noqa: E731
    assert kinds(factorised)[1:6] == kinds(joint)[1:6] == ["Reshape", "ConvLSTM1D", "Conv1D", "Conv1D", "Flatten"]
    assert kinds(joint)[-1] == "NadeHead"
    features, pitches, hidden = 4 * 106, 106, 64
    dense = features * pitches + pitches
    head = features * (pitches + hidden) + pitches + hidden + 2 * pitches * hidden
    assert joint.count_params() == factorised.count_params() - dense + head
