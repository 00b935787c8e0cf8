"""The corpora benchmark's table (benchmarks/corpora.py): one row per corpus built from the metrics files a
pipeline run writes, the quality gates of issue #27, the published figures, and the markdown. Pure: dicts in,
dicts and text out, so it is tested without training anything (tests/test_corpora_benchmark.py).

The metrics files are read by their keys, as the stages write them today:
- metrics/windows.json: pieces and frames per split; metrics/ingest.json: files accepted, rejected, merged notes
- metrics/train.json: params, epochs (run), best_epoch, train_seconds, frames_per_second, val_nll (the network)
- metrics/train_history.csv: each epoch's seconds (the first also builds and compiles the model)
- metrics/eval.json: test scores; `model` is the ±N ensemble where `network` (the network alone) is beside it,
  else the network alone. A split nested as `val` / `test` (same shape) is read too, should evaluate add one.
- metrics/generate.json: `generated` and the reference pieces' statistics under their split's name (`val`;
  `test` in runs before the gates), `gates`, the quality gates the generate stage checked, and `data_gates`,
  those the data's own training and test pieces pass against the validation pieces.
"""

from __future__ import annotations

import math

# --- The published figures ---------------------------------------------------------------------------------

PUBLISHED_SOURCE = (
    "../shared/corpora/README.md, 'The published figures (nats per frame, test, lower is better)': every-frame"
    " NLL over the 88 keys (MIDI 21..108); a bound is only an upper limit on that model's NLL"
)
PUBLISHED_SETS = ("JSB", "Nottingham", "Piano-midi.de", "MuseData")
# (model as the README names it, its figure per set in PUBLISHED_SETS' order (None: not published), kind)
PUBLISHED = (
    ("RNN (as reported by Fraccaro et al. 2016)", (8.71, 4.46, 8.37, 8.13), "exact"),
    ("LSTM (Bai et al. 2018, TCN paper)", (8.45, 3.29, None, None), "exact"),
    ("TCN (Bai et al. 2018)", (8.10, 3.07, None, None), "exact"),
    ("RNN-RBM (Boulanger-Lewandowski et al. 2012)", (6.27, 2.39, 7.09, 6.01), "estimate"),
    ("DMM (Krishnan et al. 2017)", (6.39, 2.77, 7.83, 6.83), "bound"),
    ("DMM-Aug + NADE emission (Krishnan et al. 2017)", (5.12, None, None, None), "bound"),
    ("SRNN (Fraccaro et al. 2016)", (4.74, 2.94, 8.20, 6.28), "bound"),
    ("RNN-NADE, best (Boulanger-Lewandowski et al. 2012)", (5.19, 2.31, 7.05, 5.60), "exact"),
    ("DBN-LSTM (Vohra et al. 2015; not reproduced since)", (3.47, 1.32, None, None), "reported"),
)
BEST_RNN_NADE = "RNN-NADE, best (Boulanger-Lewandowski et al. 2012)"


def published_figures(published_set: str) -> dict[str, dict]:
    """{model: {"nll": figure, "kind": kind}} of every model with a figure on `published_set` ('JSB', ...)."""
    column = PUBLISHED_SETS.index(published_set)
    return {
        model: {"nll": figures[column], "kind": kind}
        for model, figures, kind in PUBLISHED
        if figures[column] is not None
    }


# --- Quality gates (issue #27): generated pieces against the corpus's reference pieces ---------------------
# The gates are the generate stage's own: metrics/generate.json's `gates` (rollgen.evaluation.quality checked
# them), read back here, so the table and the stage can never disagree on a target.

REFERENCE_SPLITS = ("val", "valid", "test")  # generate.json's reference section, the first found


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def reference_split(generate: dict) -> str | None:
    """The split whose pieces generate.json compares the generated pieces with ('val' or 'test'), or None."""
    return next((split for split in REFERENCE_SPLITS if isinstance(generate.get(split), dict)), None)


def check_gates(generate: dict) -> dict[str, dict]:
    """generate.json's gates: {statistic: {result, generated, data, target}}; result 'PASS', 'FAIL', or 'n/a'
    where a value the gate compares is missing (not reported, or NaN)."""
    split = reference_split(generate)
    rows = {}
    for statistic, gate in generate.get("gates", {}).items():
        generated, data = gate.get("generated"), gate.get(split) if split else None
        known = _number(generated) and _number(data)
        rows[statistic] = {
            "result": ("PASS" if gate.get("pass") else "FAIL") if known else "n/a",
            "generated": generated,
            "standard_error": gate.get("standard_error"),  # of the generated pieces' mean (older runs: none)
            "data": data,
            "target": gate.get("rule"),
        }
    return rows


# --- Scores ------------------------------------------------------------------------------------------------


