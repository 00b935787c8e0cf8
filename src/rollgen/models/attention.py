"""Attention that knows how far back a step lies: multi-head attention whose scores get a learnt bias per head
and distance (relative attention, as in Shaw et al., 2018, and the Music Transformer; the bias alone, as T5).

The Transformer encoder reads no absolute position, only each step's place in the bar, so without this a head
cannot tell the step before from the same beat a bar earlier, nor prefer the bar before to the one before that.
A bias table of (heads, distances) costs a few hundred weights and lets a head look one step back, or exactly
a bar back, whatever the keys hold.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops


@keras.utils.register_keras_serializable(package="rollgen")
class RelativeAttention(layers.Layer):
    """Scaled dot-product attention over `heads` heads of `key_size` features, plus a learnt bias for each head
    and each distance 0..`distances` - 1 (query step - key step; farther keys share the last bias).

    call(query (batch, q, width), keys (batch, k, width), distance (q, k) int, mask (batch, q, k) bool) ->
    (batch, q, width): each query attends where `mask` is true (at least one key per query).
    """

    def __init__(self, heads: int, key_size: int, distances: int, dropout: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.heads, self.key_size, self.distances, self.dropout_rate = heads, key_size, distances, dropout
        inner = heads * key_size
        self.query_dense, self.key_dense, self.value_dense = (layers.Dense(inner) for _ in range(3))
        self.output_dense = None  # built with the input width
        self.dropout = layers.Dropout(dropout)

    def build(self, query_shape, keys_shape=None, *args) -> None:
        width = int(query_shape[-1])
        for dense in (self.query_dense, self.key_dense, self.value_dense):
            dense.build((None, None, width))
        self.output_dense = layers.Dense(width)
        self.output_dense.build((None, None, self.heads * self.key_size))
        self.bias = self.add_weight(shape=(self.heads, self.distances), initializer="zeros", name="distance_bias")
        self.built = True

    def _split(self, x):
        return ops.reshape(x, (ops.shape(x)[0], ops.shape(x)[1], self.heads, self.key_size))

    def call(self, query, keys, distance, mask, training=None):
        q = self._split(self.query_dense(query)) / math.sqrt(self.key_size)
        k, v = self._split(self.key_dense(keys)), self._split(self.value_dense(keys))
        scores = ops.einsum("bqhd,bkhd->bhqk", q, k)
        # A gather, not a one-hot product: the (q, k, distances) one-hot cost ~10% of a chorale epoch (design.md).
        nearest = ops.clip(ops.cast(distance, "int32"), 0, self.distances - 1)
        scores = scores + ops.take(self.bias, nearest, axis=1)[None]  # (1, heads, q, k)
        scores = ops.where(mask[:, None], scores, ops.cast(-1e9, scores.dtype))
        weights = self.dropout(ops.softmax(scores, axis=-1), training=training)
        attended = ops.einsum("bhqk,bkhd->bqhd", weights, v)
        batch, steps = ops.shape(attended)[0], ops.shape(attended)[1]
        return self.output_dense(ops.reshape(attended, (batch, steps, self.heads * self.key_size)))

    def get_config(self) -> dict:
        sizes = dict(heads=self.heads, key_size=self.key_size, distances=self.distances)
        return {**super().get_config(), **sizes, "dropout": self.dropout_rate}
