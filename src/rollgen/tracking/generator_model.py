"""The trained model as a music generator for MLflow: a pyfunc that takes, per row, a primer (a MIDI file,
base64, or empty), steps, temperature and seed, and gives back a MIDI file (base64) — what the registry keeps
and `mlflow models serve` serves. Logged as code (MLflow's "models from code"), as rollgen.tracking.next_frame_model, so
nothing is pickled; loading it reads the .keras file with safe_mode on.

    model = mlflow.pyfunc.load_model("models:/rollgen@champion")
    answer = model.predict(pd.DataFrame({"primer": [""], "steps": [64], "temperature": [0.8], "seed": [7]}))
    midi = base64.b64decode(answer["midi"][0])  # a MIDI file: 64 new 16th-note steps, from nothing

Generation is rollgen's own (rollgen.generation.generate.generate_pieces): the primer's first
`generate.primer_steps` steps are read, then `steps` frames drawn by Bernoulli sampling at `temperature`, the
random numbers from `seed`, so one request always gives the same music — the music `rollgen generate
--primer none --num 1 --steps S --temperature T --seed N --no-primer-in-output` writes. The MIDI holds the new
steps only, in the primer's meter (4/4 without one).

What one request may ask, checked whole before anything is generated (else HTTP 400, naming the row): at most
MAX_ROWS rows and MAX_FRAMES steps in all (MAX_STEPS a row); a temperature finite and in (0, 10]; no empty
(null, NaN) cell in a column the request has (leave the column out for the default). Its music may hold
MAX_NOTES notes in all: more is noise, stopped before its MIDI file is written. Two maximal requests are
generated at once, with room beside them for short ones; one more long request is answered 429 (busy)
at once (InFlight). So a short request never waits behind long ones: it shares the CPU with at most two
maximal requests and a few short ones. Measured with `mlflow models serve` on a 2-core machine
(benchmarks/serve_load.py): a 16-step request answers in 0.02 s alone and in at most 1.4 s beside 1 to 8
maximal requests sent at once (before these bounds: 40 s beside 8). A request the server has timed out
(504, after MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT, 60 s) stops at its next row.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pandas as pd

if TYPE_CHECKING:
    from rollgen.models.frame_model import FrameModel
    from rollgen.params import GenerateParams

ARTIFACT_PATH = "generator"
INPUT_EXAMPLE = pd.DataFrame({"primer": [""], "steps": [16], "temperature": [0.8], "seed": [7]})
# A request without a temperature: the model's own probabilities. The generate stage chooses one on the
# validation pieces (generate.temperature: auto), which a served model does not have.
DEFAULT_TEMPERATURE = 1.0

# What one request may cost. The frames bound the model's work (~0.4 ms a frame for the default model on
# a CPU, rows one after the other), the notes the MIDI writing (music21, ~0.5 ms a note: with noise, a
# frame can start 50 notes, so frames alone bound nothing), the rows the fixed cost of each (~10 ms).
# A maximal request took 4-6 s on 2 cores, two at once ~9 s: well within the scoring server's 60 s.
MAX_STEPS = 4096  # a row: 256 bars of 16ths, some ten minutes of music
MAX_FRAMES = 8192  # all rows together: two maximal rows
MAX_ROWS = 64
MAX_NOTES = 16_384  # all rows together: 2 a frame over MAX_FRAMES, twice the rate of the Bach chorales (0.9)
MAX_FRAMES_IN_FLIGHT = 2 * MAX_FRAMES + 1024  # two maximal requests at once, and room for short ones beside


class GenerationError(ValueError):
    """A request that cannot be answered: the message says which row and why (HTTP 400)."""


class Busy(RuntimeError):
    """A request turned away, the generator busy with others (HTTP 429: retry later)."""


class OutOfTime(RuntimeError):
    """A request past the scoring server's timeout, which has answered it 504: its work stops (HTTP 503)."""


@dataclass(frozen=True)
class Row:
    """One row of a request, checked: the primer's MIDI bytes (b"": none) and the generate params."""

    primer: bytes
    params: GenerateParams


def generate_midi(model: FrameModel, primer: bytes, steps: int, temperature: float, seed: int) -> bytes:
    """The MIDI file of `steps` new frames (16th notes on the default grid) that `model` draws after the start
    of the MIDI file `primer` (b"": from nothing, at a bar line), sampled at `temperature` from `seed`."""
    if not 1 <= steps <= MAX_STEPS:
        raise GenerationError(f"steps must be 1..{MAX_STEPS}, not {steps}")
    values = {"steps": steps, "temperature": temperature, "seed": seed}
    midi, _ = _row_midi(model, Row(primer, _params(values)), notes_left=None)
    return midi


