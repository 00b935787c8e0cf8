"""Stage train: windows -> models/model.keras, metrics/train.json, metrics/train_history.csv; an MLflow run."""

from rollgen import train
from rollgen.params import load_params


def main() -> None:
    everything = load_params()
    # Log what shaped the model: the sections of this stage and of the stages before it.
    upstream = {section: everything[section] for section in ("ingest", "images", "windows", "train")}
    train.run(everything["train"], all_params=upstream)


if __name__ == "__main__":
    main()
