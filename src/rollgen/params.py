"""Reads params.yaml: one section per stage, so each stage sees only the knobs it declares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rollgen import paths


def load_params(section: str | None = None, path: Path = paths.PARAMS) -> dict[str, Any]:
    """The whole params.yaml, or one stage's section of it."""
    with open(path, encoding="utf-8") as handle:
        params = yaml.safe_load(handle) or {}
    if section is None:
        return params
    if section not in params:
        raise KeyError(f"{path}: no '{section}:' section")
    return params[section]


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'train': {'epochs': 3}} -> {'train.epochs': 3}, the form MLflow and `dvc exp -S` use."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat
