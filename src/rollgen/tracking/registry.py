"""The MLflow Model Registry: every trained model's generator (rollgen.tracking.generator_model) registered as a
version of one model, `rollgen`, tagged with what made it; the alias `champion` on the version with the best
validation NLL; and a model named by a path, a `runs:/` or a `models:/` URI found as a .keras file.

    registry.register_trained(train_metrics, model_path, val_archive)  # the register stage, after train
    rollgen generate --model models:/rollgen@champion                    # anyone with the store

Training itself imports none of this (nor the generation code the generator runs): retraining follows the
training code alone.
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


def choose_champion(version: str | int | None):
    """Moves the `champion` alias to the version with the lowest validation NLL among those scored on the same
    validation archive as `version` (NLLs on other validation pieces do not compare); gives that version, or
    None where `version` is None or has no validation NLL. Reads the versions' `val_nll` tags and nothing else:
    test scores never choose a model."""
    from mlflow import MlflowClient

    if version is None:
        return None
    client = MlflowClient()
    own = client.get_model_version(NAME, str(version))
    if not math.isfinite(_val_nll(own)):
        return None
    validation = own.tags.get("val_sha256")
    versions = client.search_model_versions(f"name = '{NAME}'")
    rivals = [v for v in versions if v.tags.get("val_sha256") == validation and math.isfinite(_val_nll(v))]
    # A tie is the same training run registered again (a register stage rerun for new generation code): the
    # newest version, whose generator is the current code, takes the alias.
    best = min(rivals, key=lambda version: (_val_nll(version), -int(version.version)))
    client.set_registered_model_alias(NAME, CHAMPION, best.version)
    return best


def register_trained(train_metrics: dict, model_path: Path, val_archive: Path) -> dict:
    """Logs the generator of the model at `model_path` to its training run (`mlflow_run_id` in `train_metrics`,
    the train stage's metrics/train.json; rollgen.tracking.runs.open_run), registers it as a version tagged with
    what made it (`version_tags`: the metrics' model, family, windows hash and val_nll, and `val_archive`'s
    hash) and moves `champion` (`choose_champion`); gives the register stage's metrics: the version, whether it
    is the champion, and the champion's version."""
    from rollgen.files import sha256_file
    from rollgen.tracking import generator_model
    from rollgen.tracking import runs as tracking

    run_id = train_metrics.get("mlflow_run_id")
    if not run_id:
        raise RollgenError("metrics/train.json: no mlflow_run_id, so no training run to register; rerun train")
    tags = version_tags(train_metrics["model"], train_metrics["family"], train_metrics["windows_sha256"],
                        sha256_file(val_archive), tracking.git_commit(), train_metrics["val_nll"])  # fmt: skip
    tracking.start_experiment()  # the project's store, or MLFLOW_TRACKING_URI's
    with tracking.open_run(run_id):
        version = register(generator_model.log(model_path).model_uri, tags)
    champion = choose_champion(version.version)
    return {
        "version": int(version.version),
        "champion": champion is not None and champion.version == version.version,
        "champion_version": None if champion is None else int(champion.version),
    }


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
