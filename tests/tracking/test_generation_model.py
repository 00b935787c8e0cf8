"""The generator that the registry keeps and `mlflow models serve` serves: rows of a primer (base64 MIDI, or
empty), steps, temperature and seed in, base64 MIDI files out, made by rollgen's own generation code."""

from __future__ import annotations

import base64
import json
import math
import os
import sys
import threading
import time
import urllib.error
import urllib.request
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
from tests.repro import project_env
from tests.servers import free_port, serving

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
    with pytest.raises(MlflowException, match="row 0: temperature must be a number above 0 and at most 10, not -1.0"):
        loaded.predict(pd.DataFrame({"primer": [""], "steps": [2], "temperature": [-1.0], "seed": [1]}))

    # Every row is checked before any is generated: the first row's 4096 steps of noise (minutes of MIDI
    # writing, were it generated) cost nothing when the last row is wrong.
    for temperature, why in ((None, "temperature is empty"), (math.nan, "temperature is empty"),
                             (math.inf, "temperature must be a number above 0 and at most 10, not inf"),
                             (1e9, "temperature must be a number above 0 and at most 10, not 1000000000")):  # fmt: skip
        request = pd.DataFrame({"primer": ["", ""], "steps": [4096, 8], "temperature": [1.0, temperature]})
        started = time.monotonic()
        with pytest.raises(MlflowException, match=f"row 1: {why}") as raised:
            loaded.predict(request)
        assert time.monotonic() - started < 5 and raised.value.get_http_status_code() == 400
    with pytest.raises(MlflowException, match="3 rows ask for 12288 steps in all: one request may ask for at most"):
        loaded.predict(pd.DataFrame({"primer": [""] * 3, "steps": [4096] * 3}))
    with pytest.raises(MlflowException, match="65 rows: one request may have at most 64"):
        loaded.predict(pd.DataFrame({"primer": [""] * 65, "steps": [1] * 65}))
    # Noise (an untrained model at the highest temperature: ~25 notes a frame) stops before its MIDI is written.
    with pytest.raises(MlflowException, match=r"row 0: its music has \d+ notes, more than the 16384 one request"):
        loaded.predict(pd.DataFrame({"primer": [""], "steps": [1000], "temperature": [10.0]}))


def test_generate_says_which_model_it_uses_and_when_the_workspaces_is_not_the_champion(keras_file, tmp_path,
                                                                                        monkeypatch):  # fmt: skip
    """After a second, worse experiment the workspace's models/model.keras is its model, while the registry's
    champion stays the first: `rollgen generate` (which generates with the workspace's model, as the generate
    stage does) says so, and how to use the champion."""
    import json

    import mlflow

    monkeypatch.chdir(tmp_path)  # a project: mlflow.db, models/, metrics/
    previous = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # training's store and ours
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    try:
        runs = {}
        for experiment, val_nll in (("first", 2.0), ("worse", 3.0)):
            with mlflow.start_run() as run:
                info = generation_model.log(keras_file)
            version = registry.register(info.model_uri, registry.version_tags("nade", "window", "w", "v", "c", val_nll))
            runs[experiment] = run.info.run_id
            registry.choose_champion(version.version)  # as the register stage does
        (tmp_path / "models").mkdir()
        (tmp_path / "models" / "model.keras").write_bytes(keras_file.read_bytes())
        (tmp_path / "metrics").mkdir()
        train = {"mlflow_run_id": runs["worse"], "val_nll": 3.0}
        (tmp_path / "metrics" / "train.json").write_text(json.dumps(train))

        def first_line(*options: str) -> str:
            command = ["generate", "--primer", "none", "--num", "1", "--steps", "4", "--temperature", "1", *options]
            result = CliRunner().invoke(app, command)
            assert result.exit_code == 0, result.output
            return result.stdout.splitlines()[0]

        assert first_line() == (
            f"model: models/model.keras (training run {runs['worse']}, val_nll 3.0) is not the registry's champion:"
            f" that is version 1 (training run {runs['first']}, val_nll 2.0); --model models:/rollgen@champion"
            " generates with it"
        )
        assert first_line("--model", "models:/rollgen@champion") == (
            f"model: models:/rollgen@champion (version 1, training run {runs['first']})"
        )
        train["mlflow_run_id"] = runs["first"]  # the workspace's model is the champion's
        (tmp_path / "metrics" / "train.json").write_text(json.dumps(train))
        champion = f"model: models/model.keras (training run {runs['first']}: the registry's champion, version 1)"
        assert first_line() == champion
        assert first_line("--model", str(keras_file)) == f"model: {keras_file}"  # another file: nothing to compare
        result = CliRunner().invoke(app, ["generate", "--model", "models:/rollgen@nothing", "--primer", "none"])
        assert result.exit_code == 1 and len(result.output.splitlines()) == 1, result.output
        assert result.output.startswith("models:/rollgen@nothing: ") and "nothing" in result.output[25:]
    finally:
        mlflow.set_tracking_uri(previous)


