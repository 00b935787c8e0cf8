"""The `rollgen` command: the pipeline's pieces for use outside DVC."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import typer

from rollgen import paths
from rollgen.errors import RollgenError
from rollgen.params import GenerateParams, ImagesParams, IngestParams, ParamsError, validate
from rollgen.training import local_workers  # no TensorFlow

GENERATE = GenerateParams()  # the generate command's defaults are the pipeline's
INGEST, IMAGES = IngestParams(), ImagesParams()  # and the check command's
app = typer.Typer(help="rollgen: piano-roll music models, from MIDI to new MIDI and WAV.", no_args_is_help=True)


def reported(command: Callable) -> Callable:
    """A command whose RollgenError, or OSError (a file it cannot write: a folder, no permission, a full
    disk), ends it with the message on one line and exit status 1, not a traceback."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except RollgenError as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(1) from None
        except OSError as error:
            typer.echo(f"{error.filename}: {error.strerror}" if error.filename else str(error), err=True)
            raise typer.Exit(1) from None

    return run


def one_line(text: str) -> str:
    """`text` with its unprintable characters (a newline in a file name, ...) as escapes: one file, one line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


FLAG = "LOSES NOTES"  # marks a file of `rollgen check` that loses over 1% of its in-range notes
WHY_LOST = {  # what a grid loses (rollgen.music.roll.GRIDS), and what keeps it
    "nearest": "notes struck on one step merge (merged_by_grid): --steps-per-quarter 8 or 12 draws them apart",
    "sample": "notes that sound at no step's start vanish (too_short): --grid nearest keeps them",
    "floor": "notes shorter than a step vanish (too_short): --grid nearest keeps them",
}


@app.command()
@reported
def check(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="A folder of MIDI files (and scores)."),
    workers: int = typer.Option(INGEST.workers, help="Parallel worker processes (0 = all cores)."),
    include_drums: bool = typer.Option(INGEST.include_drums, help="Count notes on MIDI channel 10 (drums)."),
    timeout: float = typer.Option(INGEST.timeout_s, help="Processor seconds one file may take before it is rejected."),
    steps_per_quarter: int = typer.Option(
        IMAGES.steps_per_quarter, min=1, help="Grid steps per quarter note (images.steps_per_quarter)."
    ),
    grid: str = typer.Option(
        IMAGES.grid, help="nearest, sample or floor (images.grid): how notes are put on the steps."
    ),
) -> None:
    """Check a folder before a run: one line per file with its status and reason, then a summary.

    An accepted file's line gives its notes drawn, the share of its in-range notes lost (zero length,
    shorter than one step, onsets the grid rounds onto one step) and the share merged in the file (unisons:
    two voices on one note, which no roll shows); a file that loses over 1% is marked LOSES NOTES and counted
    in a last line. Exit code 0 when every file is usable (duplicates are kept once), 1 when some are rejected. The
    defaults, and the limits no option sets (ingest.max_quarters, ...), are the ingest and images params'
    defaults (rollgen.params).
    """
    from collections import Counter

    from rollgen.data import ingest

    options = {"source": str(folder), "workers": workers, "include_drums": include_drums, "timeout_s": timeout}
    try:
        ingest_params = validate("ingest", options)
        images_params = validate("images", {"steps_per_quarter": steps_per_quarter, "grid": grid})
    except ParamsError as error:
        raise typer.BadParameter(str(error)) from None
    sources = ingest.list_sources(ingest_params.source)
    rows = [row for row, _ in ingest.examine_all(sources, ingest_params, images_params)]
    ingest.mark_duplicates(rows)
    flagged = 0
    for row in rows:
        if row.status != "accepted":
            typer.echo(one_line(f"{row.status:<9} {row.path}: {row.reason}"))
            continue
        lost = ", ".join(f"{column} {getattr(row, column)}" for column in ingest.LOST_COLUMNS if getattr(row, column))
        merged = row.merged_in_file / row.in_range if row.in_range else 0.0
        detail = (
            f"{row.notes_drawn} of {row.notes_read} notes drawn, {row.lost_share:.1%} of {row.in_range} in range"
            f" lost{f' ({lost})' if lost else ''}, {merged:.1%} merged in the file, {row.steps} steps"
        )
        marker = ""
        if row.lost_share > ingest.LOST_SHARE_FLAG:
            flagged += 1
            marker = f"  <-- {FLAG}"
        typer.echo(one_line(f"{row.status:<9} {row.path}: {detail}{marker}"))
    counts = Counter(row.status for row in rows)
    typer.echo(
        f"{len(rows)} files: {counts['accepted']} accepted, {counts['rejected']} rejected, "
        f"{counts['duplicate']} duplicate"
    )
    if flagged:
        typer.echo(
            f"{flagged} of {counts['accepted']} accepted files ({FLAG}) lose over {ingest.LOST_SHARE_FLAG:.0%} of"
            f" their in-range notes on the {grid} grid of {steps_per_quarter} steps a quarter; {WHY_LOST[grid]}"
        )
    if counts["rejected"]:
        raise typer.Exit(1)


@app.command()
@reported
def roll(
    midi_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A MIDI file."),
    output: Path = typer.Option(..., "-o", "--output", dir_okay=False, help="PNG to write."),
    steps_per_quarter: int = typer.Option(
        IMAGES.steps_per_quarter, min=1, help="Grid steps per quarter note (images.steps_per_quarter)."
    ),
    grid: str = typer.Option(IMAGES.grid, help="nearest, sample or floor (images.grid): how notes go on the steps."),
) -> None:
    """Draw a MIDI file's piano roll as a PNG (pitch up, time right, beat and bar lines)."""
    from rollgen.music.meter import Meter, frame_positions
    from rollgen.music.midi import MidiError, read_midi
    from rollgen.music.pictures import save_roll_picture
    from rollgen.music.roll import check_grid, onsets, piece_to_roll, sounding

    try:
        check_grid(grid)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--grid") from error
    try:
        piece = read_midi(midi_file.read_bytes())
        piano_roll, dropped = piece_to_roll(piece, steps_per_quarter=steps_per_quarter, grid=grid)
    except MidiError as error:
        typer.echo(f"{midi_file}: {error}", err=True)
        raise typer.Exit(1) from error
    positions = frame_positions(Meter.from_piece(piece, steps_per_quarter), piano_roll.shape[1])  # its own bars
    save_roll_picture(piano_roll, output, steps_per_quarter=steps_per_quarter, positions=positions)
    left_out = f", not drawn: {dict(sorted((dropped + piece.dropped).items()))}" if dropped or piece.dropped else ""
    cells, struck = int(sounding(piano_roll).sum()), int(onsets(piano_roll).sum())
    typer.echo(f"{output}: {struck} notes struck, {piano_roll.shape[1]} steps, {cells} sounding cells{left_out}")


