"""Stage ingest: ingest.source -> data/interim/midi/, data/interim/manifest.csv, metrics/ingest.json."""

from rollgen.data import ingest
from rollgen.errors import report_errors
from rollgen.params import load_params


def main() -> None:
    params = load_params()
    ingest.run(params.ingest, params.images)  # the images stage's grid: the manifest counts what it will draw


if __name__ == "__main__":
    report_errors(main, "ingest")
