"""Rewrites each stage's code deps in dvc.yaml to the import closure of its script (rollgen.sources;
tests/test_stage_deps.py checks it): run it after adding an import, and the test passes again.

    python scripts/sync_stage_deps.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from rollgen.sources import script_closure  # noqa: E402


def main() -> None:
    text = (REPO / "dvc.yaml").read_text()
    for name, stage in yaml.safe_load(text)["stages"].items():
        script = stage["cmd"].split()[-1]
        code = sorted(script_closure(REPO / script, REPO))
        data = [dep for dep in stage["deps"] if not re.match(r"(src|stages)/.*\.py$", dep)]
        block = re.search(rf"\n  {name}:\n(?:    .*\n|\n)*?    deps:\n((?:      - .*\n)+)", text)
        lines = "".join(f"      - {dep}\n" for dep in [*code, *data])
        text = text[: block.start(1)] + lines + text[block.end(1) :]
    (REPO / "dvc.yaml").write_text(text)


if __name__ == "__main__":
    main()
