"""Stage evaluate: model + test windows -> metrics/eval.json (model and baselines), logged to the model's run."""

import json

from rollgen import evaluate, paths, tracking
from rollgen.params import load_params


def main() -> None:
    params = load_params("evaluate")
    results = evaluate.run(highest_pitch=params.highest_pitch, samples=params.samples, seed=params.seed)
    run_id = json.loads(paths.TRAIN_METRICS.read_text()).get("mlflow_run_id")
    tracking.log_to_run(run_id, results, prefix="test", artifact=paths.EVAL_METRICS)


if __name__ == "__main__":
    main()