def _nlls(section: dict) -> dict[str, float]:
    """The NLL-like numbers of one scored section: 'nll' (sounding) and any onset NLL beside it."""
    return {key: value for key, value in section.items() if "nll" in key and _number(value)}


def split_scores(scores: dict) -> dict[str, dict]:
    """{'network': nlls, 'ensemble': nlls} of one split's scores as evaluate writes them: `model` is the
    ensemble where `network` is beside it, else the network alone."""
    model, network = scores.get("model", {}), scores.get("network")
    if network is None:
        return {"network": _nlls(model), "ensemble": {}}
    return {"network": _nlls(network), "ensemble": _nlls(model)}


def nll_table(train: dict, evaluation: dict) -> dict[str, dict]:
    """{'val': ..., 'test': ...} of split_scores; validation falls back on train.json's val_nll and val_onset_nll
    (the network's, at its best epoch) where eval.json scores no validation split."""
    test = evaluation.get("test", evaluation)
    val = evaluation.get("val")
    if isinstance(val, dict) and "model" in val:
        val_scores = split_scores(val)
    else:
        best = {"nll": train.get("val_nll"), "onset_nll": train.get("val_onset_nll")}
        val_scores = {"network": {key: value for key, value in best.items() if _number(value)}, "ensemble": {}}
    return {"val": val_scores, "test": split_scores(test)}


def epoch_seconds(history: list[dict]) -> float | None:
    """The median seconds of an epoch after the first, from train_history.csv's rows (the first epoch also builds
    and compiles the model: in a short run it is most of the time); the first's alone, None without epochs."""
    seconds = [float(epoch["seconds"]) for epoch in history]
    steady = sorted(seconds[1:] or seconds)
    if not steady:
        return None
    middle = len(steady) // 2
    return steady[middle] if len(steady) % 2 else (steady[middle - 1] + steady[middle]) / 2


# --- One row per corpus ------------------------------------------------------------------------------------


def corpus_row(corpus: dict, metrics: dict[str, dict], wall_seconds: float, error: str = "") -> dict:
    """The table's row for one corpus: `corpus` says what ran (name, source, settings, published set), `metrics`
    holds the run's metrics files by stage name ('windows', 'ingest', 'train', 'eval', 'generate'; missing
    ones are empty) and train_history.csv's rows as 'history', `error` why the run failed ('' when it did not)."""
    windows, ingest, train = metrics.get("windows", {}), metrics.get("ingest", {}), metrics.get("train", {})
    generate = metrics.get("generate", {})
    split = reference_split(generate)
    frames, epoch = windows.get("train", {}).get("frames"), epoch_seconds(metrics.get("history", []))
    row = {
        **corpus,
        "status": f"failed: {error}" if error else "ok",
        "wall_seconds": round(wall_seconds, 1),
        "pieces": {name: windows.get(name, {}).get("pieces") for name in ("train", "val", "test")},
        "frames": {name: windows.get(name, {}).get("frames") for name in ("train", "val", "test")},
        "ingest": {key: ingest.get(key) for key in ("files", "accepted", "rejected", "duplicate")}
        | {"merged_in_file_share": ingest.get("merged_in_file_share_in_range")},
        **{key: train.get(key) for key in ("model", "params", "epochs", "best_epoch", "train_seconds")},
        "frames_per_second": train.get("frames_per_second"),
        "seconds_per_epoch": epoch,
        "steady_frames_per_second": round(frames / epoch, 1) if epoch and _number(frames) else None,
        "mlflow_run_id": train.get("mlflow_run_id"),
        "nll": nll_table(train, metrics.get("eval", {})) if train else {},
        "reference": split,
        "generated": generate.get("generated", {}),
        "data": generate.get(split, {}) if split else {},
        "gates": check_gates(generate) if generate else {},
        "data_gates": generate.get("data_gates", {}),
    }
    if corpus.get("published"):
        row["published_figures"] = published_figures(corpus["published"])
    return row


# --- Markdown ----------------------------------------------------------------------------------------------

SPLIT_KINDS = (("val", "network"), ("val", "ensemble"), ("test", "network"), ("test", "ensemble"))


def _cell(value, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value).replace("|", "\\|")


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]


def nll_columns(rows: list[dict]) -> list[tuple[str, str, str]]:
    """(split, kind, key) of every NLL some row has, sounding ('nll') always, val before test, network first."""
    found = {(split, kind, "nll") for split, kind in SPLIT_KINDS}
    for row in rows:
        for split, kind in SPLIT_KINDS:
            found |= {(split, kind, key) for key in row.get("nll", {}).get(split, {}).get(kind, {})}
    order = {pair: number for number, pair in enumerate(SPLIT_KINDS)}
    return sorted(found, key=lambda column: (column[2] != "nll", column[2], order[column[:2]]))


