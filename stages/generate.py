"""Stage generate: model + primers -> generated/NNN.{mid,wav,png} and index.html, metrics/generate.json
(generated steps vs the validation pieces, each quality gate passed or not; an auto temperature's choice and
curve); the numbers, the first piece's roll (sampled_roll.png) and the temperature curve logged to the model's
MLflow run, so the run shows what its model plays."""

import json
import shutil
import tempfile
from pathlib import Path

from rollgen import paths
from rollgen.errors import report_errors
from rollgen.generation import gallery, generate
from rollgen.params import load_params
from rollgen.tracking import runs as tracking

SAMPLED_ROLL = "sampled_roll.png"  # the training run's picture of a piece its model generated
TEMPERATURE_CURVE = "temperature_curve.png"  # ... and of how its temperature was chosen
ONSET_CURVE = "onset_temperature_curve.png"  # ... and its onset temperature, where that was fitted


def main() -> None:
    metrics = generate.run(load_params("generate"))
    run_id = json.loads(paths.TRAIN_METRICS.read_text()).get("mlflow_run_id")
    with tempfile.TemporaryDirectory() as folder:
        picture = Path(folder) / SAMPLED_ROLL
        shutil.copyfile(paths.GENERATED / "000.png", picture)
        tracking.log_to_run(run_id, metrics, prefix="generate", artifact=picture)
        chosen = metrics.get("temperature", {})
        for curve, name, label in (
            (chosen.get("curve"), TEMPERATURE_CURVE, "temperature"),
            (chosen.get("onset", {}).get("curve"), ONSET_CURVE, "onset temperature"),
        ):
            if curve:
                plot = gallery.save_temperature_curve(curve, Path(folder) / name, label)
                tracking.log_to_run(run_id, {}, prefix="generate", artifact=plot)


if __name__ == "__main__":
    report_errors(main, "generate")
