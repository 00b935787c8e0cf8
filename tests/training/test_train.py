"""Training: every model family trains, selects on the validation pieces alone, is seeded, stops early on
the validation NLL or on a NaN loss, and logs one MLflow run with the model and the data it was trained on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rollgen.data.archive import load_sequences
from rollgen.errors import RollgenError
from rollgen.evaluation.scores import frame_scores, onset_nll, onset_targets
from rollgen.files import sha256_file
from rollgen.generation.generate import sample_frames
from rollgen.generation.primers import excerpt_primers
from rollgen.models import frame_model
from rollgen.models.builders import MODELS, load_model
from rollgen.models.onsets import as_levels, level_inputs
from rollgen.music import meter
from rollgen.music.roll import HELD, ONSET
from tests.defaults import STEPS_PER_QUARTER, sampler_with
from tests.training.tiny_runs import LOGGED, train_once, train_params, weights


@pytest.mark.parametrize("name", ["article", "lstm", "nade", "convnade", "rnnnade"])
def test_each_kind_of_model_trains_saves_loads_in_safe_mode_and_generates(trained, windows, name):
    out = trained(name)
    metrics = json.loads((out / "train.json").read_text())
    model = frame_model.load(out / "model.keras")  # safe_mode on
    assert metrics["model"] == name and metrics["family"] == model.family == MODELS[name].family
    assert metrics["params"] == model.keras.count_params() and metrics["epochs"] == 2
    if name == "article":
        assert metrics["params"] == 251_370  # the article's network, unchanged
    assert metrics["train_frames"] == 4 * 80
    val = load_sequences("val", windows)
    rng = np.random.default_rng(0)
    primers, positions = excerpt_primers(val, 2, 9, rng)
    frames = sample_frames(model, primers, positions, 8, sampler_with("bernoulli"), rng, progress=False)
    assert frames.shape == (2, 8, 106) and set(np.unique(frames)) <= {0, HELD, ONSET}  # levels
    assert not (out / "checkpoint").exists()  # cleaned up after a finished run


def test_the_model_is_chosen_on_every_validation_frame_and_never_reads_the_test_split(trained, windows):
    """val_nll in train.json is the best epoch's, and it is what `predict` scores over every validation frame
    with the saved model; the garbage test.npz beside the archives was never opened."""
    out = trained("rnnnade")
    metrics = json.loads((out / "train.json").read_text())
    history = pd.read_csv(out / "history.csv")
    assert len(history) == 2 and metrics["val_nll"] == pytest.approx(history["val_nll"].min())
    assert metrics["best_epoch"] == history["epoch"][history["val_nll"].idxmin()]
    val = load_sequences("val", windows)
    prediction = frame_model.load(out / "model.keras").predict(val)
    assert len(prediction.probabilities) == len(val.frames) == 80  # every frame, the first from the initial state
    scores = frame_scores(prediction.probabilities, val.frames > 127, prediction.predicted)
    assert metrics["val_nll"] == pytest.approx(scores["nll"], rel=1e-5)
    assert metrics["val_f1"] == pytest.approx(scores["f1"], abs=1e-6)
    onsets = onset_nll(prediction.onsets, *onset_targets(val))  # beside it, the onsets' NLL (train.json only)
    assert metrics["val_onset_nll"] == pytest.approx(onsets, rel=1e-5) and history["val_onset_nll"].notna().all()


@pytest.mark.parametrize("model", ["article", "rnnnade"])  # the article's network and a sequence model
def test_two_runs_with_one_seed_give_identical_weights(tmp_path, windows, trained, unlogged, model):
    again = train_once(tmp_path, "again", train_params(model=model), windows)  # transposed, and rnnnade drops out
    for one, two in zip(weights(trained(model) / "model.keras"), weights(again / "model.keras")):
        np.testing.assert_array_equal(one, two)


def test_early_stopping_keeps_the_best_epoch(tmp_path, windows, unlogged):
    out = train_once(tmp_path, "a", train_params(epochs=30, patience=1, learning_rate=0.05), windows)
    metrics = json.loads((out / "train.json").read_text())
    assert metrics["epochs"] < 30 and metrics["best_epoch"] == metrics["epochs"] - 1
    val = load_sequences("val", windows)
    saved = frame_scores(frame_model.load(out / "model.keras").predict(val).probabilities, val.frames > 127)
    assert saved["nll"] == pytest.approx(metrics["val_nll"], rel=1e-5)  # the best epoch's weights, not the last's


def test_with_a_moving_average_the_average_is_validated_and_saved(tmp_path, windows, trained, unlogged):
    out = train_once(tmp_path, "a", train_params(model="rnnnade", average_epochs=5), windows)
    metrics = json.loads((out / "train.json").read_text())
    val = load_sequences("val", windows)
    saved = frame_scores(frame_model.load(out / "model.keras").predict(val).probabilities, val.frames > 127)
    assert saved["nll"] == pytest.approx(metrics["val_nll"], rel=1e-5)
    plain = weights(trained("rnnnade") / "model.keras")  # the same run without the average
    assert any(not np.allclose(one, two) for one, two in zip(weights(out / "model.keras"), plain))


def test_validation_every_second_epoch_chooses_among_those_and_stops_after_patience_epochs(tmp_path, windows, unlogged):
    """validation_freq 2: epochs 2, 4, ... and the last are scored on the validation pieces, the others not at
    all (an empty value in the history, not a guess); the best epoch is one of them, and patience still counts
    epochs."""
    out = train_once(tmp_path, "a", train_params(epochs=5, validation_freq=2), windows)
    history = pd.read_csv(out / "history.csv")
    assert history["val_nll"].notna().tolist() == [False, True, False, True, True]
    metrics = json.loads((out / "train.json").read_text())
    assert metrics["best_epoch"] in (2, 4, 5) and metrics["val_nll"] == pytest.approx(history["val_nll"].min())

    stopped = train_once(tmp_path, "b", train_params(epochs=40, patience=3, validation_freq=2, learning_rate=0.05),
                         windows)  # fmt: skip
    metrics = json.loads((stopped / "train.json").read_text())
    assert metrics["epochs"] < 40 and metrics["best_epoch"] % 2 == 0
    assert metrics["epochs"] == metrics["best_epoch"] + 4  # validated 2 and 4 epochs after the best: 4 >= 3


def test_a_nan_loss_stops_training_and_saves_nothing(tmp_path, windows):
    with pytest.raises(RollgenError, match="the loss became nan in epoch 1; nothing was saved"):
        train_once(tmp_path, "a", train_params(learning_rate=1e30), windows)
    assert not (tmp_path / "a" / "model.keras").exists() and not (tmp_path / "a" / "train.json").exists()


@pytest.mark.parametrize("name", LOGGED)
def test_the_mlflow_run_has_a_loadable_model_with_a_signature_and_its_datasets(trained, windows, mlflow_store, name):
    import mlflow
    from mlflow.tracking import MlflowClient

    out = trained(name)
    run_id = json.loads((out / "train.json").read_text())["mlflow_run_id"]
    client = MlflowClient(tracking_uri=mlflow_store)
    names = {item.path for item in client.list_artifacts(run_id)}
    assert {"model", "training_curve.png", "history.csv"} <= names
    assert [m.step for m in client.get_metric_history(run_id, "val_nll")] == [1, 2]
    assert client.get_run(run_id).data.tags["model_family"] == MODELS[name].family

    # Training registers nothing (the register stage does), and the run names the data that trained it: the
    # train and validation archives, by content hash.
    assert not client.search_model_versions(f"run_id = '{run_id}'")
    inputs = {item.dataset.name: item for item in client.get_run(run_id).inputs.dataset_inputs}
    assert sorted(inputs) == ["train", "val"]
    for split, context in (("train", "training"), ("val", "validation")):
        digest = sha256_file(windows / f"{split}.npz")
        assert inputs[split].dataset.digest == digest[:32] and inputs[split].dataset.source_type == "dvc"
        assert {tag.key: tag.value for tag in inputs[split].tags} == {"mlflow.data.context": context, "sha256": digest}

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_store)
    try:
        logged = mlflow.pyfunc.load_model(f"runs:/{run_id}/mlflow_model")
    finally:
        mlflow.set_tracking_uri(previous)
    inputs = logged.metadata.get_input_schema().inputs[0]
    assert inputs.shape == (-1, -1, 106) and str(inputs.type) == "float32"  # any number of pieces and steps
    keras_model = load_model(out / "model.keras")
    rng = np.random.default_rng(0)
    for steps in (12, 3):  # longer than a window model's window, and shorter (silence before)
        frames = (rng.random((4, steps, 106)) < 0.1).astype(np.float32)
        probabilities = np.asarray(logged.predict(frames))
        assert probabilities.shape == (4, 106) and ((probabilities > 0) & (probabilities < 1)).all()
        # A NADE's answer: each pitch's conditional along the greedily decoded frame, as Keras gives it.
        greedy = (probabilities > 0.5).astype(np.float32)
        if MODELS[name].family == "window":
            window = np.concatenate([np.zeros((4, 9, 106), np.float32), frames], axis=1)[:, -9:]
            expected = np.asarray(keras_model([window, greedy]))
        else:
            # Frames without onsets: each run struck at its first step (rollgen.models.onsets.as_levels).
            heard = level_inputs(as_levels(np.concatenate([np.zeros((4, 1, 106), np.float32), frames], axis=1), 1))
            positions = np.repeat(meter.default_positions(steps + 1, STEPS_PER_QUARTER)[None], 4, axis=0).astype(
                np.int32
            )
            asked = np.concatenate([frames, greedy[:, None]], axis=1)
            expected = np.asarray(keras_model([heard, positions, asked])[0])[:, -1]
        np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_a_run_is_named_by_its_experiment_and_what_it_changed():
    from rollgen.params import TrainParams
    from rollgen.training.train import run_name

    assert run_name(TrainParams(), None) == "transformernade"
    assert (
        run_name(TrainParams(epochs=10, learning_rate=0.002), "quick")
        == "quick transformernade epochs=10 learning_rate=0.002"
    )
    wider = TrainParams.model_validate({"model": "rnnnade", "rnnnade": {"units": 64}})
    assert run_name(wider, None) == "rnnnade units=64"
