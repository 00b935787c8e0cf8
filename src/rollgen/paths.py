"""Every path the pipeline reads or writes, relative to the repository root (DVC runs stages there)."""

import os
from pathlib import Path

PARAMS = Path("params.yaml")
PIPELINE = Path("dvc.yaml")

RAW = Path("data/raw")
INTERIM = Path("data/interim")
CHECKED = INTERIM / "checked.json"  # the check stage's mark, a dep of every stage (stages/check.py)
SOURCE_FINGERPRINT = INTERIM / "source.json"  # the inputs of ingest.source, hashed: a dep of ingest
MIDI_DIR = INTERIM / "midi"
MANIFEST = INTERIM / "manifest.csv"
IMAGES_DIR = INTERIM / "images"
IMAGES_INDEX = IMAGES_DIR / "index.csv"
WINDOWS_DIR = Path("data/processed/windows")

MODELS = Path("models")
PRETRAINED = Path("pretrained")  # models training may start from (train.init_from)
MODEL = MODELS / "model.keras"

METRICS = Path("metrics")
INGEST_METRICS = METRICS / "ingest.json"
WINDOWS_METRICS = METRICS / "windows.json"
TRAIN_METRICS = METRICS / "train.json"
TRAIN_HISTORY = METRICS / "train_history.csv"
REGISTER_METRICS = METRICS / "register.json"
EVAL_METRICS = METRICS / "eval.json"
GENERATE_METRICS = METRICS / "generate.json"

GENERATED = Path("generated")

MLFLOW_DB = Path("mlflow.db")
MLFLOW_ARTIFACTS = Path("mlartifacts")


def project_root() -> Path:
    """The project's root for what outlives a run (the MLflow store): $DVC_ROOT when DVC runs the stage, else '.'.

    A queued or `--temp` experiment runs its stages in a throw-away copy under .dvc/tmp/exps; DVC then sets
    DVC_ROOT to the original project, so runs logged there are not thrown away with the copy.
    """
    return Path(os.environ.get("DVC_ROOT") or ".")
