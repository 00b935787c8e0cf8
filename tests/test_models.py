"""The article's network, rebuilt exactly, and safe saving/loading."""

import keras
import numpy as np
import pytest

from rollgen.models import build_model, build_seed, load_model


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
