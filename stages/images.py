"""Stage images: accepted MIDI -> 106x106 piano-roll PNGs, data/interim/images/index.csv, meters.csv and
rejected.csv."""

from rollgen import images
from rollgen.params import load_params


def main() -> None:
    params = load_params("images")
    ingest = load_params("ingest")
    images.run(
        mode=params["mode"],
        chunk_steps=params["chunk_steps"],
        steps_per_quarter=params["steps_per_quarter"],
        grid=params["grid"],
        max_quarters=ingest["max_quarters"],
        include_drums=ingest["include_drums"],
        parser=ingest["parser"],
    )


if __name__ == "__main__":
    main()
