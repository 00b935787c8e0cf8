"""Memory of the windows stage at scale: rollgen's archives against the article's x/y arrays, in one run.

    python benchmarks/windows_memory.py [--copies 10]

Builds an images folder holding `--copies` copies of every piece `dvc repro` drew (data/interim/images: the
chorales' 411 pieces, 107k frames; 10 copies give 1.07 M frames), under new names, then in child processes
(peak RSS from the OS, `resource.getrusage`):
- rollgen: `rollgen.data.windows.run` on that folder (grouping included: the copies are near-identical, so each
  piece's copies form one group), archives of every frame once;
- article: the same frames cut into the article's `split_sequences` arrays, x (n, 9, 106) and y (n, 106) as
  float32 (its model.fit input), one list entry per window as it built them.
Prints both peaks, the archive and array sizes, and the ratio; then all figures as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from rollgen import paths
from rollgen.data.images import METERS_NAME

ROLLGEN = """
import resource, sys
from pathlib import Path
from rollgen.data import windows
from rollgen.params import load_params
folder, params = Path(sys.argv[1]), load_params()
windows.run(params.windows, params.images, folder / "index.csv", folder / "windows", folder / "windows.json")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""

ARTICLE = """
import resource, sys
from pathlib import Path
import numpy as np, pandas as pd
from rollgen.data.images import load_png
folder = Path(sys.argv[1])
index = pd.read_csv(folder / "index.csv", keep_default_na=False)
x, y = [], []
for _, chunks in index.groupby("piece", sort=False):
    images = [load_png(folder / name)[:, :steps] for name, steps in zip(chunks["image"], chunks["steps"])]
    frames = np.concatenate(images, axis=1).T
    for start in range(len(frames) - 9):  # the article's split_sequences, window by window
        x.append(frames[start : start + 9])
        y.append(frames[start + 9])
x = np.array(x, dtype="float32") / 255
y = np.array(y, dtype="float32") / 255
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, x.nbytes + y.nbytes)
"""


def copied_images(source: Path, target: Path, copies: int) -> int:
    """`copies` copies of every piece of an images folder under new names (hard links where possible)."""
    index = pd.read_csv(source / "index.csv", keep_default_na=False, dtype=str)
    meters = pd.read_csv(source / METERS_NAME, keep_default_na=False, dtype=str)
    indexes, meter_tables = [], []
    for copy in range(copies):
        renamed = index.copy()
        renamed["piece"] = f"c{copy}-" + renamed["piece"]
        renamed["path"] = f"copy{copy}/" + renamed["path"]
        renamed["sha256"] = [f"{copy:02x}{sha[2:]}" for sha in renamed["sha256"]]
        renamed["image"] = f"c{copy}-" + renamed["image"]
        for old, new in zip(index["image"], renamed["image"]):
            try:
                os.link(source / old, target / new)
            except OSError:
                shutil.copy(source / old, target / new)
        indexes.append(renamed)
        meter_copy = meters.copy()
        meter_copy["piece"] = f"c{copy}-" + meter_copy["piece"]
        meter_tables.append(meter_copy)
    pd.concat(indexes).to_csv(target / "index.csv", index=False)
    pd.concat(meter_tables).to_csv(target / METERS_NAME, index=False)
    return int(pd.concat(indexes)["steps"].astype(int).sum())


def child(code: str, folder: Path) -> list[int]:
    # This interpreter running this file's own code, an argument list, no shell.
    command = [sys.executable, "-c", code, str(folder)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603 - see above
    return [int(value) for value in result.stdout.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=paths.IMAGES_DIR)
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        frames = copied_images(args.images, folder, args.copies)
        (rollgen_peak,) = child(ROLLGEN, folder)
        archives = sum(path.stat().st_size for path in (folder / "windows").glob("*.npz"))
        article_peak, article_arrays = child(ARTICLE, folder)
    figures = {
        "frames": frames,
        "rollgen_peak_rss_mb": round(rollgen_peak / 2**20, 1),
        "rollgen_archives_mb": round(archives / 2**20, 1),
        "article_peak_rss_mb": round(article_peak / 2**20, 1),
        "article_arrays_mb": round(article_arrays / 2**20, 1),
        "ratio_peak_rss": round(article_peak / rollgen_peak, 1),
        "copies": args.copies,
    }
    print(f"{frames:,} frames ({args.copies} copies of every piece):")
    print(f"  rollgen windows stage: peak RSS {figures['rollgen_peak_rss_mb']} MB, archives "
          f"{figures['rollgen_archives_mb']} MB")  # fmt: skip
    print(f"  article's split_sequences: peak RSS {figures['article_peak_rss_mb']} MB, x/y arrays "
          f"{figures['article_arrays_mb']} MB")  # fmt: skip
    print(f"  article / rollgen peak: x{figures['ratio_peak_rss']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
