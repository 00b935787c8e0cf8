"""Stage generate: model + primers -> generated/NNN.{mid,wav,png} and index.html, metrics/generate.json
(generated vs test pieces); the numbers and the first piece's roll (sampled_roll.png) logged to the model's
MLflow run, so the run shows what its model plays."""

import json
import shutil
import tempfile
from pathlib import Path

from rollgen import paths
from rollgen.errors import report_errors
from rollgen.generation import generate
from rollgen.params import load_params
from rollgen.tracking import runs as tracking

SAMPLED_ROLL = "sampled_roll.png"  # the training run's picture of a piece its model generated


def main() -> None:
    metrics = generate.run(load_params("generate"))
    run_id = json.loads(paths.TRAIN_METRICS.read_text()).get("mlflow_run_id")
    with tempfile.TemporaryDirectory() as folder:
        picture = Path(folder) / SAMPLED_ROLL
        shutil.copyfile(paths.GENERATED / "000.png", picture)
        tracking.log_to_run(run_id, metrics, prefix="generate", artifact=picture)


if __name__ == "__main__":
    report_errors(main, "generate")
