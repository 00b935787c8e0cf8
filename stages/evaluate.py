"""Stage evaluate: model + test windows -> metrics/eval.json (model and baselines), logged to the model's run."""

import json

from rollgen import evaluate, paths, tracking
from rollgen.params import load_params


def main() -> None:
    results = evaluate.run(highest_pitch=load_params("evaluate")["highest_pitch"])
    run_id = json.loads(paths.TRAIN_METRICS.read_text()).get("mlflow_run_id")
    tracking.log_to_run(run_id, results, prefix="test", artifact=paths.EVAL_METRICS)


if __name__ == "__main__":
    main()
