"""Stage images: accepted MIDI -> 106x106 piano-roll PNGs, data/interim/images/index.csv and meters.csv."""

from rollgen import images
from rollgen.params import load_params


def main() -> None:
    params = load_params("images")
    images.run(
        mode=params["mode"],
        chunk_steps=params["chunk_steps"],
        steps_per_quarter=params["steps_per_quarter"],
        max_steps=params["max_steps"],
        include_drums=load_params("ingest")["include_drums"],
        parser=load_params("ingest")["parser"],
    )


if __name__ == "__main__":
    main()