def _params(values: dict) -> GenerateParams:
    """The generate params of a row's values (one piece, Bernoulli sampling), checked as params.yaml is."""
    from rollgen.params import ParamsError, validate

    try:
        return validate("generate", {"pieces": 1, "sampling": "bernoulli", **values})
    except ParamsError as error:
        raise GenerationError(str(error)) from None


def _row_midi(model: FrameModel, row: Row, notes_left: int | None) -> tuple[bytes, int]:
    """A row's MIDI file and its number of notes; GenerationError where it has over `notes_left` notes
    (None: no cap), before the MIDI file is written (the costly part)."""
    from rollgen.errors import RollgenError
    from rollgen.generation.generate import generate_pieces
    from rollgen.music.roll import roll_to_notes

    try:
        [piece] = generate_pieces(model, row.params, row.primer or None, progress=False)
    except RollgenError as error:  # a primer that is no MIDI file or has no notes; note caps a model refuses
        raise GenerationError(str(error)) from None
    notes = len(roll_to_notes(piece.roll).pitches)
    if notes_left is not None and notes > notes_left:
        before = f" ({MAX_NOTES - notes_left} in the rows before it)" if notes_left < MAX_NOTES else ""
        raise GenerationError(
            f"its music has {notes} notes{before}, more than the {MAX_NOTES} one request may hold in all: lower"
            f" the temperature ({row.params.temperature:g}) or ask for fewer steps"
        )
    return piece.midi(model.steps_per_quarter, row.params.tempo, include_primer=False), notes


def _given(row: pd.Series, column: str):
    """A row's value of an optional column: None where the request has no such column; GenerationError where
    the column is there but this row's value is empty (null or NaN), which is a mistake, not a default."""
    if column not in row.index:
        return None
    value = row[column]
    if hasattr(value, "item"):  # numpy scalars, which the params' strict checks do not take for numbers
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise GenerationError(f"{column} is empty (null or NaN): give a value, or leave the column out for the default")
    if isinstance(value, float) and column in ("steps", "seed") and value.is_integer():
        return int(value)  # a long column with an empty cell elsewhere arrives as floats
    return value  # its type and range: the generate params' checks


def _temperature(value) -> float:
    """A row's temperature: DEFAULT_TEMPERATURE where the request has none; a number in (0, MAX_TEMPERATURE]
    (not generate.temperature's auto: a served model has no validation pieces to choose one on)."""
    from rollgen.params import MAX_TEMPERATURE

    if value is None:
        return DEFAULT_TEMPERATURE
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_TEMPERATURE:
        raise GenerationError(f"temperature must be a number above 0 and at most {MAX_TEMPERATURE:g}, not {value!r}")
    return float(value)


def _primer(value) -> bytes:
    """The MIDI bytes of a request's base64 primer ('', null or NaN: none)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError) as error:
        raise GenerationError(f"primer is not a base64 string ({error})") from None


def read_rows(table: pd.DataFrame) -> list[Row]:
    """Every row of a request, checked before any is generated, and the request within MAX_ROWS and
    MAX_FRAMES; GenerationError names the first bad row (counted from 0) and says why."""
    if len(table) > MAX_ROWS:
        raise GenerationError(f"{len(table)} rows: one request may have at most {MAX_ROWS}; send several")
    rows = []
    for number, (_, row) in enumerate(table.iterrows()):
        try:
            given = {column: _given(row, column) for column in ("steps", "temperature", "seed")}
            given["temperature"] = _temperature(given["temperature"])
            params = _params({column: value for column, value in given.items() if value is not None})
            if params.steps > MAX_STEPS:
                raise GenerationError(f"steps must be 1..{MAX_STEPS}, not {params.steps}")
            rows.append(Row(_primer(row.get("primer")), params))
        except GenerationError as error:
            raise GenerationError(f"row {number}: {error}") from None
    frames = sum(row.params.steps for row in rows)
    if frames > MAX_FRAMES:
        raise GenerationError(
            f"{len(rows)} rows ask for {frames} steps in all: one request may ask for at most {MAX_FRAMES}"
            f" ({MAX_STEPS} a row); send several requests"
        )
    return rows


def _server_threads() -> int:
    """The threads the scoring server runs requests on: asyncio's default pool, min(32, CPUs + 4)."""
    return min(32, (os.cpu_count() or 1) + 4)