@app.command()
@reported
def render(
    midi_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A MIDI file."),
    wav_file: Path = typer.Argument(..., dir_okay=False, help="WAV to write (44.1 kHz, 16-bit)."),
    soundfont: str = typer.Option("auto", help="A .sf2 SoundFont, or auto: the first General MIDI one installed."),
) -> None:
    """Render MIDI to WAV with FluidSynth and a General MIDI SoundFont."""
    from rollgen.music.audio import AudioError, render_wav

    try:
        render_wav(midi_file, wav_file, soundfont=soundfont)
    except AudioError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error
    typer.echo(str(wav_file))


@app.command()
@reported
def workers(
    count: int = typer.Argument(..., min=1, help="How many workers (worker 0 is the chief)."),
    command: list[str] = typer.Argument(..., help="What each worker runs, after --: python stages/train.py"),
    first_port: int = typer.Option(local_workers.FIRST_PORT, help="Worker i listens on 127.0.0.1:FIRST_PORT+i."),
) -> None:
    """Run COMMAND as COUNT multi_worker training workers here, in a network of their own (loopback only)."""
    local_workers.launch(count, command, first_port)


@app.command()
@reported
def generate(
    model: str = typer.Option(
        str(paths.MODEL),
        help="A trained .keras model, or one in the MLflow store (MLFLOW_TRACKING_URI, else ./mlflow.db):"
        " models:/rollgen@champion, models:/rollgen/3, runs:/RUN_ID/generator.",
    ),
    out: Path = typer.Option(
        Path("generated"),
        help="Folder for NNN.mid, NNN.wav, NNN.png and index.html (files of the same names are replaced).",
    ),
    primer: str = typer.Option(
        GENERATE.primer,
        help="What starts every piece: 'test' or 'val' (a random excerpt of that split's pieces per piece, from"
        " --windows), 'none' (nothing: from a bar line), or a MIDI file whose first --primer-steps steps start"
        " every piece. As the generate stage reads generate.primer.",
    ),
    primer_steps: int = typer.Option(
        GENERATE.primer_steps, min=0, help="Steps of the primer the model reads before it generates."
    ),
    windows: Path = typer.Option(
        paths.WINDOWS_DIR,
        help="The windows stage's folder, whose test.npz or val.npz --primer test or val draws from; or one"
        " archive file to draw from.",
    ),
    num: int = typer.Option(GENERATE.pieces, min=1, help="Number of pieces."),
    steps: int = typer.Option(
        GENERATE.steps, min=1, help="Frames generated per piece, on the model's grid (16th notes by default)."
    ),
    sampling: str = typer.Option(GENERATE.sampling, help="bernoulli, threshold, or vanish_proof (the article's loop)."),
    temperature: str = typer.Option(
        GENERATE.temperature,
        help="bernoulli: below 1 sharper, above 1 freer; auto: the one of generate.temperatures whose pieces are"
        " most like the validation pieces in --windows (as the generate stage chooses it).",
    ),
    threshold: float = typer.Option(
        GENERATE.threshold, help="threshold: a pitch sounds when its probability exceeds this."
    ),
    max_notes: int = typer.Option(
        GENERATE.max_notes,
        min=0,
        help="bernoulli/threshold, factorised models: at most this many pitches per step (0 = no cap).",
    ),
    min_notes: int = typer.Option(
        GENERATE.min_notes, min=0, help="bernoulli/threshold, factorised models: at least this many (0 = no floor)."
    ),
    tempo: float = typer.Option(GENERATE.tempo, help="Beats per minute of the written MIDI."),
    soundfont: str = typer.Option(GENERATE.soundfont, help="A .sf2 SoundFont, or auto."),
    seed: int = typer.Option(GENERATE.seed, help="Random seed: the same seed gives the same music."),
    include_primer: bool = typer.Option(
        GENERATE.include_primer,
        "--primer-in-output/--no-primer-in-output",
        help="Start the written pieces with the primer's steps (shaded in the pictures), or leave them out.",
    ),
) -> None:
    """Generate new pieces with a trained model, each started from real music: MIDI, WAV, PNG and index.html.

    The defaults are the `generate` stage's (rollgen.params.GenerateParams, listed in params.yaml), chosen for
    the default model on the Bach chorales.
    """
    import tempfile

    from mlflow.exceptions import MlflowException

    from rollgen.generation.gallery import write_pieces
    from rollgen.generation.generate import generate_pieces, with_temperature
    from rollgen.generation.primers import SPLIT_PRIMERS, primer_source
    from rollgen.tracking import registry

    options = {
        "pieces": num, "steps": steps, "sampling": sampling, "temperature": temperature, "threshold": threshold,
        "max_notes": max_notes, "min_notes": min_notes, "primer": primer, "primer_steps": primer_steps,
        "tempo": tempo, "soundfont": soundfont, "seed": seed, "include_primer": include_primer,
    }  # fmt: skip
    try:
        options["temperature"] = temperature if temperature == "auto" else float(temperature)
    except ValueError:
        raise typer.BadParameter(f"auto or a number, not {temperature!r}", param_hint="--temperature") from None
    try:
        params = validate("generate", options)  # vanish_proof's offset and growth: the defaults
    except ParamsError as error:
        raise typer.BadParameter(str(error)) from None
    if primer in SPLIT_PRIMERS and not windows.exists():
        raise typer.BadParameter(f"{windows} does not exist", param_hint="--windows")
    with tempfile.TemporaryDirectory() as folder:  # a model from the store is downloaded here
        try:
            keras_file = registry.keras_file(model, Path(folder))
        except MlflowException as error:  # no such registered model, version, alias or run
            raise RollgenError(f"{model}: {error.message.splitlines()[0]}") from None
        if not keras_file.is_file():
            raise typer.BadParameter(f"{model} does not exist", param_hint="--model")
        network = load_model(model, keras_file)
    typer.echo(which_model(model))
    params, chosen = with_temperature(network, params, windows)
    if chosen.get("auto"):
        onset = f", onset temperature {params.onset_temperature:g}" if "onset" in chosen else ""
        typer.echo(f"temperature {params.temperature:g}{onset}: chosen on the validation pieces in {windows}")
    pieces = generate_pieces(network, params, primer_source(primer, windows))
    page = write_pieces(pieces, out, network.steps_per_quarter, params, chosen)
    typer.echo(f"{page}: {len(pieces)} pieces")