def test_two_long_requests_leave_room_for_short_ones_and_a_third_is_turned_away_at_once():
    """The served generator's admission: past its bounds a request is answered 429 at once, instead of
    queueing in the scoring server's thread pool behind whole long requests."""
    longest = generation_model.MAX_FRAMES  # a request's most
    in_flight = generation_model.InFlight(max_requests=4)
    with in_flight.admit(longest), in_flight.admit(longest):
        with pytest.raises(generation_model.Busy, match="busy with 2 requests .16384 frames.; retry later"):
            with in_flight.admit(longest):
                pass
        with in_flight.admit(16), in_flight.admit(1000):  # short ones still go
            with pytest.raises(generation_model.Busy, match="busy with 4 requests"):  # as many as threads allow
                with in_flight.admit(1):
                    pass
    with in_flight.admit(longest), in_flight.admit(longest):  # the places are free again
        pass


@pytest.mark.slow
def test_mlflow_models_serve_answers_a_bad_request_400_and_a_long_one_past_its_room_429_at_once(
    tiny_repro, tmp_path, monkeypatch
):
    """The generator served as the README says (`mlflow models serve`, one worker, 127.0.0.1), with the tiny
    project's trained model (~1 note a frame at temperature 0.5): a request over the budget or with a bad
    temperature is answered 400 at once, naming the row; more maximal requests at once than the server has
    threads are answered 429 at once past the two it generates, and a short request sent among them is
    answered within seconds, where it used to queue behind whole long ones (40 s behind 8 on 2 cores)."""
    import mlflow

    monkeypatch.chdir(tmp_path)  # the store's artifacts go to ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run():
            info = generation_model.log(tiny_repro / "models" / "model.keras")
    finally:
        mlflow.set_tracking_uri(previous)
    port = free_port()
    command = [
        *(sys.executable, "-m", "mlflow", "models", "serve", "-m", info.model_uri, "--env-manager", "local"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]

    def post(rows: list) -> tuple[int, float, str]:
        """Status, seconds, and the message of an error, for a request of `rows`."""
        body = {"dataframe_split": {"columns": ["primer", "steps", "temperature", "seed"], "data": rows}}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                return answer.status, time.monotonic() - started, ""
        except urllib.error.HTTPError as error:
            return error.code, time.monotonic() - started, json.loads(error.read())["message"]

    maximal = [["", 4096, 0.5, 1], ["", 4096, 0.5, 2]]
    threads = min(32, (os.cpu_count() or 1) + 4)  # the scoring server's: asyncio's default pool
    env = project_env(MLFLOW_TRACKING_URI=uri)
    with serving(command, tmp_path / "serve.log", ready=f"http://127.0.0.1:{port}/ping", timeout=300, env=env,
                 cwd=tmp_path):  # fmt: skip
        assert post([["", 16, 0.5, 1]])[0] == 200  # the first request compiles the model's step
        status, seconds, message = post([["", 4096, 0.5, seed] for seed in range(3)])
        assert status == 400 and seconds < 5 and "one request may ask for at most 8192" in message
        status, _, message = post([["", 16, 0.5, 1], ["", 16, None, 1]])
        assert status == 400 and "row 1: temperature is empty (null or NaN)" in message
        status, _, message = post([["", 16, math.inf, 1]])  # JSON's Infinity
        assert status == 400 and "row 0: temperature must be a number above 0 and at most 10, not inf" in message

        answers: dict[int, tuple] = {}

        def send(number: int) -> None:
            answers[number] = post(maximal)

        senders = [threading.Thread(target=send, args=(number,)) for number in range(threads + 2)]
        for sender in senders:
            sender.start()
        time.sleep(1)
        short = post([["", 16, 0.5, 1]])
        for sender in senders:
            sender.join(300)
    assert short[0] == 200 and short[1] < 5, short
    statuses = sorted(status for status, _, _ in answers.values())
    assert statuses == [200, 200] + [429] * threads, statuses
    assert all(seconds < 5 and "busy" in message for status, seconds, message in answers.values() if status == 429)
