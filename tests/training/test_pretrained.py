"""Training from a trained model (`train.init_from`): the new model starts with the saved weights exactly,
a model of another kind, size or grid is refused with what differs, and a fine-tuned run starts where the
saved model left off instead of from random weights."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rollgen.errors import RollgenError
from rollgen.models import frame_model
from rollgen.params import ImagesParams
from rollgen.training import train
from rollgen.training.pretrained import pretrained_file, pretrained_sha256
from tests.training.tiny_runs import train_once, train_params, weights


@pytest.fixture
def pretrained(tmp_path, trained, monkeypatch):
    """A project folder (the working directory) whose pretrained/ holds the 2-epoch rnnnade as start.keras."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pretrained").mkdir()
    shutil.copy(trained("rnnnade") / "model.keras", tmp_path / "pretrained" / "start.keras")
    return tmp_path / "pretrained" / "start.keras"


def test_the_new_model_starts_with_the_saved_weights(pretrained, windows):
    params = train_params(model="rnnnade", init_from="start.keras")
    model = frame_model.build(params, context=train.load_training_data(windows).train.context)
    train.start_from(model, params, ImagesParams())
    for ours, theirs in zip(model.keras.get_weights(), weights(pretrained), strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(
    ("changes", "images", "expected"),
    [
        ({"rnnnade": {"units": 32}}, ImagesParams(), "architecture"),
        ({"model": "nade"}, ImagesParams(), "model rnnnade (the params: nade)"),
        ({}, ImagesParams(steps_per_quarter=2), "steps_per_quarter 4 (the params: 2)"),
    ],
)
def test_another_model_size_or_grid_is_refused_with_what_differs(pretrained, windows, changes, images, expected):
    params = train_params(**{"model": "rnnnade", "init_from": "start.keras", **changes})
    model = frame_model.build(params, context=train.load_training_data(windows).train.context)
    with pytest.raises(RollgenError, match="cannot start this training") as raised:
        train.start_from(model, params, images)
    assert expected in str(raised.value)


def test_the_file_must_lie_in_pretrained(pretrained):
    assert pretrained_file("") is None and pretrained_sha256("") == ""
    assert pretrained_file("start.keras") == pretrained.relative_to(pretrained.parents[1])
    for name in ("../start.keras", str(pretrained)):
        with pytest.raises(RollgenError, match="must name a file inside pretrained/"):
            pretrained_file(name)
    with pytest.raises(RollgenError, match="no file pretrained/other.keras"):
        pretrained_file("other.keras")


def test_a_fine_tuned_run_starts_where_the_saved_model_left_off(pretrained, windows, trained, unlogged, capsys):
    params = train_params(model="rnnnade", epochs=1)
    scratch = train_once(pretrained.parents[1], "scratch", params, windows)
    tuned = train_once(pretrained.parents[1], "tuned", params.model_copy(update={"init_from": "start.keras"}), windows)
    assert "train: starting from pretrained/start.keras" in capsys.readouterr().out
    first = {run: json.loads((run / "train.json").read_text())["val_nll"] for run in (scratch, tuned)}
    saved = json.loads((trained("rnnnade") / "train.json").read_text())["val_nll"]  # after its 2 epochs
    assert first[tuned] < first[scratch]  # one epoch on top of two beats one from random weights
    assert first[tuned] < saved * 1.1
