"""Stage images: accepted MIDI -> 106x106 piano-roll PNGs, data/interim/images/index.csv, meters.csv and
rejected.csv."""

from rollgen.data import images
from rollgen.errors import report_errors
from rollgen.params import load_params


def main() -> None:
    params = load_params()
    images.run(
        mode=params.images.mode,
        chunk_steps=params.images.chunk_steps,
        steps_per_quarter=params.images.steps_per_quarter,
        grid=params.images.grid,
        max_quarters=params.ingest.max_quarters,
        include_drums=params.ingest.include_drums,
        parser=params.ingest.parser,
    )


if __name__ == "__main__":
    report_errors(main, "images")
