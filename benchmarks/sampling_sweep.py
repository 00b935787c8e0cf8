"""Which sampling settings make music like the test pieces? Generates with each setting and prints the
quality report's numbers beside the test pieces', one JSON line per setting (run after `dvc repro`).

    python benchmarks/sampling_sweep.py                       # a default grid
    python benchmarks/sampling_sweep.py --settings '[["bernoulli", 1.0, 0, 0], ["vanish_proof", 0, 0, 0]]'

A setting is [mode, temperature or threshold, min_notes, max_notes]. The defaults in params.yaml were chosen
with this: at most 2% silent frames and mean polyphony within 15% of the test pieces', then the best overlap.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rollgen import generate
from rollgen.images import image_to_roll
from rollgen.models import load_model
from rollgen.quality import quality_report
from rollgen.sampling import make_sampler
from rollgen.windows import load_split

DEFAULT_GRID = [
    *(["bernoulli", temperature, 0, 0] for temperature in (0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2)),
    *(["bernoulli", temperature, 3, 6] for temperature in (0.8, 1.0, 1.2)),
    *(["threshold", threshold, 0, 0] for threshold in (0.3, 0.4, 0.5)),
    ["vanish_proof", 0, 0, 0],
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/model.keras"))
    parser.add_argument("--windows", type=Path, default=Path("data/processed/windows"))
    parser.add_argument("--pieces", type=int, default=32)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--settings", type=json.loads, default=DEFAULT_GRID)
    args = parser.parse_args()

    model = load_model(args.model)
    test = load_split("test", args.windows)
    offsets = test["frame_offsets"]
    test_rolls = [image_to_roll(test["frames"][start:end]).T for start, end in zip(offsets[:-1], offsets[1:])]
    report = None
    for mode, value, min_notes, max_notes in args.settings:
        rng = np.random.default_rng(args.seed)
        primers = generate.choose_primers(test["x"], args.pieces, rng)
        knob = {"threshold": value} if mode == "threshold" else {"temperature": value} if mode == "bernoulli" else {}
        sampler = make_sampler(mode, min_notes=min_notes, max_notes=max_notes, **knob)
        frames = generate.sample_frames(model, primers, args.steps, sampler, rng, progress=False)
        report = quality_report([piece.T.astype(bool) for piece in frames], test_rolls)
        overlaps = [value for value in report["overlap"].values() if value is not None]
        setting = {"mode": mode, "value": value, "min_notes": min_notes, "max_notes": max_notes}
        print(json.dumps({**setting, **report["generated"], "mean_overlap": float(np.mean(overlaps))}), flush=True)
    if report is not None:
        print(json.dumps({"mode": "test pieces", **report["test"]}))


if __name__ == "__main__":
    main()
