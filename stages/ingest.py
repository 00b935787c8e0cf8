"""Stage ingest: ingest.source -> data/interim/midi/, data/interim/manifest.csv, metrics/ingest.json."""

from rollgen import ingest
from rollgen.params import load_params


def main() -> None:
    params = load_params("ingest")
    images = load_params("images")
    limits = ingest.Limits(
        max_quarters=params["max_quarters"],
        max_seconds=params["max_seconds"],
        steps_per_quarter=images["steps_per_quarter"],
        grid=images["grid"],
        include_drums=params["include_drums"],
        timeout_s=params["timeout_s"],
        memory_mb=params["memory_mb"],
        parser=params["parser"],
    )
    ingest.run(source=str(params["source"]), limits=limits, limit=params["limit"], workers=params["workers"])


if __name__ == "__main__":
    main()
