"""Stage generate: model + primers -> generated/NNN.{mid,wav,png} and index.html, metrics/generate.json
(generated vs test pieces), the numbers also logged to the model's MLflow run."""

import json

from rollgen import paths
from rollgen.errors import report_errors
from rollgen.generation import generate
from rollgen.params import load_params
from rollgen.tracking import runs as tracking


def main() -> None:
    metrics = generate.run(load_params("generate").model_dump())
    run_id = json.loads(paths.TRAIN_METRICS.read_text()).get("mlflow_run_id")
    tracking.log_to_run(run_id, metrics, prefix="generate")


if __name__ == "__main__":
    report_errors(main, "generate")
