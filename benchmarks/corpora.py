"""The quality of rollgen's default pipeline on many corpora: each corpus runs as a real `dvc exp run` in a
temporary clone of this checkout's HEAD (your workspace is not touched; uncommitted changes are left out, the
header says so), and one table (corpora.md, corpora.json; benchmarks/corpora_table.py) gives per corpus the data,
model size, training time, validation and test NLL (network and ensemble), the generated pieces against the
corpus's reference pieces with issue #27's quality gates, and, for the published sets, the published figures.

    python benchmarks/corpora.py                  # every corpus, params.yaml's training (JSB: its DOCUMENTED one)
    python benchmarks/corpora.py --corpora JSB_Chorales,Nottingham --epochs 50
    python benchmarks/corpora.py --folder mine=/data/my_midi --corpora mine   # any folder: train/ valid/ test/
    python benchmarks/corpora.py --folder MuseData=/data/MuseData --corpora MuseData   # a published set's protocol
    python benchmarks/corpora.py --corpora JSB_Chorales,ryansMammoth --epochs 2 --limit 20 --pieces 4 --steps 32
    python benchmarks/corpora.py --corpora haydn --pretrained chorales.keras --set train.init_from=chorales.keras

Every training run lands in one MLflow store (MLFLOW_TRACKING_URI, else this project's mlflow.db), experiment
`--experiment`, named and tagged by its corpus; the DVC experiment is corpora-NAME (the run's `dvc_experiment`
tag). OUT/logs/NAME.log and OUT/metrics/NAME/ keep each run's log and metrics files; the table is rewritten
after every corpus. Imports nothing of rollgen: dvc runs the pipeline, its metrics files are read back.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

if __package__:  # imported as benchmarks.corpora (the tests)
    from benchmarks.corpora_table import corpus_row, markdown
else:  # run as a script: benchmarks/ is first on the path
    from corpora_table import corpus_row, markdown

REPO = Path(__file__).resolve().parents[1]
METRICS = ("ingest", "windows", "train", "eval", "generate")  # metrics/NAME.json, as dvc.yaml declares them
SPLIT_FOLDERS = ("train", "valid", "val", "test")  # what windows.split: auto recognises in a source folder
# music21's corpus by the name getComposer knows: 'schumann' gives nothing, Robert's scores are 'schumann_robert'.
MUSIC21 = {
    "palestrina": "palestrina",  # 1318 .krn mass movements
    "monteverdi": "monteverdi",  # 49 .mxl madrigals (the .rntxt analyses beside them are skipped)
    "beethoven": "beethoven",  # string quartets, 22 .mxl + 4 .krn (two editions of the same movements)
    "mozart": "mozart",  # 16 .mxl quartet movements
    "haydn": "haydn",  # 9 .mxl quartet movements
    "schumann": "schumann_robert",  # 7 .mxl/.xml: Dichterliebe no. 2, op. 41 no. 1, op. 48 no. 2
    "ryansMammoth": "ryansMammoth",  # 1059 .abc fiddle tunes, one tune per file
}
# The published sets (../shared/corpora/README.md): their grid, scored on the 88 keys; `sample` draws what
# sounds at each step's start, which is what their frames hold.
PUBLISHED_GRIDS = {"JSB_Chorales": ("JSB", 1), "Nottingham": ("Nottingham", 2), "Piano_midi": ("Piano-midi.de", 2),
                   "MuseData": ("MuseData", 2)}  # fmt: skip
PUBLISHED_SETTINGS = {"images.grid": "sample", "evaluate.highest_pitch": 108}
# A set's own training, chosen on its validation split, where the defaults (chosen on 16th-note chorales) did not serve
# it (docs/results.md, "JSB: the defaults underfit"): JSB's 13,807 quarter-note frames were 16 batches an epoch at 16
# rows of 64 steps; relative attention gives its quarter notes nothing; its NADE head has 512 hidden units, not 128, for
# a new four-voice chord nearly every frame, and reads the key summary (validation 5.026 -> 4.861 with 256 units, 4.802
# with 512 but its pieces fell out of key; 4.812 with 512 and the key summary, whose pieces keep it), and its weights
# averaged over 10 epochs of steps (4.812 -> 4.771: past epoch ~150 the weights of one step over-fit). Nottingham:
# relative attention over 64 steps, 16 rows (validation 1.581 -> 1.291, its pieces pass every gate). Piano-midi.de:
# relative attention over 128 steps (16 bars), 8 rows a batch (validation 6.857 -> 6.499; over 64 steps 6.564 and its
# pieces fell out of key), the default since; then transposition by up to 6 semitones with the key summary (6.499 ->
# 6.260; ±6 alone gave 6.240 but its pieces fell out of key, 0.821 against the gate's 0.842; with the key summary
# 0.908), over 120 epochs (6.260 -> 6.152: more augmentation, more to learn). Each keeps the sizes it was chosen with
# when the defaults move: Nottingham does not read the key summary (chosen before it; on the chorales it costs
# validation NLL; docs/results.md). Haydn (7 pieces kept): a 30% validation share splits it 4/2/1 instead of 5/1/1, so
# its gates compare with two pieces as Schumann's 3/2/1 does by default (chosen from the split's counts, before any run
# with it; 30% would leave Schumann 2 training pieces). --set overrides them.
DOCUMENTED = {
    "JSB_Chorales": {
        "train.batch_size": 2,
        "train.epochs": 300,
        "train.patience": 0,
        "train.transpose": 4,
        "train.sequence_steps": 64,
        "train.transformernade.relative": False,
        "train.transformernade.key_summary": True,
        "train.transformernade.nade_units": 512,
        "train.average_epochs": 10,
    },
    "Nottingham": {
        "train.transformernade.relative": True,
        "train.sequence_steps": 64,
        "train.batch_size": 16,
        "train.transformernade.key_summary": False,
    },
    "Piano_midi": {
        "train.transformernade.relative": True,
        "train.sequence_steps": 128,
        "train.batch_size": 8,
        "train.transpose": 6,
        "train.epochs": 120,
        "train.transformernade.key_summary": True,
    },
    "haydn": {"windows.val_fraction": 0.3},
}
# The fourth set is kept back by the maintainers: a corpus only where --shared holds it (or --folder MuseData=PATH).
KEPT_BACK = ("MuseData",)


@dataclass(frozen=True)
class Corpus:
    """One corpus: `source` is ingest.source (music21:NAME or an absolute folder), `settings` its params."""

    name: str
    source: str
    settings: dict = field(default_factory=dict)
    published: str | None = None  # its column in the published figures


def registry(shared: Path) -> dict[str, Corpus]:
    """Every built-in corpus by name: music21's (default grid) and the published sets under `shared` (a kept-back
    one where it is there)."""
    corpora = {name: Corpus(name, f"music21:{source}", DOCUMENTED.get(name, {})) for name, source in MUSIC21.items()}
    for name in PUBLISHED_GRIDS:
        if name not in KEPT_BACK or (shared / name).is_dir():
            corpora[name] = published_corpus(name, shared / name)
    return corpora


def published_corpus(name: str, folder: Path) -> Corpus:
    """The published set `name` (a key of PUBLISHED_GRIDS) read from `folder`, on its grid and its 88 keys, with
    its documented training (DOCUMENTED)."""
    column, steps_per_quarter = PUBLISHED_GRIDS[name]
    settings = {"images.steps_per_quarter": steps_per_quarter, **PUBLISHED_SETTINGS, **DOCUMENTED.get(name, {})}
    return Corpus(name, str(folder.resolve()), settings, column)


def parse_setting(text: str) -> tuple[str | None, str, object]:
    """'[CORPUS:]key=value' -> (corpus or None for all, key, value typed as YAML reads it, as dvc's -S does)."""
    key, separator, value = text.partition("=")
    corpus, _, key = key.rpartition(":") if ":" in key else (None, "", key)
    if not separator or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+", key):
        raise ValueError(f"'{text}' is not [CORPUS:]section.key=value")
    return corpus or None, key, yaml.safe_load(value)


def corpus_settings(corpus: Corpus, args: argparse.Namespace, extra: list[tuple]) -> dict:
    """The params one corpus runs with on top of params.yaml: its own, then the options', then --set's."""
    settings = dict(corpus.settings)
    settings.update({"generate.pieces": args.pieces, "generate.steps": args.steps})
    if args.epochs:
        settings["train.epochs"] = args.epochs
    if args.limit and not split_folders(corpus.source):
        settings["ingest.limit"] = args.limit  # split folders are cut per split instead (limited_source)
    settings.update({key: value for name, key, value in extra if name in (None, corpus.name)})
    return settings


def split_folders(source: str) -> list[Path]:
    """The split folders (train/, valid/, ...) a source folder holds; none for music21 or a plain folder."""
    if source.startswith("music21:"):
        return []
    return [Path(source) / name for name in SPLIT_FOLDERS if (Path(source) / name).is_dir()]


def limited_source(source: str, limit: int, target: Path) -> Path:
    """A folder of links to the first `limit` files (sorted) of each split folder of `source`: a small run keeps
    the published split (ingest.limit would take the first files overall, test/ before train/)."""
    for folder in split_folders(source):
        chosen = sorted(path for path in folder.rglob("*") if path.is_file())[:limit]
        for path in chosen:
            link = target / folder.name / path.relative_to(folder)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
    return target


def set_params(params_file: Path, settings: dict) -> None:
    """Writes `settings` ({'section.key': value}) into a params.yaml."""
    params = yaml.safe_load(params_file.read_text())
    for dotted, value in settings.items():
        *sections, key = dotted.split(".")
        node = params
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = value
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def git(*arguments: str, cwd: Path) -> str:
    # git from PATH, as the user runs it, with an argument list and no shell.
    result = subprocess.run(["git", *arguments], cwd=cwd, capture_output=True, text=True, check=True, timeout=600)  # noqa: S603, S607 - see above
    return result.stdout.strip()


def make_clone(target: Path, commit: str) -> Path:
    """A clone of this checkout at `commit` (HEAD when the benchmark started: every corpus runs the same code,
    whatever is committed meanwhile), with this project's environment linked as .venv."""
    git("clone", "-q", str(REPO), str(target), cwd=REPO)
    git("checkout", "-q", "--detach", commit, cwd=target)
    git("config", "user.name", "rollgen corpora benchmark", cwd=target)
    git("config", "user.email", "corpora@rollgen.invalid", cwd=target)
    if (REPO / ".venv").exists():
        (target / ".venv").symlink_to((REPO / ".venv").resolve())
    (target / "data" / "raw").mkdir(parents=True, exist_ok=True)  # ingest's dep, whatever the source
    # Committed metrics of another run must not pass for this one's.
    for name in (*(f"{name}.json" for name in METRICS), "train_history.csv"):
        (target / "metrics" / name).unlink(missing_ok=True)
    return target


def environment_bin() -> Path:
    """This Python environment's bin/ by its real path. A virtual environment reached through a link would
    give music21's corpus files (listed by their real paths) and rollgen's corpus folder (the link's) two
    spellings, and a music21:NAME source fails to list (rollgen.music.corpus, seen 2026-12-06)."""
    if sys.prefix == sys.base_prefix:
        return Path(sys.executable).parent
    return Path(sys.prefix).resolve() / "bin"


def pipeline_env(clone: Path, tracking_uri: str, experiment: str) -> dict[str, str]:
    """The stages' environment: this Python first on PATH, the clone's code first on the import path, one MLflow
    store and experiment; nothing that would resume or redirect a run."""
    left_out = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "DVC_ROOT", "DVC_EXP_NAME")
    env = {key: value for key, value in os.environ.items() if key not in left_out}
    env["PATH"] = f"{environment_bin()}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(clone / "src")
    env.update(MLFLOW_TRACKING_URI=tracking_uri, MLFLOW_EXPERIMENT_NAME=experiment)
    return env


