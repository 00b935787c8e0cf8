"""Stage train: windows -> models/model.keras, metrics/train.json, metrics/train_history.csv; an MLflow run."""

from rollgen.errors import report_errors
from rollgen.params import load_params
from rollgen.training import train


def main() -> None:
    params = load_params()
    # Log what shaped the model: the sections of this stage and of the stages before it, defaults filled in.
    upstream = params.model_dump(include={"ingest", "images", "windows", "train"})
    train.run(params.train, params.images, logged_params=upstream)


if __name__ == "__main__":
    report_errors(main, "train")