def scores_table(rows: list[dict]) -> list[str]:
    """Per corpus: data, model size, training and the NLLs (nats per frame, every frame of every piece)."""
    columns = nll_columns(rows)
    header = ["corpus", "source", "settings", "pieces train/val/test", "train frames", "params", "epochs (best)"]
    header += ["train s", "s/epoch"] + [f"{split} {kind} {key}".replace(" nll", " NLL") for split, kind, key in columns]
    body = []
    for row in rows:
        pieces = "/".join(_cell(row["pieces"][split]) for split in ("train", "val", "test"))
        epochs = f"{_cell(row['epochs'])} ({_cell(row['best_epoch'])})" if row["epochs"] is not None else None
        nlls = [row.get("nll", {}).get(split, {}).get(kind, {}).get(key) for split, kind, key in columns]
        settings = " ".join(f"{key}={value}" for key, value in row.get("settings", {}).items()) or "defaults"
        seconds = round(row["train_seconds"]) if row["train_seconds"] is not None else None
        body.append([row["corpus"], row["source"], settings, pieces, row["frames"]["train"], row["params"], epochs,
                     seconds, row["seconds_per_epoch"], *nlls])  # fmt: skip
    return _table(header, body)


def quality_table(rows: list[dict]) -> list[str]:
    """Per corpus: each gate's statistic, generated (± the standard error of its mean over the pieces, where
    generate.json has it) against the reference pieces, and PASS / FAIL / n/a."""
    statistics = list(dict.fromkeys(name for row in rows for name in row.get("gates", {})))
    targets = {name: gate["target"] for row in rows for name, gate in row.get("gates", {}).items()}
    header = ["corpus", "compared with", *(f"{name} ({targets[name]})" for name in statistics), "gates passed",
              "the data's own pieces pass"]  # fmt: skip
    body = []
    for row in rows:
        gates = row.get("gates", {})
        cells = []
        for name in statistics:
            result = gates.get(name, {})
            error = f" ± {_cell(result['standard_error'])}" if _number(result.get("standard_error")) else ""
            generated, data = _cell(result.get("generated")), _cell(result.get("data"))
            cells.append(f"{generated}{error} vs {data} {result.get('result', 'n/a')}")
        passed = sum(result["result"] == "PASS" for result in gates.values())
        checked = sum(result["result"] != "n/a" for result in gates.values())
        reference = f"{row['reference']} pieces" if row.get("reference") else None
        verdict = f"{passed}/{checked}" if gates else None
        body.append([row["corpus"], reference, *cells, verdict, own_gates(row.get("data_gates", {}))])
    return _table(header, body)


def own_gates(data_gates: dict) -> str | None:
    """'train 3/6 (failed: ...), test 6/6': the gates each split of the data passes against the validation
    pieces, as generate.json's `data_gates` has them (None in runs before it). A gate the training pieces
    fail is one a faithful model fails too: the splits differ there."""
    cells = []
    for split, verdict in data_gates.items():
        failed = f" (failed: {', '.join(verdict['failed'])})" if verdict.get("failed") else ""
        checked = verdict["gates_passed"] + len(verdict["failed"])
        cells.append(f"{split} {verdict['gates_passed']}/{checked}{failed}")
    return ", ".join(cells) or None


def published_table(rows: list[dict]) -> list[str]:
    """rollgen's test NLLs on the published sets beside the published figures (empty without such rows)."""
    ran = [row for row in rows if row.get("published")]
    if not ran:
        return []
    header = ["model", *(row["published"] for row in ran), "kind"]
    body = []
    for kind in ("network", "ensemble"):
        body.append([f"rollgen {kind} (this run)", *(row["nll"].get("test", {}).get(kind, {}).get("nll")
                                                    if row.get("nll") else None for row in ran), "exact"])  # fmt: skip
    for model, figures, kind in PUBLISHED:
        shown = [figures[PUBLISHED_SETS.index(row["published"])] for row in ran]
        if any(figure is not None for figure in shown):
            body.append([model, *shown, kind])
    return _table(header, body)


def markdown(header: dict, rows: list[dict]) -> str:
    """The benchmark's report: how it ran, then the scores, quality and published tables, and any failure."""
    lines = ["# Corpora benchmark", ""] + [f"- {key}: {_cell(value)}" for key, value in header.items()]
    lines += ["", "## Likelihood and training (nats per frame, lower is better)", "", *scores_table(rows)]
    lines += ["", "## Generated pieces against the corpus's reference pieces (generated vs data)", ""]
    lines += quality_table(rows)
    published = published_table(rows)
    if published:
        lines += ["", "## Beside the published figures (test, nats per frame)", "", f"Source: {PUBLISHED_SOURCE}."]
        lines += ["", *published]
    failed = [row for row in rows if row["status"] != "ok"]
    if failed:
        lines += ["", "## Failed", ""] + [f"- {row['corpus']}: {row['status']}" for row in failed]
    return "\n".join(lines) + "\n"
