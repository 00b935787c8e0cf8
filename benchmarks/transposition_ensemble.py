"""How far should the test-time ensemble reach (`evaluate.transpositions`)? Scores every frame of the validation
pieces with the network alone (reach 0) and with its mean over shifts -N..N (rollgen.evaluation.mixture), one JSON line
per reach: NLL per frame, and the time against the network alone (run after `dvc repro`). Validation only:
the test pieces are for reporting, never for choosing.

    python benchmarks/transposition_ensemble.py                  # reaches 0..3
    python benchmarks/transposition_ensemble.py --reaches 0 2 4

The default (2) was chosen with this: it matches training's transposition (`train.transpose`: 2), and
reaching 3 gained under 0.001 nats per frame for 40% more scoring time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rollgen.data.archive import load_sequences, sounding
from rollgen.evaluation.mixture import TranspositionMixture
from rollgen.evaluation.scores import frame_scores
from rollgen.models import frame_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/model.keras"))
    parser.add_argument("--windows", type=Path, default=Path("data/processed/windows"))
    parser.add_argument("--reaches", type=int, nargs="+", default=[0, 1, 2, 3])
    args = parser.parse_args()

    network = frame_model.load(args.model)
    val = load_sequences("val", args.windows)
    truth = sounding(val.frames)
    network.predict(val)  # traces the scoring functions: not timed
    alone = None
    for reach in args.reaches:
        started = time.perf_counter()
        prediction = (TranspositionMixture(network, reach) if reach else network).predict(val)
        seconds = time.perf_counter() - started
        alone = alone or (seconds if reach == 0 else None)
        scores = frame_scores(prediction.probabilities, truth, prediction.predicted)
        line = {"reach": reach, "val_nll": round(scores["nll"], 4), "val_f1": round(scores["f1"], 4),
                "seconds": round(seconds, 2), "frames": int(len(truth))}  # fmt: skip
        if alone:
            line["time_vs_network"] = round(seconds / alone, 2)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
