"""Which sampling settings make music like the validation pieces? Generates with each setting from primers cut
from the validation pieces and prints the quality report's numbers beside theirs, one JSON line per setting
(run after `dvc repro`). Validation only: the test pieces are for reporting, never for choosing.

    python benchmarks/sampling_sweep.py                       # a default grid
    python benchmarks/sampling_sweep.py --settings '[["bernoulli", 1.0, 0, 0], ["vanish_proof", 0, 0, 0]]'

A setting is [mode, temperature or threshold, min_notes, max_notes]. The defaults in params.yaml were chosen
with this: at most 2% silent frames, scale consistency within 0.02 and pitch-class entropy and mean polyphony
within 5% of the validation pieces', then the best mean overlap.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rollgen.data.archive import load_sequences, sounding
from rollgen.errors import RollgenError
from rollgen.evaluation.quality import quality_report
from rollgen.generation.generate import generate_pieces
from rollgen.models import frame_model
from rollgen.params import load_params, validate

DEFAULT_GRID = [
    *(["bernoulli", temperature, 0, 0] for temperature in (0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.1)),
    *(["threshold", threshold, 0, 0] for threshold in (0.3, 0.5)),
    ["vanish_proof", 0, 0, 0],
]


def main() -> None:
    generate = load_params("generate")  # params.yaml's: the sweep's defaults
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/model.keras"))
    parser.add_argument("--windows", type=Path, default=Path("data/processed/windows"))
    parser.add_argument("--pieces", type=int, default=32)
    parser.add_argument("--steps", type=int, default=generate.steps)
    parser.add_argument("--primer-steps", type=int, default=generate.primer_steps)
    parser.add_argument("--seed", type=int, default=generate.seed)
    parser.add_argument("--settings", type=json.loads, default=DEFAULT_GRID)
    args = parser.parse_args()

    model = frame_model.load(args.model)
    val = load_sequences("val", args.windows)
    val_rolls = [sounding(val.sequence(number).T) for number in range(len(val))]
    report = None
    for mode, value, min_notes, max_notes in args.settings:
        knob = {"threshold": value} if mode == "threshold" else {"temperature": value} if mode == "bernoulli" else {}
        sampling = {"sampling": mode, "min_notes": min_notes, "max_notes": max_notes, **knob}
        try:
            run = {"pieces": args.pieces, "steps": args.steps, "primer": "val", "primer_steps": args.primer_steps}
            params = validate("generate", {**run, "seed": args.seed, **sampling})
            rolls = generate_pieces(model, params, val, progress=False)
        except RollgenError as error:  # note caps on a NADE model: say so and go on with the next setting
            print(json.dumps({"mode": mode, "value": value, "skipped": str(error)}), flush=True)
            continue
        report = quality_report(rolls, val_rolls, model.steps_per_quarter, reference_name="val")
        overlaps = [value for value in report["overlap"].values() if value is not None]
        setting = {"mode": mode, "value": value, "min_notes": min_notes, "max_notes": max_notes}
        print(json.dumps({**setting, **report["generated"], "mean_overlap": float(np.mean(overlaps))}), flush=True)
    if report is not None:
        print(json.dumps({"mode": "validation pieces", **report["val"]}))


if __name__ == "__main__":
    main()