class InFlight:
    """The requests being generated at once, kept within two bounds, or a request is turned away at once
    (Busy, HTTP 429) rather than queued: frames in flight within MAX_FRAMES_IN_FLIGHT, so the work under way
    ends well within the server's timeout, and requests within the scoring server's threads less one. Past
    its threads, the server queues a request first come, first served, behind whole long requests: that is
    how a short request waited 40 s behind 8 long ones. Within them, requests share the CPU, and a short one
    takes a few times what it takes alone (see the module's docstring)."""

    def __init__(self, max_frames: int = MAX_FRAMES_IN_FLIGHT, max_requests: int | None = None) -> None:
        self.max_frames = max_frames
        self.max_requests = max_requests or _server_threads() - 1  # one left to turn requests away on
        self._lock = threading.Lock()
        self._frames = self._requests = 0

    @contextlib.contextmanager
    def admit(self, frames: int) -> Iterator[None]:
        """Holds a place for a request of `frames` frames for the block; Busy where none is free."""
        with self._lock:
            if self._requests >= self.max_requests or self._frames + frames > self.max_frames:
                raise Busy(f"the generator is busy with {self._requests} requests ({self._frames} frames); retry later")
            self._requests += 1
            self._frames += frames
        try:
            yield
        finally:
            with self._lock:
                self._requests -= 1
                self._frames -= frames


def _timeout() -> float:
    """Seconds the scoring server gives a request before it answers 504 (MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT)."""
    from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT

    return float(MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get())


class GenerationModel(mlflow.pyfunc.PythonModel):
    """Rows of (primer, steps, temperature, seed) in, a column `midi` of base64 MIDI files out."""

    def load_context(self, context) -> None:
        from rollgen.models import frame_model

        self.model = frame_model.load(context.artifacts["keras_model"])
        self.in_flight = InFlight()

    # The DataFrame hint tells MLflow that the signature is the one logged, not one to infer from hints.
    def predict(self, context, model_input: pd.DataFrame, params=None):
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_EXHAUSTED, TEMPORARILY_UNAVAILABLE

        deadline = time.monotonic() + _timeout()
        try:
            rows = read_rows(pd.DataFrame(model_input))
        except GenerationError as error:
            raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from error
        answers, notes_left = [], MAX_NOTES
        try:
            with self.in_flight.admit(sum(row.params.steps for row in rows)):
                for number, row in enumerate(rows):
                    if time.monotonic() > deadline:  # the server has answered 504: no more work for no one
                        raise OutOfTime(f"the request ran out of time at row {number}")
                    try:
                        midi, notes = _row_midi(self.model, row, notes_left)
                    except GenerationError as error:
                        raise MlflowException(f"row {number}: {error}", error_code=INVALID_PARAMETER_VALUE) from None
                    notes_left -= notes
                    answers.append(base64.b64encode(midi).decode("ascii"))
        except Busy as error:
            raise MlflowException(str(error), error_code=RESOURCE_EXHAUSTED) from error
        except OutOfTime as error:
            raise MlflowException(str(error), error_code=TEMPORARILY_UNAVAILABLE) from error
        return pd.DataFrame({"midi": answers})


def signature():
    """primer: string (base64 MIDI, or empty); steps, seed: long; temperature: double — the last three optional
    (GenerateParams' defaults; DEFAULT_TEMPERATURE). Out: midi, string (base64 MIDI)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    return ModelSignature(
        inputs=Schema(
            [
                ColSpec("string", "primer"),
                ColSpec("long", "steps", required=False),
                ColSpec("double", "temperature", required=False),
                ColSpec("long", "seed", required=False),
            ]
        ),
        outputs=Schema([ColSpec("string", "midi")]),
    )


def log(model_path: Path):
    """Logs the .keras file at `model_path` as the generator pyfunc (signature, input example, rollgen as code,
    requirements from its imports); gives MLflow's ModelInfo (its `model_uri` registers it)."""
    import rollgen
    from rollgen.tracking import next_frame_model as logged_model

    return mlflow.pyfunc.log_model(
        name=ARTIFACT_PATH,
        python_model=Path(__file__),
        artifacts={"keras_model": str(model_path)},
        signature=signature(),
        input_example=INPUT_EXAMPLE,
        code_paths=[str(Path(rollgen.__file__).parent)],
        pip_requirements=logged_model.requirements(f"{logged_model.PACKAGE}.tracking.generator_model"),
    )


mlflow.models.set_model(GenerationModel())
