"""Stage ingest: ingest.source -> data/interim/midi/, data/interim/manifest.csv, metrics/ingest.json."""

from rollgen.data import ingest
from rollgen.errors import report_errors
from rollgen.params import load_params


def main() -> None:
    params = load_params()
    limits = ingest.Limits(
        max_quarters=params.ingest.max_quarters,
        max_seconds=params.ingest.max_seconds,
        steps_per_quarter=params.images.steps_per_quarter,
        grid=params.images.grid,
        include_drums=params.ingest.include_drums,
        timeout_s=params.ingest.timeout_s,
        memory_mb=params.ingest.memory_mb,
        parser=params.ingest.parser,
    )
    ingest.run(source=params.ingest.source, limits=limits, limit=params.ingest.limit, workers=params.ingest.workers)


if __name__ == "__main__":
    report_errors(main, "ingest")
