"""Stage ingest: ingest.source -> data/interim/midi/, data/interim/manifest.csv, metrics/ingest.json."""

from rollgen import ingest
from rollgen.params import load_params


def main() -> None:
    params = load_params("ingest")
    ingest.run(
        source=str(params["source"]),
        limit=params["limit"],
        workers=params["workers"],
        max_quarters=params["max_quarters"],
        include_drums=params["include_drums"],
    )


if __name__ == "__main__":
    main()
