"""The trainer: one compiled training step for any model and any tf.distribute strategy, an epoch of them, and
the numbers an epoch is judged by (the loss, the optimizer's learning rate, the validation scores)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from rollgen.data.archive import Sequences, sounding
from rollgen.evaluation.scores import bernoulli_nll, clipped, frame_scores, onset_nll, onset_targets
from rollgen.models.frame_model import FrameModel, Taught
from rollgen.params import TrainParams

LOSSES = {"mse": "mean_squared_error", "bce": "binary_crossentropy"}


class Trainer:
    """One compiled training step for any tf.distribute strategy.

    Each replica computes its part of the batch; losses are averaged with tf.nn.compute_average_loss and
    the counts behind the epoch's numbers (loss, NLL, F1) are summed across replicas, so every worker
    applies the same gradients and reports the same numbers. Keras' Model.fit is not used: it fails under
    MultiWorkerMirroredStrategy (keras-team/keras#20585), and one loop serves every strategy and model.

    `slices` > 1 cuts a replica's rows into that many slices, each scored and differentiated as a chain of
    its own, so the executor runs them side by side, one per core (see `distribute.share_cores`); their
    frames are joined before the loss, so the gradients are the whole batch's. A model whose rows depend on
    each other (batch statistics: the article's BatchNormalization) is never cut, nor a batch of fewer rows.
    """

    def __init__(self, model: FrameModel, loss: str, strategy: tf.distribute.Strategy, slices: int = 1) -> None:
        self.model, self.strategy = model, strategy
        self.loss = keras.losses.get(LOSSES[loss])
        self.slices = slices if rows_independent(model.keras) else 1
        self.compiled: Callable | None = None

    def train(self, batch, spec) -> dict[str, tf.Tensor]:
        """One step, traced once, for the dataset's `spec` (its element_spec, the same every epoch): a sequence
        model's batches differ in length (each lasts as long as its longest row) and an epoch's last batch
        is smaller; one trace of unknown sizes runs them all, so a resumed run computes with the graph an
        uninterrupted one does (a trace per shape gives other rounding, and other weights)."""
        if self.compiled is None:
            self.compiled = tf.function(self.distributed(self.train_replica), input_signature=[spec])
        return self.compiled(batch)

    def distributed(self, replica_step: Callable) -> Callable:
        """`replica_step` run on every replica, its counts summed over them."""

        def step(batch):
            sums = self.strategy.run(replica_step, args=(batch,))
            return {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                    for name, value in sums.items()}  # fmt: skip

        return step

    def counts(self, taught: Taught, per_example_loss, weights) -> dict[str, tf.Tensor]:
        """Sums over the batch's real frames: loss, Bernoulli NLL in nats per frame of what sounds, and of the
        onsets where they are uncertain (a model with an onset head; no F1: a NADE's teacher-forced probabilities
        saw the true notes below each pitch; F1 is for validation's decoded frames)."""
        counts = {
            "loss": tf.reduce_sum(per_example_loss),
            "nll": tf.reduce_sum(cell_nll(taught.probabilities, taught.targets) * weights),
            "frames": tf.reduce_sum(weights),
        }
        if taught.onset_probabilities is not None:
            onset = cell_nll(taught.onset_probabilities, taught.onsets, taught.uncertain)
            counts["onset_nll"] = tf.reduce_sum(onset * weights)
        return counts

    def frame_loss(self, taught: Taught):
        """Each row's loss (rows,): the loss function over its pitches (a mean), plus, for a model with an onset
        head, the loss function over the cells whose onset is uncertain, summed and divided by the pitches (with
        BCE, the frame's NLL of what sounds and of how it is struck, per pitch); 0 on padding (weights)."""
        loss = self.loss(taught.targets, taught.probabilities)
        if taught.onset_probabilities is not None:
            cells = self.loss(taught.onsets[..., None], taught.onset_probabilities[..., None])
            loss += tf.reduce_sum(cells * taught.uncertain, axis=-1) / tf.cast(tf.shape(cells)[-1], cells.dtype)
        return loss if taught.weights is None else loss * taught.weights

    def gradients(self, pieces: list) -> tuple[list, dict[str, tf.Tensor]]:
        """The gradients of the loss (`frame_loss`) over all frames of `pieces` (slices of one batch), and its
        counts."""
        with tf.GradientTape() as tape:
            scored = [self.model.teacher_forced(piece, training=True) for piece in pieces]
            joined = [tf.concat(parts, 0) if parts[0] is not None else None for parts in zip(*scored)]
            weights = tf.concat(
                [tf.ones(tf.shape(taught.targets)[:1], tf.float32) if taught.weights is None else taught.weights
                 for taught in scored], 0
            )  # fmt: skip
            taught = Taught(*joined[:2], weights, *joined[3:])
            per_example_loss = self.frame_loss(taught)
            loss = tf.nn.compute_average_loss(per_example_loss)
        variables = self.model.keras.trainable_variables
        return tape.gradient(loss, variables), self.counts(taught, per_example_loss, weights)

    def train_replica(self, batch) -> dict[str, tf.Tensor]:
        """One replica's step on its part of the batch, cut into slices where it has rows enough."""
        if self.slices == 1:
            gradients, counts = self.gradients([batch])
        else:
            rows = tf.shape(tf.nest.flatten(batch)[0])[0]
            cuts = [rows * number // self.slices for number in range(self.slices + 1)]
            sliced = [tf.nest.map_structure(lambda t, a=a, b=b: t[a:b], batch) for a, b in zip(cuts, cuts[1:])]
            gradients, counts = tf.cond(
                rows >= self.slices, lambda: self.gradients(sliced), lambda: self.gradients([batch])
            )
        variables = self.model.keras.trainable_variables
        self.model.keras.optimizer.apply_gradients(zip(gradients, variables))
        return counts

    def run_epoch(self, dataset, steps: int | None = None, description: str = "") -> dict[str, float]:
        """Trains on a dataset; gives the epoch's mean loss and NLL per frame (teacher-forced), and the onset NLL
        per frame of a model with an onset head."""
        totals: dict[str, float] = {}
        distributed = self.strategy.experimental_distribute_dataset(dataset)
        bar = tqdm(distributed, total=steps, desc=description, unit="batch", leave=False, disable=not steps,
                   mininterval=0.5 if sys.stderr.isatty() else 30)  # a log file gets a line every 30 s  # fmt: skip
        for batch in bar:
            for name, value in self.train(batch, distributed.element_spec).items():
                totals[name] = totals.get(name, 0.0) + float(value)
        frames = max(totals.get("frames", 0.0), 1.0)
        means = {name: totals.get(name, 0.0) / frames for name in ("loss", "nll")}
        if "onset_nll" in totals:
            means["onset_nll"] = totals["onset_nll"] / frames
        return means


def cell_nll(probabilities, targets, cells=None):
    """Nats per row: the Bernoulli NLL of each cell (probabilities clipped as rollgen.evaluation.scores clips
    them), summed over the row's cells, or over those `cells` marks (0/1)."""
    p = tf.clip_by_value(probabilities, 1e-7, 1 - 1e-7)
    nats = -tf.where(targets > 0.5, tf.math.log(p), tf.math.log(1 - p))
    return tf.reduce_sum(nats if cells is None else nats * cells, axis=-1)


def rows_independent(model: keras.Model) -> bool:
    """Whether each row of a batch is scored from that row alone: no layer pools statistics over the batch."""
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            return False
        stack += getattr(layer, "layers", [])
    return True


def learning_rate(params: TrainParams, steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Adam's learning rate: constant, or cosine decay to 0 over all training steps."""
    if params.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(params.learning_rate, steps_per_epoch * params.epochs)
    return params.learning_rate


def frame_losses(probabilities: np.ndarray, targets: np.ndarray, loss: str) -> float:
    """The training loss per frame, averaged over frames, computed from scored probabilities."""
    p = clipped(probabilities)
    y = np.asarray(targets, np.float64)
    if loss == "mse":
        return float(((p - y) ** 2).mean()) if len(y) else float("nan")
    return float(bernoulli_nll(p, targets).mean()) if len(y) else float("nan")


def onset_losses(probabilities: np.ndarray, struck: np.ndarray, uncertain: np.ndarray, loss: str) -> float:
    """The onset part of the training loss per frame (see Trainer.gradients): the loss function over the
    uncertain cells, summed over each frame and divided by its pitches, averaged over frames."""
    if not len(struck):
        return float("nan")
    cells = (clipped(probabilities) - struck) ** 2 if loss == "mse" else bernoulli_nll(probabilities, struck)
    return float((cells * uncertain).sum(axis=1).mean() / struck.shape[1])


def averaging(params: TrainParams, steps_per_epoch: int) -> dict:
    """Adam's options for `train.average_epochs`: a moving average of the weights that forgets over about that
    many epochs of steps. Validation and the saved model read the average (`averaged`): on a small corpus the
    weights of one step wander with its batch, and their average sits nearer the middle."""
    if not params.average_epochs:
        return {}
    return {"use_ema": True, "ema_momentum": 1 - 1 / max(params.average_epochs * steps_per_epoch, 1.0)}


@contextlib.contextmanager
def averaged(model: keras.Model) -> Iterator[None]:
    """The model's trainable weights are their moving average (`averaging`) inside, as trained again after; as
    trained throughout where the optimizer keeps no average."""
    if not getattr(model.optimizer, "use_ema", False):
        yield
        return
    trained = [variable.numpy() for variable in model.trainable_variables]
    model.optimizer.finalize_variable_values(model.trainable_variables)
    try:
        yield
    finally:
        for variable, value in zip(model.trainable_variables, trained):
            variable.assign(value)


def validation_scores(model: FrameModel, data: Sequences, loss: str) -> dict[str, float]:
    """loss, nll and f1 over every frame of the validation pieces, as evaluate scores the test pieces (the
    NADE models' f1 from greedily decoded frames, which do not see the true notes), and onset_nll for a model
    that predicts onsets (its loss has the onset part too)."""
    prediction = model.predict(data)
    truth = sounding(data.frames)
    scores = frame_scores(prediction.probabilities, truth, prediction.predicted)
    results = {"loss": frame_losses(prediction.probabilities, truth, loss), "nll": scores["nll"], "f1": scores["f1"]}
    if prediction.onsets is not None:
        struck, uncertain = onset_targets(data)
        results["loss"] += onset_losses(prediction.onsets, struck, uncertain, loss)
        results["onset_nll"] = onset_nll(prediction.onsets, struck, uncertain)
    return results
