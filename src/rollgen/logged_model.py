"""The trained model as an MLflow model: a pyfunc with an input signature, logged as code (MLflow's "models
from code"), so nothing is pickled; loading it reads the .keras file with safe_mode on.

    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/mlflow_model")
    probabilities = model.predict(windows)  # float32 (n, context, 106) in 0..1 -> (n, 106)

For a NADE model (`convnade`, `nade`), `predict` gives each pitch's probability given the pitches below it,
along the frame decoded greedily, lowest pitch first.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np

from rollgen.roll import NUM_PITCHES

ARTIFACT_PATH = "mlflow_model"


class NextFrameModel(mlflow.pyfunc.PythonModel):
    """Windows of frames in, next-frame probabilities out."""

    def load_context(self, context) -> None:
        from rollgen.models import load_model

        self.model = load_model(context.artifacts["keras_model"])

    def predict(self, context, model_input, params=None):
        from rollgen.models import is_autoregressive, nade_parts

        if isinstance(model_input, dict):  # MLflow passes a named tensor as {"windows": array}
            model_input = model_input["windows"]
        windows = np.asarray(model_input, dtype=np.float32)
        if not is_autoregressive(self.model):
            return np.asarray(self.model(windows, training=False))
        encoder, head = nade_parts(self.model)
        _, probabilities = head.sample(encoder(windows), np.full((len(windows), windows.shape[2]), 0.5, np.float32))
        return np.asarray(probabilities)


def log(model_path: Path, context: int, pitches: int = NUM_PITCHES) -> None:
    """Logs the .keras file at `model_path` as a pyfunc model with a (n, context, pitches) float32 signature.

    rollgen itself travels as code (`code_paths`); the requirements pin what loading it needs, as installed
    here, so MLflow does not have to infer them by loading the model in a subprocess."""
    from importlib.metadata import version

    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    import rollgen

    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, context, pitches), "windows")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, pitches), "probabilities")]),
    )
    mlflow.pyfunc.log_model(
        name=ARTIFACT_PATH,
        python_model=Path(__file__),
        artifacts={"keras_model": str(model_path)},
        signature=signature,
        code_paths=[str(Path(rollgen.__file__).parent)],
        pip_requirements=[f"{name}=={version(name)}" for name in ("keras", "tensorflow", "numpy", "mlflow")],
    )


mlflow.models.set_model(NextFrameModel())
