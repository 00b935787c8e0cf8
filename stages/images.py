"""Stage images: accepted MIDI -> 106x106 piano-roll PNGs, data/interim/images/index.csv, meters.csv and
rejected.csv."""

from rollgen.data import images
from rollgen.errors import report_errors
from rollgen.params import load_params


def main() -> None:
    params = load_params()
    images.run(params.images, params.ingest)  # the MIDI read as ingest read it


if __name__ == "__main__":
    report_errors(main, "images")
