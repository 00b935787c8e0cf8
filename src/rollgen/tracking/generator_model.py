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
"""

from __future__ import annotations

import base64
import binascii
import math
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pandas as pd

if TYPE_CHECKING:
    from rollgen.models.frame_model import FrameModel

ARTIFACT_PATH = "generator"
MAX_STEPS = 4096  # per row: a served endpoint should not be asked for hours of music in one request
INPUT_EXAMPLE = pd.DataFrame({"primer": [""], "steps": [16], "temperature": [0.8], "seed": [7]})
# A request without a temperature: the model's own probabilities. The generate stage chooses one on the
# validation pieces (generate.temperature: auto), which a served model does not have.
DEFAULT_TEMPERATURE = 1.0


class GenerationError(ValueError):
    """A request that cannot be answered: the message says which row and why."""


def generate_midi(model: FrameModel, primer: bytes, steps: int, temperature: float, seed: int) -> bytes:
    """The MIDI file of `steps` new frames (16th notes on the default grid) that `model` draws after the start
    of the MIDI file `primer` (b"": from nothing, at a bar line), sampled at `temperature` from `seed`."""
    from rollgen.errors import RollgenError
    from rollgen.generation.generate import generate_pieces
    from rollgen.params import validate

    if not 1 <= steps <= MAX_STEPS:
        raise GenerationError(f"steps must be 1..{MAX_STEPS}, not {steps}")
    request = {"pieces": 1, "steps": steps, "sampling": "bernoulli", "temperature": temperature, "seed": seed}
    try:
        params = validate("generate", request)
        [piece] = generate_pieces(model, params, primer or None, progress=False)
    except RollgenError as error:  # params out of range, a primer that is no MIDI file or has no notes
        raise GenerationError(str(error)) from None
    return piece.midi(model.steps_per_quarter, params.tempo, include_primer=False)


def _value(row: pd.Series, column: str, default):
    """A row's value of an optional column: the default where the column is missing or empty."""
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    return value


def _primer(text: str) -> bytes:
    """The MIDI bytes of a request's base64 primer ('' for none)."""
    try:
        return base64.b64decode(text or "", validate=True)
    except (binascii.Error, TypeError) as error:
        raise GenerationError(f"primer is not a base64 string ({error})") from None


class GenerationModel(mlflow.pyfunc.PythonModel):
    """Rows of (primer, steps, temperature, seed) in, a column `midi` of base64 MIDI files out."""

    def load_context(self, context) -> None:
        from rollgen.models import frame_model

        self.model = frame_model.load(context.artifacts["keras_model"])

    def predict(self, context, model_input, params=None):
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        from rollgen.params import GenerateParams

        defaults = GenerateParams()
        table = pd.DataFrame(model_input)
        answers = []
        for number, (_, row) in enumerate(table.iterrows()):
            try:
                primer = _primer(_value(row, "primer", ""))
                midi = generate_midi(
                    self.model,
                    primer,
                    int(_value(row, "steps", defaults.steps)),
                    float(_value(row, "temperature", DEFAULT_TEMPERATURE)),
                    int(_value(row, "seed", defaults.seed)),
                )
            except GenerationError as error:
                raise MlflowException(f"row {number}: {error}", error_code=INVALID_PARAMETER_VALUE) from error
            answers.append(base64.b64encode(midi).decode("ascii"))
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
