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

import ast
import sys
from pathlib import Path

import mlflow
import numpy as np

from rollgen.music.roll import NUM_PITCHES

ARTIFACT_PATH = "mlflow_model"
PACKAGE = "rollgen"


class NextFrameModel(mlflow.pyfunc.PythonModel):
    """The start of pieces in, next-frame probabilities out."""

    def load_context(self, context) -> None:
        from rollgen.models import frame_model

        self.model = frame_model.load(context.artifacts["keras_model"])

    def predict(self, context, model_input, params=None):
        from rollgen.models.sampling import make_sampler
        from rollgen.music.meter import default_positions

        if isinstance(model_input, dict):  # MLflow passes a named tensor as {"frames": array}
            model_input = model_input["frames"]
        frames = np.asarray(model_input, dtype=np.float32)
        positions = default_positions(frames.shape[1] + 1, self.model.steps_per_quarter)
        state = self.model.start(frames, np.repeat(positions[None], len(frames), axis=0))
        greedy = make_sampler("threshold", threshold=0.5)
        _, probabilities, _ = self.model.step(state, greedy, 0, np.random.default_rng(0))
        return np.asarray(probabilities, dtype=np.float32)


def _imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in `tree` that can run: at module level or inside functions, but not
    under `if TYPE_CHECKING:`; relative imports are rollgen's own."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.iter_child_nodes(tree):
        test = node.test if isinstance(node, ast.If) else None  # `if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:`
        if getattr(test, "id", getattr(test, "attr", None)) == "TYPE_CHECKING":
            found += _imports(ast.Module(body=node.orelse, type_ignores=[]))  # the else branch alone runs
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = PACKAGE + (f".{node.module}" if node.module else "") if node.level else node.module or ""
            found.append((module, [alias.name for alias in node.names]))
        found += _imports(node)
    return found


def code_imports(entry: str = f"{PACKAGE}.tracking.next_frame_model") -> dict[str, str]:
    """Every package outside rollgen and the standard library that a pyfunc's code imports, as {top-level
    name: a module importing it}: the imports of its file (`entry`: this one, or rollgen.tracking.generator_model) and
    of every rollgen module it imports, directly or not. Read from the sources, so nothing is imported to find
    out."""
    root = Path(__file__).parents[1]  # src/rollgen

    def module_file(name: str) -> Path | None:
        base = root.joinpath(*name.split(".")[1:])
        return next((path for path in (base / "__init__.py", base.with_suffix(".py")) if path.is_file()), None)

    outside: dict[str, str] = {}
    pending, seen = [entry, PACKAGE], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for module, names in _imports(ast.parse(module_file(name).read_text(encoding="utf-8"))):
            top = module.split(".")[0]
            if top == PACKAGE:
                parts = module.split(".")
                candidates = [".".join(parts[:end]) for end in range(1, len(parts) + 1)]
                candidates += [f"{module}.{item}" for item in names]  # `from rollgen import x`: x may be a module
                pending += [candidate for candidate in candidates if module_file(candidate)]
            elif top and top != "__future__" and top not in sys.stdlib_module_names:
                outside.setdefault(top, name)
    return outside


def requirements(entry: str = f"{PACKAGE}.tracking.next_frame_model") -> list[str]:
    """`distribution==version`, as installed here, of every distribution that provides a package the code of
    the pyfunc in `entry` imports (`code_imports`): what a fresh environment needs to load and run it. pip
    brings their own dependencies."""
    from importlib.metadata import packages_distributions, version

    providers = packages_distributions()
    imported = code_imports(entry)
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
