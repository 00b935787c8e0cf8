"""The MLflow Model Registry: every training run's generator (rollgen.tracking.generator_model) registered as a version
of one model, `rollgen`, tagged with what made it; the alias `champion` on the version with the best validation
NLL; and a model named by a path, a `runs:/` or a `models:/` URI found as a .keras file.

    registry.register(model_info.model_uri, registry.version_tags(...))  # train, after logging the generator
    registry.choose_champion(run_id)                                      # evaluate
    rollgen generate --model models:/rollgen@champion                     # anyone with the store
"""

from __future__ import annotations

import math
from pathlib import Path

from rollgen.errors import RollgenError

NAME = "rollgen"  # one registered model per project
CHAMPION = "champion"
URI_SCHEMES = ("models:/", "runs:/")


def version_tags(model: str, family: str, windows_sha256: str, val_sha256: str, git_commit: str, val_nll) -> dict:
    """The tags of a model version: the model kind and family, the content hashes of the windows it was trained
    on (train and validation) and of the validation archive alone, the git commit, and the best epoch's NLL on
    the validation pieces ('' without a validation split), which choosing the champion reads."""
    return {
        "model": model,
        "family": family,
        "windows_sha256": windows_sha256,
        "val_sha256": val_sha256,
        "git_commit": git_commit,
        "val_nll": "" if val_nll is None else repr(float(val_nll)),
    }


def register(model_uri: str, tags: dict[str, str]):
    """Registers the logged model at `model_uri` as a new version of NAME with `tags`; gives the ModelVersion.
    The store must be a database (the project's sqlite:///mlflow.db, or a tracking server)."""
    import mlflow

    return mlflow.register_model(model_uri, NAME, tags=tags)


def _val_nll(version) -> float:
    try:
        value = float(version.tags.get("val_nll") or "nan")
    except ValueError:
        return math.nan
    return value


def choose_champion(run_id: str | None):
    """Moves the `champion` alias to the version with the lowest validation NLL among those scored on the same
    validation archive as the version `run_id` registered (NLLs on other validation pieces do not compare);
    gives that version, or None where `run_id` registered none or has no validation NLL. Reads the versions'
    `val_nll` tags and nothing else: test scores never choose a model."""
    from mlflow import MlflowClient

    if not run_id:
        return None
    client = MlflowClient()
    versions = client.search_model_versions(f"name = '{NAME}'")
    own = [version for version in versions if version.run_id == run_id]
    if not own or not math.isfinite(_val_nll(own[-1])):
        return None
    validation = own[-1].tags.get("val_sha256")
    rivals = [v for v in versions if v.tags.get("val_sha256") == validation and math.isfinite(_val_nll(v))]
    best = min(rivals, key=lambda version: (_val_nll(version), int(version.version)))  # a tie: the earlier keeps it
    client.set_registered_model_alias(NAME, CHAMPION, best.version)
    return best


def keras_file(model: str, folder: Path) -> Path:
    """The .keras file of `model`: a path as it is; a `models:/NAME@ALIAS`, `models:/NAME/VERSION` or
    `runs:/RUN_ID/PATH` URI downloaded into `folder` from the tracking store (rollgen.tracking.runs), where it is a
    .keras file or a pyfunc model of rollgen's (its `keras_model` artifact)."""
    import mlflow
    import yaml

    from rollgen.tracking import runs as tracking

    if not model.startswith(URI_SCHEMES):
        return Path(model)
    mlflow.set_tracking_uri(tracking.tracking_uri())
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model, dst_path=str(folder)))
    if local.is_file() and local.suffix == ".keras":
        return local
    description = local / "MLmodel"
    if description.is_file():
        flavor = yaml.safe_load(description.read_text(encoding="utf-8")).get("flavors", {}).get("python_function", {})
        artifact = flavor.get("artifacts", {}).get("keras_model", {}).get("path")
        if artifact and (local / artifact).is_file():
            return local / artifact
    found = sorted(local.rglob("*.keras")) if local.is_dir() else []
    if len(found) == 1:
        return found[0]
    raise RollgenError(f"{model}: no .keras model in it (a rollgen pyfunc model, or a run's model/model.keras)")
