"""Stage register: model + metrics/train.json -> the model's generator logged to its training run and registered
as a version of `rollgen`, the `champion` alias moved to the version with the best validation NLL (never the test
scores); metrics/register.json says which version, and whether it is the champion."""

import json

from rollgen import files, paths
from rollgen.errors import report_errors
from rollgen.tracking import registry


def main() -> None:
    train_metrics = json.loads(paths.TRAIN_METRICS.read_text())
    metrics = registry.register_trained(train_metrics, paths.MODEL, paths.WINDOWS_DIR / "val.npz")
    files.write_json(paths.REGISTER_METRICS, metrics)
    champion = f"{registry.NAME}@{registry.CHAMPION} is version {metrics['champion_version']}"
    print(f"register: {registry.NAME} version {metrics['version']}; {champion}", flush=True)


if __name__ == "__main__":
    report_errors(main, "register")
