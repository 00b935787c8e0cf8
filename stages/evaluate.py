"""Stage evaluate: model + test windows -> metrics/eval.json (model and baselines), logged to the model's run."""

import json

from rollgen import paths
from rollgen.errors import report_errors
from rollgen.evaluation import evaluate
from rollgen.params import load_params
from rollgen.tracking import runs as tracking


def main() -> None:
    results = evaluate.run(load_params("evaluate"))
    run_id = json.loads(paths.TRAIN_METRICS.read_text()).get("mlflow_run_id")
    tracking.log_to_run(run_id, results, prefix="test", artifact=paths.EVAL_METRICS)


if __name__ == "__main__":
    report_errors(main, "evaluate")
