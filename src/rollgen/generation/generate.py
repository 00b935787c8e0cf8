"""Autoregressive generation: every piece advances together, one model step per frame for the whole batch.

`generate_pieces` is the one way rollgen generates: the generate stage (`run`), `rollgen generate`, the MLflow
generator (rollgen.tracking.generator_model) and the benchmarks all call it, so one model, params and primer
give the same pieces wherever they are asked for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from rollgen import files, paths
from rollgen.data.archive import load_sequences, sounding
from rollgen.errors import RollgenError
from rollgen.evaluation.quality import quality_report
from rollgen.generation.gallery import write_pieces
from rollgen.generation.primers import PrimerSource, make_primers, primer_source
from rollgen.models import frame_model
from rollgen.models.frame_model import FrameModel
from rollgen.models.sampling import Sampler, make_sampler
from rollgen.params import GenerateParams

PROGRESS_STEPS = 256  # the progress bar moves on every this many generated steps


def sample_frames(
    model: FrameModel,
    primers: np.ndarray,
    positions: np.ndarray,
    steps: int,
    sampler: Sampler,
    rng: np.random.Generator,
    progress: bool = True,
) -> np.ndarray:
    """`steps` new frames per primer: uint8 0/1 of shape (pieces, steps, pitches).

    primers: float frames (pieces, primer steps, pitches) in 0..1, read once; positions: int (pieces, primer
    steps + 1, 4), the bar positions of the primer's frames and of the first new one (rollgen.music.meter). Then
    one model step per new frame for all pieces at once: a window model slides its window (the article's
    loop), a sequence model carries its state, so a step costs the same however long the piece has run.
    """
    model.check(sampler)
    state = model.start(primers, positions)
    frames = np.zeros((len(primers), steps, primers.shape[2]), dtype=np.uint8)
    with tqdm(total=steps, desc="generate", unit="step", disable=not progress) as bar:
        for first in range(0, steps, PROGRESS_STEPS):
            count = min(PROGRESS_STEPS, steps - first)
            frames[:, first : first + count], state = model.generate(state, sampler, count, rng, first_step=first)
            bar.update(count)
    return frames


def sampler_from_params(params: GenerateParams) -> Sampler:
    """The sampler `params` describe (note caps 0 = off)."""
    return make_sampler(
        params.sampling,
        threshold=params.threshold,
        temperature=params.temperature,
        vanish_proof=params.vanish_proof,
        vanish_inc=params.vanish_inc,
        max_notes=params.max_notes,
        min_notes=params.min_notes,
    )


def generate_pieces(
    model: FrameModel, params: GenerateParams, primer: PrimerSource, progress: bool = True
) -> list[np.ndarray]:
    """`params.pieces` bool rolls (pitches, `params.steps`) of new frames on the model's grid, each after a
    primer of `params.primer_steps` steps from `primer` (see rollgen.generation.primers; `primer_source` reads
    `params.primer`), drawn with `params`' sampler, every random number from `params.seed`."""
    sampler = sampler_from_params(params)
    try:
        model.check(sampler)
    except ValueError as error:  # note caps on a NADE model: the params' mistake, said in the params' words
        raise RollgenError(str(error)) from None
    rng = np.random.default_rng(params.seed)
    primers, positions = make_primers(
        primer, params.pieces, params.primer_steps, rng, model.steps_per_quarter, model.grid
    )
    frames = sample_frames(model, primers, positions, params.steps, sampler, rng, progress)
    return [piece.T.astype(bool) for piece in frames]


def run(
    params: GenerateParams,
    model_path: Path = paths.MODEL,
    windows_dir: Path = paths.WINDOWS_DIR,
    out_dir: Path = paths.GENERATED,
    metrics_path: Path = paths.GENERATE_METRICS,
) -> dict:
    """Generates `params.pieces` pieces into `out_dir` (replaced as a whole) on the grid the model was trained
    on, and compares them with the test pieces in `metrics_path` (rollgen.evaluation.quality.quality_report)."""
    test = load_sequences("test", windows_dir)
    model = frame_model.load(model_path)
    rolls = generate_pieces(model, params, primer_source(params.primer, windows_dir))
    with files.atomic_dir(out_dir) as folder:
        write_pieces(rolls, folder, model.steps_per_quarter, params)
    test_rolls = [sounding(test.sequence(number).T) for number in range(len(test))]
    metrics = {
        **quality_report(rolls, test_rolls, model.steps_per_quarter),
        "sampling": params.sampling,
        "primer": params.primer,
    }
    files.write_json(metrics_path, metrics)
    return metrics
