"""The trained model as an MLflow model: a pyfunc with an input signature, logged as code (MLflow's "models
from code"), so nothing is pickled; loading it reads the .keras file with safe_mode on.

    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/mlflow_model")
    probabilities = model.predict(frames)  # float32 (n, steps, 106) in 0..1 -> (n, 106)

`frames` are the start of n pieces, any number of steps (a window model reads the last ones, silence before
a short start); the answer is each pitch's probability in the frame that follows, the pieces taken to be in
4/4 from a bar line, on the grid the model was trained on. For a NADE model the probabilities are those of
each pitch given the pitches below it, along the frame decoded greedily, lowest pitch first.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np

from rollgen.music.roll import NUM_PITCHES
from rollgen.sources import outside_imports

ARTIFACT_PATH = "mlflow_model"
PACKAGE = "rollgen"


class NextFrameModel(mlflow.pyfunc.PythonModel):
    """The start of pieces in, next-frame probabilities out."""

    def load_context(self, context) -> None:
        from rollgen.models import frame_model

        self.model = frame_model.load(context.artifacts["keras_model"])

    # The array hint tells MLflow that the signature is the one logged, not one to infer from hints.
    def predict(self, context, model_input: np.ndarray, params=None):
        from rollgen.models.sampling import ThresholdSampler
        from rollgen.music.meter import default_positions

        if isinstance(model_input, dict):  # MLflow passes a named tensor as {"frames": array}
            model_input = model_input["frames"]
        frames = np.asarray(model_input, dtype=np.float32)
        positions = default_positions(frames.shape[1] + 1, self.model.steps_per_quarter)
        state = self.model.start(frames, np.repeat(positions[None], len(frames), axis=0))
        greedy = ThresholdSampler(0.5, max_notes=0, min_notes=0)  # the likelier of on and off, uncapped
        _, probabilities, _ = self.model.step(state, greedy, 0, np.random.default_rng(0))
        return np.asarray(probabilities, dtype=np.float32)


def requirements(entry: str = f"{PACKAGE}.tracking.next_frame_model") -> list[str]:
    """`distribution==version`, as installed here, of every distribution that provides a package the code of
    the pyfunc in `entry` imports (rollgen.sources.outside_imports): what a fresh environment needs to load and
    run it. pip brings their own dependencies."""
    from importlib.metadata import packages_distributions, version

    providers = packages_distributions()
    imported = outside_imports(entry)
    for top, importer in sorted(imported.items()):
        if top not in providers:
            raise RuntimeError(f"{importer} imports {top}, which no installed distribution provides")
    distributions = {distribution for top in imported for distribution in providers[top]}
    return sorted((f"{name}=={version(name)}" for name in distributions), key=str.lower)


def log(model_path: Path, pitches: int = NUM_PITCHES):
    """Logs the .keras file at `model_path` as a pyfunc model with a (n, steps, pitches) float32 signature;
    gives MLflow's ModelInfo.

    rollgen itself travels as code (`code_paths`); the requirements pin every distribution that code
    imports (`requirements`), as installed here, so the model loads in a fresh environment, and MLflow does
    not have to infer them by loading the model in a subprocess."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    import rollgen

    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1, pitches), "frames")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, pitches), "probabilities")]),
    )
    return mlflow.pyfunc.log_model(
        name=ARTIFACT_PATH,
        python_model=Path(__file__),
        artifacts={"keras_model": str(model_path)},
        signature=signature,
        code_paths=[str(Path(rollgen.__file__).parent)],
        pip_requirements=requirements(),
    )


mlflow.models.set_model(NextFrameModel())
