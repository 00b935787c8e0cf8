"""The generator that the registry keeps and `mlflow models serve` serves: rows of a primer (base64 MIDI, or
empty), steps, temperature and seed in, base64 MIDI files out, made by rollgen's own generation code."""

from __future__ import annotations

import base64
from pathlib import Path

import keras
import pandas as pd
import pytest
from typer.testing import CliRunner

from rollgen.cli import app
from rollgen.models import frame_model
from rollgen.params import GenerateParams, TrainParams
from rollgen.tracking import generator_model as generation_model
from rollgen.tracking import registry
from tests.conftest import build_midi

PRIMER = build_midi([["0, Note_on_c, 0, 60, 90", "480, Note_off_c, 0, 60, 0", "480, Note_on_c, 0, 64, 90",
                      "960, Note_off_c, 0, 64, 0"]])  # fmt: skip


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory) -> Path:
    """An untrained window NADE model (its notes are random, but they are the seed's)."""
    path = tmp_path_factory.mktemp("generator") / "model.keras"
    keras.utils.set_random_seed(0)
    frame_model.build(TrainParams(model="nade"), context=9).keras.save(path)
    return path


def test_a_request_gives_the_music_rollgen_generate_writes_for_its_seed(keras_file, tmp_path):
    model = frame_model.load(keras_file)
    silent_start = generation_model.generate_midi(model, b"", steps=24, temperature=1.0, seed=5)
    assert silent_start == generation_model.generate_midi(model, b"", 24, 1.0, 5)  # the seed decides
    assert silent_start != generation_model.generate_midi(model, b"", 24, 1.0, 6)
    primed = generation_model.generate_midi(model, PRIMER, steps=24, temperature=1.0, seed=5)
    (tmp_path / "primer.mid").write_bytes(PRIMER)
    for primer, expected in (("none", silent_start), (str(tmp_path / "primer.mid"), primed)):
        out = tmp_path / primer.replace("/", "_")
        result = CliRunner().invoke(
            app,
            ["generate", "--model", str(keras_file), "--primer", primer, "--num", "1", "--steps", "24",
             "--temperature", "1.0", "--seed", "5", "--no-primer-in-output", "--out", str(out)],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert (out / "000.mid").read_bytes() == expected

    with pytest.raises(generation_model.GenerationError, match="steps must be 1..4096"):
        generation_model.generate_midi(model, b"", steps=0, temperature=1.0, seed=5)
    with pytest.raises(generation_model.GenerationError, match="primer: not a MIDI file"):
        generation_model.generate_midi(model, b"nope", steps=4, temperature=1.0, seed=5)


def test_the_logged_pyfunc_answers_base64_midi_and_names_a_bad_row(keras_file, tmp_path, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException

    monkeypatch.chdir(tmp_path)  # the store's artifacts go to ./mlruns
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run():
            info = generation_model.log(keras_file)
        loaded = mlflow.pyfunc.load_model(info.model_uri)  # safe_mode on, no pickle: the code is a file
        assert registry.keras_file(info.model_uri, tmp_path / "download").read_bytes() == keras_file.read_bytes()
    finally:
        mlflow.set_tracking_uri(previous)
    schema = loaded.metadata.get_input_schema()
    assert schema.input_names() == ["primer", "steps", "temperature", "seed"]
    assert [spec.required for spec in schema.inputs] == [True, False, False, False]

    request = pd.DataFrame({"primer": ["", base64.b64encode(PRIMER).decode()], "steps": [24, 8],
                            "temperature": [1.0, 0.5], "seed": [5, 1]})  # fmt: skip
    answer = loaded.predict(request)
    model = frame_model.load(keras_file)
    assert list(answer.columns) == ["midi"]
    assert base64.b64decode(answer["midi"][0]) == generation_model.generate_midi(model, b"", 24, 1.0, 5)
    assert base64.b64decode(answer["midi"][1]) == generation_model.generate_midi(model, PRIMER, 8, 0.5, 1)
    # steps given, temperature and seed left out: the model's own probabilities and generate's seed
    defaults = loaded.predict(pd.DataFrame({"primer": [""], "steps": [8]}))
    generate = GenerateParams()
    assert base64.b64decode(defaults["midi"][0]) == generation_model.generate_midi(
        model, b"", 8, generation_model.DEFAULT_TEMPERATURE, generate.seed
    )

    with pytest.raises(MlflowException, match="row 1: primer is not a base64 string"):
        loaded.predict(pd.DataFrame({"primer": ["", "not base64!"], "steps": [2, 2]}))
    with pytest.raises(MlflowException, match="row 0: generate.temperature"):
        loaded.predict(pd.DataFrame({"primer": [""], "steps": [2], "temperature": [-1.0], "seed": [1]}))
