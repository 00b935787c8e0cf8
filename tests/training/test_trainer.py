"""The trainer's step: a batch cut into slices takes the whole batch's step, and batch statistics keep a
batch whole."""

from __future__ import annotations

import numpy as np
import pytest

from rollgen.data.archive import load_sequences
from rollgen.models import frame_model
from rollgen.params import TrainParams, TransformerNadeParams
from rollgen.training import trainer


def tiny_transformer() -> frame_model.FrameModel:
    """A small Transformer NADE without dropout: its step's arithmetic is all there is to compare."""
    import keras

    from rollgen.models.builders import build_transformer_nade

    keras.utils.set_random_seed(0)
    sizes = TransformerNadeParams(width=16, heads=2, layers=1, dropout=0.0, nade_units=8)
    return frame_model.wrap(build_transformer_nade(sizes, sequence_steps=8))


@pytest.mark.parametrize("rows", [5, 1])  # 1: fewer rows than slices, so the batch is not cut
def test_a_batch_cut_into_slices_takes_the_whole_batchs_step(windows, rows):
    import keras
    import tensorflow as tf

    from rollgen.models.frame_model import Batching

    data = load_sequences("train", windows)
    after = []
    for slices in (1, 2):
        model = tiny_transformer()
        before = [np.asarray(w) for w in model.keras.weights]
        model.keras.compile(optimizer=keras.optimizers.SGD(0.5))
        step = trainer.Trainer(model, "bce", tf.distribute.get_strategy(), slices)
        assert step.slices == slices
        dataset = model.training_batches(data, Batching(rows, 0, 0, 8), 0)
        counts = {name: float(value) for name, value in step.train(next(iter(dataset)), dataset.element_spec).items()}
        after.append((counts, [np.asarray(w) for w in model.keras.weights]))
    (whole_counts, whole), (cut_counts, cut) = after
    assert whole_counts["frames"] == cut_counts["frames"] == rows * 8
    assert cut_counts["loss"] == pytest.approx(whole_counts["loss"], rel=1e-5)
    assert cut_counts["nll"] == pytest.approx(whole_counts["nll"], rel=1e-5)
    assert any(not np.allclose(w, b) for w, b in zip(whole, before))  # the step moved the weights
    for one, two in zip(whole, cut):
        np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-6)


def test_the_articles_batch_normalisation_keeps_its_batches_whole():
    import tensorflow as tf

    article, rnnnade = (frame_model.build(TrainParams(model=name), context=9) for name in ("article", "rnnnade"))
    assert not trainer.rows_independent(article.keras)
    assert trainer.Trainer(article, "mse", tf.distribute.get_strategy(), 4).slices == 1
    assert trainer.Trainer(rnnnade, "bce", tf.distribute.get_strategy(), 4).slices == 4
