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


def test_the_onset_loss_counts_only_the_cells_whose_onset_is_uncertain():
    """Where a pitch sounds after silence its onset is certain, where it is silent there is none: the loss and
    the onset NLL count the cells that sounded in the frame before too, and only those. Here every other cell
    is given a wrong onset probability, which would cost nats if it were counted."""
    import tensorflow as tf

    from rollgen.models.frame_model import Taught

    rng = np.random.default_rng(0)
    rows, pitches = 6, 10
    probabilities = rng.uniform(0.1, 0.9, (rows, pitches)).astype(np.float32)
    targets = (rng.random((rows, pitches)) < 0.5).astype(np.float32)
    uncertain = targets * (rng.random((rows, pitches)) < 0.5)
    struck = (rng.random((rows, pitches)) < 0.3).astype(np.float32) * targets
    onset_probabilities = np.where(uncertain > 0, rng.uniform(0.1, 0.9, (rows, pitches)), 0.5).astype(np.float32)
    weights = np.array([1, 1, 1, 1, 1, 0], np.float32)  # the last row is padding
    taught = Taught(*(tf.constant(part) for part in (probabilities, targets, weights, onset_probabilities, struck,
                                                      uncertain)))  # fmt: skip
    step = trainer.Trainer(tiny_transformer(), "bce", tf.distribute.get_strategy())

    def nats(p, y):
        return -np.where(y > 0, np.log(p), np.log(1 - p))

    onset_by_hand = (nats(onset_probabilities, struck) * uncertain).sum(axis=1)
    by_hand = (nats(probabilities, targets).mean(axis=1) + onset_by_hand / pitches) * weights
    np.testing.assert_allclose(np.asarray(step.frame_loss(taught)), by_hand, rtol=1e-5)
    counts = step.counts(taught, step.frame_loss(taught), tf.constant(weights))
    assert float(counts["onset_nll"]) == pytest.approx((onset_by_hand * weights).sum(), rel=1e-5)
    assert float(counts["nll"]) == pytest.approx((nats(probabilities, targets).sum(axis=1) * weights).sum(), rel=1e-5)
    everywhere = (nats(onset_probabilities, struck) * targets).sum(axis=1)  # had the certain cells counted
    assert (everywhere * weights).sum() > (onset_by_hand * weights).sum() + 1


def test_a_window_model_has_no_onset_part():
    import tensorflow as tf

    from rollgen.models.frame_model import Taught

    step = trainer.Trainer(frame_model.build(TrainParams(model="lstm"), context=9), "bce", tf.distribute.get_strategy())
    taught = Taught(tf.fill((2, 106), 0.25), tf.zeros((2, 106)), None)
    np.testing.assert_allclose(np.asarray(step.frame_loss(taught)), -np.log(0.75), rtol=1e-5)
    assert "onset_nll" not in step.counts(taught, step.frame_loss(taught), tf.ones(2))


def test_the_moving_average_of_the_weights_is_swapped_in_and_back_out(windows):
    """train.average_epochs 1 over 2 steps an epoch: a decay of 1/2, the first step's weights its start;
    `averaged` gives that average inside and the trained weights again after."""
    import keras
    import tensorflow as tf

    from rollgen.models.frame_model import Batching

    model = tiny_transformer()
    options = trainer.averaging(TrainParams(average_epochs=1), steps_per_epoch=2)
    assert options == {"use_ema": True, "ema_momentum": 0.5} and trainer.averaging(TrainParams(), 2) == {}
    model.keras.compile(optimizer=keras.optimizers.Adam(0.01, **options))
    step = trainer.Trainer(model, "bce", tf.distribute.get_strategy(), 1)
    dataset = model.training_batches(load_sequences("train", windows), Batching(4, 0, 0, 8), 0)
    expected = None
    for batch in list(dataset)[:3]:
        step.train(batch, dataset.element_spec)
        now = [variable.numpy() for variable in model.keras.trainable_variables]
        expected = now if expected is None else [0.5 * a + 0.5 * w for a, w in zip(expected, now)]
    with trainer.averaged(model.keras):
        inside = [variable.numpy() for variable in model.keras.trainable_variables]
    after = [variable.numpy() for variable in model.keras.trainable_variables]
    assert any(not np.allclose(a, w) for a, w in zip(inside, now))  # the average is not the last step's weights
    for average, mine in zip(inside, expected):
        np.testing.assert_allclose(average, mine, rtol=1e-5, atol=1e-7)
    for trained, last in zip(after, now):
        np.testing.assert_array_equal(trained, last)