def load_model(model: str, keras_file: Path):
    """The FrameModel in `keras_file` (--model `model`); a RollgenError where it is no model rollgen can load."""
    import zipfile

    from rollgen.models import frame_model

    why = "a .keras model is a zip file, and this is not one"
    if zipfile.is_zipfile(keras_file):
        try:
            return frame_model.load(keras_file)
        except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as error:
            why = (str(error).strip().splitlines() or [type(error).__name__])[0]
    raise RollgenError(f"{model}: not a .keras model rollgen can load ({why})")


def which_model(model: str) -> str:
    """The line saying which model `rollgen generate` uses: for the workspace's model (models/model.keras, the
    run in metrics/train.json), also whether the registry's champion is another and how to use that one; for
    a `models:/NAME@ALIAS` URI, its version. The registry is read only where it is a local store that exists
    (no store is created, no server waited for)."""
    import json

    from rollgen.tracking import registry

    if model.startswith("models:/") and "@" in model:
        version = _registered_version(*model.removeprefix("models:/").split("@", 1))
        return f"model: {model}" + (f" (version {version.version}, training run {version.run_id})" if version else "")
    workspace = Path(model).resolve() == paths.MODEL.resolve() and paths.TRAIN_METRICS.is_file()
    if not workspace:
        return f"model: {model}"
    train = json.loads(paths.TRAIN_METRICS.read_text(encoding="utf-8"))
    run_id = train.get("mlflow_run_id")
    if not run_id:  # trained without MLflow: nothing to compare
        return f"model: {model}"
    line = f"model: {model} (training run {run_id}"
    champion = _registered_version(registry.NAME, registry.CHAMPION)
    if champion is None:
        return f"{line})"
    if champion.run_id == run_id:
        return f"{line}: the registry's {registry.CHAMPION}, version {champion.version})"
    return (
        f"{line}, val_nll {train.get('val_nll')}) is not the registry's {registry.CHAMPION}: that is version"
        f" {champion.version} (training run {champion.run_id}, val_nll {champion.tags.get('val_nll')});"
        f" --model models:/{registry.NAME}@{registry.CHAMPION} generates with it"
    )


def _registered_version(name: str, alias: str):
    """The model version `name`@`alias` in the tracking store, or None: no such alias, or the store is a
    local database that does not exist, or not local (a server may be slow to answer, or down)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from rollgen.tracking import runs

    uri = runs.tracking_uri()
    database = Path(uri.removeprefix("sqlite:///"))
    if not uri.startswith("sqlite:///") or not database.is_file():
        return None
    mlflow.set_tracking_uri(f"sqlite:///{database.resolve()}")  # MLflow keeps a store per URI, not per folder
    try:
        return mlflow.MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


if __name__ == "__main__":
    app()
