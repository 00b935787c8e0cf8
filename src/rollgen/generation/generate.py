"""Autoregressive generation: every piece advances together, one model step per frame for the whole batch.

`generate_pieces` is the one way rollgen generates: the generate stage (`run`), `rollgen generate`, the MLflow
generator (rollgen.tracking.generator_model) and the benchmarks all call it, so one model, params and primer
give the same pieces wherever they are asked for. A temperature left to `auto` is chosen first, on the
validation pieces alone (`with_temperature`), by the stage and `rollgen generate` alike.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rollgen import files, paths
from rollgen.data.archive import Sequences, load_sequences, read_sequences
from rollgen.errors import RollgenError
from rollgen.evaluation.quality import GATES, data_gates, describe_set, quality_report
from rollgen.generation.gallery import write_pieces
from rollgen.generation.piece import GeneratedPiece
from rollgen.generation.primers import PrimerSource, make_primers, primer_source
from rollgen.models import frame_model
from rollgen.models.frame_model import FrameModel
from rollgen.models.onsets import as_levels
from rollgen.models.sampling import Sampler, make_sampler
from rollgen.music import meter
from rollgen.params import GenerateParams

PROGRESS_STEPS = 256  # the progress bar moves on every this many generated steps
# What an auto temperature is chosen on, per temperature tried: 32 pieces (the corpus table's report draws
# 32 × 256), as long as the pieces asked for (their statistics drift with length), at most FIT_MAX_STEPS steps
# so that the whole curve costs seconds (rollgen#27).
FIT_PIECES = 32
FIT_MAX_STEPS = 512


def sample_frames(
    model: FrameModel,
    primers: np.ndarray,
    positions: np.ndarray,
    steps: int,
    sampler: Sampler,
    rng: np.random.Generator,
    progress: bool = True,
) -> np.ndarray:
    """`steps` new frames per primer: uint8 levels (0, HELD, ONSET; rollgen.music.roll) of shape (pieces, steps,
    pitches), a note struck again where the model draws it (a window model: where its pitch starts to sound).

    primers: uint8 levels (pieces, primer steps, pitches), read once (FrameModel.start); positions: int (pieces, primer
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
    """The sampler `params` describe (note caps 0 = off); an auto temperature must have been chosen first
    (`with_temperature`)."""
    if params.sampling == "bernoulli" and params.temperature == "auto":
        raise RollgenError(
            "generate.temperature is auto: choose it on the validation pieces first"
            " (rollgen.generation.generate.with_temperature), or give a number"
        )
    return make_sampler(
        params.sampling,
        threshold=params.threshold,
        # Only bernoulli tempers; the others read the model's own probabilities (an auto temperature is unused).
        temperature=params.temperature if params.sampling == "bernoulli" else Sampler.temperature,
        onset_temperature=None if params.onset_temperature == "auto" else params.onset_temperature,
        vanish_proof=params.vanish_proof,
        vanish_inc=params.vanish_inc,
        max_notes=params.max_notes,
        min_notes=params.min_notes,
    )


def generate_pieces(
    model: FrameModel, params: GenerateParams, primer: PrimerSource, progress: bool = True
) -> list[GeneratedPiece]:
    """`params.pieces` pieces of `params.steps` new frames on the model's grid, each after a primer of
    `params.primer_steps` steps from `primer` (see rollgen.generation.primers; `primer_source` reads
    `params.primer`), drawn with `params`' sampler, every random number from `params.seed`. Each piece keeps
    its primer and every frame's bar position, the new frames' going on from the primer's."""
    sampler = sampler_from_params(params)
    try:
        model.check(sampler)
    except ValueError as error:  # note caps on a NADE model: the params' mistake, said in the params' words
        raise RollgenError(str(error)) from None
    rng = np.random.default_rng(params.seed)
    primers, positions = make_primers(
        primer, params.pieces, params.primer_steps, rng, model.steps_per_quarter, model.grid
    )
    primers = as_levels(primers, time_axis=1)
    frames = sample_frames(model, primers, positions, params.steps, sampler, rng, progress)
    read = primers.shape[1]
    return [
        GeneratedPiece(
            primer=primers[number].T,
            roll=frames[number].T,
            positions=np.concatenate([where[:read], meter.positions_after(where[read], params.steps)]),
        )
        for number, where in enumerate(positions)
    ]


def fit_temperature(
    model: FrameModel, params: GenerateParams, val: Sequences, key: str = "temperature"
) -> tuple[float, dict]:
    """The value of `params.temperatures` for `key` (temperature, or onset_temperature) whose music is most like
    the validation pieces `val`, and the curve it was read from: per value (as text), its `sampling_quality` at
    `fit_shape(params)`. The same primers and random numbers at every value (`params.seed`), so the curve moves
    with the value alone; `best_temperature` chooses. Only `val` is read: the test pieces never choose anything."""
    val_rolls = [val.sequence(number).T for number in range(len(val))]
    curve = {}
    for temperature in params.temperatures:
        trial = params.model_copy(update={"sampling": "bernoulli", key: temperature})
        curve[str(temperature)] = sampling_quality(model, trial, val, val_rolls, *fit_shape(params))
    return best_temperature(curve), curve


def fit_shape(params: GenerateParams) -> tuple[int, int]:
    """(pieces, steps) that `fit_temperature` draws per temperature: FIT_PIECES pieces as long as those
    `params` asks for, up to FIT_MAX_STEPS."""
    return FIT_PIECES, min(params.steps, FIT_MAX_STEPS)


def sampling_quality(
    model: FrameModel, params: GenerateParams, val: Sequences, val_rolls: list[np.ndarray], pieces: int, steps: int
) -> dict:
    """How music drawn with `params`' sampling compares with the validation pieces (`val`, and `val_rolls` its
    rolls of levels): `pieces` pieces of `steps` steps after excerpts of `val` (`params.primer_steps` long, from
    `params.seed`), their `quality_report` statistics that the gates read, each gate passed or not, how many
    passed and their distance (rollgen.evaluation.quality.check_gates), and the mean overlap area. The one
    measure of a sampling setting: `fit_temperature` and benchmarks/sampling_sweep.py both read it."""
    trial = params.model_copy(update={"pieces": pieces, "steps": steps})
    rolls = [piece.roll for piece in generate_pieces(model, trial, val, progress=False)]
    report = quality_report(rolls, val_rolls, model.steps_per_quarter, reference_name="val")
    overlaps = [value for value in report["overlap"].values() if value is not None]
    return {
        **{gate.statistic: report["generated"][gate.statistic] for gate in GATES},
        "gates": {name: gate["pass"] for name, gate in report["gates"].items()},
        "gates_passed": report["gates_passed"],
        "gates_distance": report["gates_distance"],
        "mean_overlap": float(np.mean(overlaps)) if overlaps else None,
    }


def best_temperature(curve: dict[str, dict]) -> float:
    """The temperature of a `fit_temperature` curve that passes the most gates, then lies nearest the
    validation pieces (the smallest gates_distance), then comes first."""
    return float(min(curve, key=lambda name: (-curve[name]["gates_passed"], _or_inf(curve[name]["gates_distance"]))))


def with_temperature(model: FrameModel, params: GenerateParams, windows: Path) -> tuple[GenerateParams, dict]:
    """`params` with a number for an auto temperature, chosen by `fit_temperature` on the validation pieces:
    val.npz in `windows` (the windows stage's folder), or beside it where it names an archive file (never
    that file, which may hold the test pieces); and what the metrics record of it: the temperature, whether
    it was chosen, and the curve it was chosen from.

    An auto onset temperature follows the temperature, unless the chosen temperature's pieces fail a quality
    gate and the model strikes held notes again: then it is fitted too, at the chosen temperature (`onset`
    in the record: its value and curve). Repeated notes and long ones are what it moves (below 1: fewer
    repeats, longer notes), which the temperature alone trades against the number of notes; a corpus whose
    pieces pass every gate at the temperature alone pays nothing for it."""
    if params.sampling != "bernoulli":
        return params, {}
    if params.temperature != "auto":
        return params, {"value": params.temperature, "auto": False}
    windows = Path(windows)
    archive = (windows.parent if windows.is_file() else windows) / "val.npz"
    if not archive.is_file():
        raise RollgenError(
            f"generate.temperature auto is chosen on the validation pieces, {archive}, which does not exist:"
            " run `dvc repro windows`, name the folder that holds it, or give a temperature"
        )
    val = read_sequences(archive)
    chosen, curve = fit_temperature(model, params, val)
    params, record = params.model_copy(update={"temperature": chosen}), {"value": chosen, "auto": True, "curve": curve}
    passed = curve[str(chosen)]["gates_passed"] == len(GATES)
    if params.onset_temperature == "auto" and model.draws_onsets and not passed:
        onset, onset_curve = fit_temperature(model, params, val, key="onset_temperature")
        params = params.model_copy(update={"onset_temperature": onset})
        record["onset"] = {"value": onset, "curve": onset_curve}
    return params, record


def _or_inf(value: float | None) -> float:
    return math.inf if value is None else value


def run(
    params: GenerateParams,
    model_path: Path = paths.MODEL,
    windows_dir: Path = paths.WINDOWS_DIR,
    out_dir: Path = paths.GENERATED,
    metrics_path: Path = paths.GENERATE_METRICS,
) -> dict:
    """Generates `params.pieces` pieces into `out_dir` (replaced as a whole) on the grid the model was trained
    on, at the temperature `with_temperature` gives, and writes `metrics_path`: the generated steps (never
    the primers) compared with the validation pieces, each gate passed or not (rollgen.evaluation.quality),
    the test and training pieces' numbers beside them with the gates they pass themselves (`data_gates`),
    and the temperature with its curve."""
    model = frame_model.load(model_path)
    params, temperature = with_temperature(model, params, windows_dir)
    pieces = generate_pieces(model, params, primer_source(params.primer, windows_dir))
    with files.atomic_dir(out_dir) as folder:
        write_pieces(pieces, folder, model.steps_per_quarter, params, temperature)
    rolls = [piece.roll for piece in pieces]
    val, test, train = (load_sequences(split, windows_dir) for split in ("val", "test", "train"))
    val_rolls, test_rolls, train_rolls = ([data.sequence(n).T for n in range(len(data))] for data in (val, test, train))
    report = quality_report(rolls, val_rolls, model.steps_per_quarter, reference_name="val")
    held = {
        split: describe_set(split_rolls, model.steps_per_quarter, report["long_note_limit"])
        for split, split_rolls in (("test", test_rolls), ("train", train_rolls))
    }
    metrics = {
        **report,
        **held,
        "data_gates": {split: data_gates(block, report["val"]) for split, block in held.items()},
        "sampling": params.sampling,
        **({"temperature": temperature} if temperature else {}),
        "primer": params.primer,
        "primer_steps": pieces[0].primer_steps,
        "include_primer": params.include_primer,
    }
    files.write_json(metrics_path, metrics)
    return metrics
