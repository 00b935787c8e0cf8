"""Which sampling settings make music like the validation pieces? Generates with each setting from primers cut
from the validation pieces and prints, one JSON line per setting, what the generate stage chooses an auto
temperature by (rollgen.generation.generate.sampling_quality: the gated statistics, each quality gate passed
or not, their distance from the validation pieces, the mean overlap), then the validation pieces' own numbers
(run after `dvc repro`). Validation only: the test pieces are for reporting, never for choosing.

    python benchmarks/sampling_sweep.py                       # a default grid
    python benchmarks/sampling_sweep.py --settings '[["bernoulli", 1.0, 0, 0], ["vanish_proof", 0, 0, 0]]'

A setting is [mode, temperature or threshold, min_notes, max_notes]. With generate.temperature: auto the stage
runs the bernoulli part of this sweep itself, over generate.temperatures at FIT_PIECES pieces of
generate.steps steps (the defaults here), and takes the temperature that passes the most gates, then the nearest.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rollgen.data.archive import load_sequences
from rollgen.errors import RollgenError
from rollgen.evaluation.quality import describe_set, long_note_limit
from rollgen.generation.generate import FIT_PIECES, fit_shape, sampling_quality
from rollgen.models import frame_model
from rollgen.params import load_params, validate

DEFAULT_GRID = [
    *(["bernoulli", temperature, 0, 0] for temperature in (0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.1, 1.2)),
    *(["threshold", threshold, 0, 0] for threshold in (0.3, 0.5)),
    ["vanish_proof", 0, 0, 0],
]


def main() -> None:
    generate = load_params("generate")  # params.yaml's: the sweep's defaults
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/model.keras"))
    parser.add_argument("--windows", type=Path, default=Path("data/processed/windows"))
    parser.add_argument("--pieces", type=int, default=FIT_PIECES)
    parser.add_argument("--steps", type=int, default=fit_shape(generate)[1])
    parser.add_argument("--primer-steps", type=int, default=generate.primer_steps)
    parser.add_argument("--seed", type=int, default=generate.seed)
    parser.add_argument("--settings", type=json.loads, default=DEFAULT_GRID)
    args = parser.parse_args()

    model = frame_model.load(args.model)
    val = load_sequences("val", args.windows)
    val_rolls = [val.sequence(number).T for number in range(len(val))]  # levels, as fit_temperature reads them
    for mode, value, min_notes, max_notes in args.settings:
        knob = {"threshold": value} if mode == "threshold" else {"temperature": value} if mode == "bernoulli" else {}
        sampling = {"sampling": mode, "min_notes": min_notes, "max_notes": max_notes, **knob}
        setting = {"mode": mode, "value": value, "min_notes": min_notes, "max_notes": max_notes}
        try:
            params = validate("generate", {"primer_steps": args.primer_steps, "seed": args.seed, **sampling})
            quality = sampling_quality(model, params, val, val_rolls, args.pieces, args.steps)
        except RollgenError as error:  # note caps on a NADE model: say so and go on with the next setting
            print(json.dumps({**setting, "skipped": str(error)}), flush=True)
            continue
        print(json.dumps({**setting, **quality}), flush=True)
    own = describe_set(val_rolls, model.steps_per_quarter, long_note_limit(val_rolls))
    print(json.dumps({"mode": "validation pieces", **own}))


if __name__ == "__main__":
    main()
