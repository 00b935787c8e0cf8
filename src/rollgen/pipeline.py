"""What dvc.yaml declares, for the check stage (stages/check.py): the params keys each stage reads, which
params.yaml must write, and the paths each stage writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rollgen import paths
from rollgen.params import ParamsError

OUTPUT_FIELDS = ("outs", "metrics", "plots")


@dataclass(frozen=True)
class Stage:
    """One stage of dvc.yaml: the params.yaml keys it declares ('train', 'images.grid') and its outputs."""

    params: list[str]
    outputs: list[Path]


def read_stages(path: Path = paths.PIPELINE) -> dict[str, Stage]:
    """The stages of a dvc.yaml by name. A params entry for the whole of params.yaml (`- params.yaml:`) or for
    another file declares no key of params.yaml."""
    stages = yaml.safe_load(path.read_text(encoding="utf-8"))["stages"]
    return {name: Stage(_params_keys(stage), _outputs(stage)) for name, stage in stages.items()}


def _params_keys(stage: dict) -> list[str]:
    keys = []
    for entry in stage.get("params", []):
        if isinstance(entry, str):
            keys.append(entry)
        elif str(paths.PARAMS) in entry:  # {"params.yaml": [keys]} or {"params.yaml": None}
            keys.extend(entry[str(paths.PARAMS)] or [])
    return keys


def _outputs(stage: dict) -> list[Path]:
    """Paths of `outs`, `metrics` and `plots`, each written `- path` or `- path: {options}`."""
    return [Path(entry if isinstance(entry, str) else next(iter(entry))) for field in OUTPUT_FIELDS
            for entry in stage.get(field, [])]  # fmt: skip


def check_params_written(stages: Mapping[str, Stage], path: Path = paths.PARAMS) -> None:
    """Raises ParamsError naming every key that a stage declares and params.yaml (`path`) leaves out.

    rollgen.params reads a key left out as its default, but DVC stops a stage whose declared params are
    missing only after deleting the stage's outputs: in a DVC project every declared key must be written.
    """
    written = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    problems = []
    for name, stage in stages.items():
        for key in stage.params:
            found: Any = written
            for part in key.split("."):
                found = found.get(part, _MISSING) if isinstance(found, dict) else _MISSING
            if found is _MISSING:
                problems.append(
                    f"{path}: {key} is missing; stage {name} reads it (dvc.yaml): write it, as the repository's "
                    "params.yaml does with every key and its default"
                )
    if problems:
        raise ParamsError("\n".join(problems))


_MISSING = object()
