"""Stage evaluate: model + test windows -> metrics/eval.json (model and baselines), logged to the model's run."""

import json

from rollgen import evaluate, paths, tracking


def main() -> None:
    results = evaluate.run()
    run_id = json.loads(paths.TRAIN_METRICS.read_text()).get("mlflow_run_id")
    tracking.log_to_run(run_id, results, prefix="test")


if __name__ == "__main__":
    main()