def run_pipeline(command: list[str], clone: Path, env: dict, log: Path, timeout_s: float | None) -> str:
    """Runs `command` in `clone` with its output in `log`; '' on success, else why not. On a timeout the whole
    process group it started (dvc and its stages) is stopped."""
    with log.open("w") as output:
        print(f"$ {' '.join(command)}", file=output, flush=True)
        process = subprocess.Popen(command, cwd=clone, env=env, stdout=output, stderr=subprocess.STDOUT,  # noqa: S603 - an argument list of dvc's
                                   start_new_session=True)  # fmt: skip
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
            return f"stopped after {timeout_s:.0f} s (--timeout-minutes); see {log}"
    return "" if code == 0 else f"dvc exp run exited with {code}; see {log}"


def artifact_location(uri: str) -> str | None:
    """Where a new experiment's artifacts go: beside an SQLite store's file (not in the folder the benchmark runs
    from, nor in a stage's temporary clone); None for a folder store or a server, which keep their own."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()


class Store:
    """The MLflow store of every run: its experiment made where missing (`artifact_location`), each run named and
    tagged by its corpus, and the registry's `champion` alias (models:/rollgen@champion) put back after each run:
    evaluate moves it to the best model on that run's validation pieces, which a corpus's own model always is."""

    MODEL, ALIAS = "rollgen", "champion"

    def __init__(self, uri: str, experiment: str) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(uri)
        if self.client.get_experiment_by_name(experiment) is None:
            self.client.create_experiment(experiment, artifact_location=artifact_location(uri))
        self.champion = self.champion_version()

    def champion_version(self) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(self.MODEL, self.ALIAS).version
        except MlflowException:  # no registered model or no alias yet
            return None

    def after_run(self, run_id: str | None, corpus: Corpus) -> None:
        """Names and tags the run and its model versions by `corpus`; puts the champion alias back."""
        if run_id:
            self.client.update_run(run_id, name=f"{corpus.name}: {self.client.get_run(run_id).info.run_name}")
            self.client.set_tag(run_id, "corpus", corpus.name)
            self.client.set_tag(run_id, "corpus_source", corpus.source)
            for version in self.client.search_model_versions(f"run_id='{run_id}'"):
                self.client.set_model_version_tag(self.MODEL, version.version, "corpus", corpus.name)
        if self.champion_version() == self.champion:
            return
        if self.champion is None:
            self.client.delete_registered_model_alias(self.MODEL, self.ALIAS)
        else:
            self.client.set_registered_model_alias(self.MODEL, self.ALIAS, self.champion)


def run_corpus(corpus: Corpus, settings: dict, args: argparse.Namespace, scratch: Path, store: Store) -> tuple:
    """One corpus through the whole pipeline in a fresh clone: (metrics by stage, wall seconds, error or '')."""
    clone = make_clone(scratch / corpus.name, args.commit)
    source = corpus.source
    if args.limit and split_folders(source):
        source = str(limited_source(source, args.limit, scratch / "sources" / corpus.name))
    set_params(clone / "params.yaml", {"ingest.source": source, **settings})
    if args.pretrained:  # a model training may start from (train.init_from names it)
        shutil.copy2(args.pretrained, clone / "pretrained" / args.pretrained.name)
    command = [str(environment_bin() / "python"), "-m", "dvc", "exp", "run", "-n", f"corpora-{corpus.name}"]
    log = args.out / "logs" / f"{corpus.name}.log"
    started = time.perf_counter()
    error = run_pipeline(command, clone, pipeline_env(clone, args.tracking_uri, args.experiment), log,
                         args.timeout_minutes * 60 or None)  # fmt: skip
    seconds = time.perf_counter() - started
    metrics = read_metrics(clone / "metrics", args.out / "metrics" / corpus.name)
    store.after_run(metrics.get("train", {}).get("mlflow_run_id"), corpus)
    if not args.keep:
        shutil.rmtree(clone)
    return metrics, seconds, error


def read_metrics(folder: Path, keep: Path) -> dict:
    """The metrics files a run wrote in `folder`, by stage name, and train_history.csv's rows as 'history';
    each file also copied to `keep`."""
    metrics: dict = {}
    keep.mkdir(parents=True, exist_ok=True)
    for name in (*METRICS, "train_history"):
        path = folder / (f"{name}.json" if name in METRICS else f"{name}.csv")
        if not path.is_file():
            continue
        shutil.copy2(path, keep / path.name)
        if name in METRICS:
            metrics[name] = json.loads(path.read_text())
        else:
            with path.open(newline="") as rows:
                metrics["history"] = list(csv.DictReader(rows))
    return metrics


def write_report(out: Path, header: dict, rows: list[dict]) -> None:
    """corpora.json and corpora.md in `out`, each written whole to a temporary name first."""
    for name, text in (("corpora.json", json.dumps({"header": header, "rows": rows}, indent=2)),
                       ("corpora.md", markdown(header, rows))):  # fmt: skip
        temporary = out / f".{name}.tmp"
        temporary.write_text(text)
        temporary.replace(out / name)


def header_of(args: argparse.Namespace) -> dict:
    """How the benchmark ran: command, commit (and whether the workspace had changes it left out), machine."""
    dirty = git("status", "--porcelain", "--untracked-files=no", cwd=REPO)
    return {
        "command": " ".join(["python", *sys.argv]),
        "commit": args.commit[:7] + (" (uncommitted changes left out)" if dirty else ""),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.node()}, {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}",
        "generated": f"{args.pieces} pieces x {args.steps} steps per corpus",
        "mlflow": f"{args.tracking_uri}, experiment '{args.experiment}'",
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", help="comma-separated names (default: every corpus, --folder ones too)")
    parser.add_argument("--folder", action="append", default=[], metavar="NAME=PATH",
                        help="add a folder of MIDI/score files (train/ valid/ test/ in it: that split)")  # fmt: skip
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "corpora",
                        help="where the published sets lie (default: ../shared/corpora)")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=0, help="train.epochs (default: params.yaml's)")
    parser.add_argument("--limit", type=int, default=0, help="pieces per corpus (per split for split folders)")
    parser.add_argument("--pieces", type=int, default=32, help="generate.pieces")
    parser.add_argument("--steps", type=int, default=256, help="generate.steps")
    parser.add_argument("--set", action="append", default=[], metavar="[CORPUS:]KEY=VALUE",
                        help="another param, for all or one corpus (JSB_Chorales:train.batch_size=8)")  # fmt: skip
    parser.add_argument("--pretrained", type=Path, help="a trained .keras model put in each clone's pretrained/, "
                        "for train.init_from (--set haydn:train.init_from=NAME.keras)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "build" / "corpora", help="corpora.md/.json, logs")
    parser.add_argument("--experiment", default="corpora", help="the MLflow experiment of the runs")
    parser.add_argument("--timeout-minutes", type=float, default=0, help="per corpus (0: none)")
    parser.add_argument("--keep", action="store_true", help="keep each corpus's clone (its DVC experiment)")
    args = parser.parse_args(argv)
    args.tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(REPO / 'mlflow.db').resolve()}"
    corpora = registry(args.shared)
    for text in args.folder:
        name, _, path = text.partition("=")
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name) or not Path(path).is_dir():
            parser.error(f"--folder {text}: give NAME=PATH, NAME of letters, digits, _ . -, PATH a folder")
        # A published set's name keeps its protocol (grid, 88 keys, figures) wherever its folder lies.
        corpora[name] = (
            published_corpus(name, Path(path)) if name in PUBLISHED_GRIDS else Corpus(name, str(Path(path).resolve()))
        )
    args.corpora = [name.strip() for name in args.corpora.split(",")] if args.corpora else list(corpora)
    unknown = [name for name in args.corpora if name not in corpora]
    if unknown:
        parser.error(f"unknown corpora {unknown}; known: {', '.join(corpora)}")
    missing = [corpora[name].source for name in args.corpora if corpora[name].source.startswith("/")
               and not Path(corpora[name].source).is_dir()]  # fmt: skip
    if missing:
        parser.error(f"no such folder: {missing} (the published sets: --shared)")
    if args.pretrained and not args.pretrained.is_file():
        parser.error(f"--pretrained {args.pretrained}: no such file")
    args.pretrained = args.pretrained.resolve() if args.pretrained else None
    try:
        args.settings = [parse_setting(text) for text in args.set]
    except ValueError as error:
        parser.error(str(error))
    args.selected = [corpora[name] for name in args.corpora]
    return args


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "logs").mkdir(exist_ok=True)
    store = Store(args.tracking_uri, args.experiment)
    args.commit = git("rev-parse", "HEAD", cwd=REPO)  # what every corpus runs
    header, rows = header_of(args), []
    scratch = Path(tempfile.mkdtemp(prefix="rollgen-corpora-"))
    for corpus in args.selected:
        settings = corpus_settings(corpus, args, args.settings)
        print(f"corpora: {corpus.name} ({corpus.source}) with {settings}; log: {args.out / 'logs'}", flush=True)
        metrics, seconds, error = run_corpus(corpus, settings, args, scratch, store)
        per_split = {"pieces per split": args.limit} if args.limit and split_folders(corpus.source) else {}
        described = {"corpus": corpus.name, "source": corpus.source, "settings": settings | per_split}
        described["published"] = corpus.published
        rows.append(corpus_row(described, metrics, seconds, error))
        write_report(args.out, header, rows)
        print(f"corpora: {corpus.name} {rows[-1]['status']} in {seconds:.0f} s", flush=True)
    if args.keep:
        print(f"corpora: the clones are in {scratch}")
    else:
        shutil.rmtree(scratch)
    print((args.out / "corpora.md").read_text())


if __name__ == "__main__":
    main()
