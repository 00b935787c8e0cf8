"""Every path the pipeline reads or writes, relative to the repository root (DVC runs stages there)."""

from pathlib import Path

PARAMS = Path("params.yaml")

RAW = Path("data/raw")
INTERIM = Path("data/interim")
MIDI_DIR = INTERIM / "midi"
MANIFEST = INTERIM / "manifest.csv"
IMAGES_DIR = INTERIM / "images"
IMAGES_INDEX = IMAGES_DIR / "index.csv"
WINDOWS_DIR = Path("data/processed/windows")

MODELS = Path("models")
MODEL = MODELS / "model.keras"

METRICS = Path("metrics")
INGEST_METRICS = METRICS / "ingest.json"
WINDOWS_METRICS = METRICS / "windows.json"
TRAIN_METRICS = METRICS / "train.json"
TRAIN_HISTORY = METRICS / "train_history.csv"
EVAL_METRICS = METRICS / "eval.json"
GENERATE_METRICS = METRICS / "generate.json"

GENERATED = Path("generated")

MLFLOW_DB = Path("mlflow.db")
MLFLOW_ARTIFACTS = Path("mlartifacts")
