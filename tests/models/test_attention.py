"""Relative attention (rollgen.models.attention): the distance bias decides where a head looks, old Transformer
files load without it, and the cached reading of a piece sees the same distances as one pass."""

from __future__ import annotations

import keras
import numpy as np

from rollgen.models.attention import RelativeAttention
from rollgen.models.builders import build_transformer_nade
from rollgen.models.encoders import TransformerEncoder
from rollgen.params import TransformerNadeParams


def test_a_large_bias_at_one_distance_makes_every_head_look_exactly_that_far_back():
    keras.utils.set_random_seed(0)
    steps, width, back = 10, 8, 3
    attention = RelativeAttention(heads=2, key_size=4, distances=6, dropout=0.0)
    x = np.random.default_rng(1).normal(size=(2, steps, width)).astype(np.float32)
    query, key = np.arange(steps)[:, None], np.arange(steps)[None, :]
    causal = np.broadcast_to((key <= query)[None], (2, steps, steps))
    attention(x, x, query - key, causal)  # builds
    attention.query_dense.kernel.assign(np.zeros_like(attention.query_dense.kernel))  # content says nothing
    bias = np.zeros((2, 6), np.float32)
    bias[:, back] = 50.0
    attention.bias.assign(bias)

    out = np.asarray(attention(x, x, query - key, causal))
    values = np.asarray(attention.value_dense(x))
    expected = np.asarray(attention.output_dense(values[:, np.arange(back, steps) - back]))
    np.testing.assert_allclose(out[:, back:], expected, atol=1e-4)  # step t reads step t - 3 alone
    # Before step 3 nothing lies 3 back: the causal keys weigh alike (the bias is 0 at every other distance).
    np.testing.assert_allclose(out[:, 1], np.asarray(attention.output_dense(values[:, :2].mean(axis=1))), atol=1e-4)
    # Distances past the table share its last bias, and a masked key is never read, however near.
    far = np.asarray(attention(x, x, np.full((steps, steps), 99), causal))
    bias[:, -1] = 50.0
    attention.bias.assign(bias)
    np.testing.assert_allclose(np.asarray(attention(x, x, np.full((steps, steps), 99), causal)), far, atol=1e-4)


def test_a_transformer_saved_before_the_distance_bias_loads_as_it_was_trained(tmp_path):
    keras.utils.set_random_seed(2)
    sizes = TransformerNadeParams(width=8, heads=2, layers=1, expansion=1, nade_units=4, relative=False)
    model = build_transformer_nade(sizes, sequence_steps=4, num_pitches=6)
    encoder = model.get_layer("encoder")
    config = encoder.get_config()
    del config["relative"]  # as a file saved before the option existed
    restored = TransformerEncoder.from_config(config)
    assert not restored.relative and isinstance(restored.attentions[0], keras.layers.MultiHeadAttention)
    relative = build_transformer_nade(sizes.model_copy(update={"relative": True}), sequence_steps=4, num_pitches=6)
    added = relative.count_params() - model.count_params()
    assert added == sizes.heads * 4 * sizes.layers  # a bias per head and distance, per layer
