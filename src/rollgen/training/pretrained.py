"""Training that starts from a trained model (`train.init_from`): fine-tuning, for a folder too small to learn
music from.

A model trained on a large corpus has learnt what a grid of pitches does: voices that move by step, chords,
keys, bars. A folder of a few pieces holds too little to learn that from nothing (music21's Haydn quartets, 4
training pieces: 3 of 6 quality gates trained from scratch); started from such a model, training only has to
learn how the folder differs. The model lies in `pretrained/`, a dependency of the train stage, so a replaced
file retrains; it must be the same model, of the same sizes, on the same grid as the params ask for
(rollgen.training.train.start_from loads it; this module needs no TensorFlow, for the check stage).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rollgen import files, paths
from rollgen.errors import RollgenError

if TYPE_CHECKING:
    from rollgen.params import ImagesParams, TrainParams


def pretrained_file(name: str, folder: Path = paths.PRETRAINED) -> Path | None:
    """The file `train.init_from` names in `folder` (None for ''); an error where it is not there or would
    lie outside the folder, so `dvc repro` stops at its check stage, before the model is deleted."""
    if not name:
        return None
    path = folder / name
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise RollgenError(f"train.init_from '{name}' must name a file inside {folder}/ (the train stage's dependency)")
    if not path.is_file():
        raise RollgenError(f"train.init_from '{name}': no file {path}; put the trained .keras model there")
    return path


def pretrained_sha256(name: str, folder: Path = paths.PRETRAINED) -> str:
    """The content hash of the model training starts from ('' from scratch): part of what a checkpoint must
    have been written by to be resumed, and a tag of the MLflow run."""
    path = pretrained_file(name, folder)
    return files.sha256_file(path) if path else ""


def differences(
    info: dict, shapes: list[tuple], wanted_shapes: list[tuple], params: TrainParams, images: ImagesParams
) -> list[str]:
    """What keeps a saved model (its `info`, its weights' `shapes`) from starting the training `params` and
    `images` ask for, one phrase each: its model, sizes, grid, weights. [] when it can."""
    sizes = params.architecture.model_dump() if params.architecture else {}
    wanted = {"model": params.model, "architecture": sizes, "steps_per_quarter": images.steps_per_quarter}
    found = {key: info.get(key) for key in wanted}
    differs = [f"{key} {found[key]} (the params: {wanted[key]})" for key in wanted if found[key] != wanted[key]]
    if not differs and shapes != wanted_shapes:
        differs.append("the shapes of its weights")
    return differs
