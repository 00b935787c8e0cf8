"""The corpora benchmark's pure parts (benchmarks/corpora.py, benchmarks/corpora_table.py): the quality gates,
the rows read from metrics files, the markdown, the published figures, and how settings reach params.yaml. Made-up
metrics in the shapes the stages write; nothing is trained here."""

import argparse
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from benchmarks.corpora import (
    DOCUMENTED,
    REPO,
    Store,
    artifact_location,
    corpus_settings,
    git,
    limited_source,
    make_clone,
    parse_args,
    parse_setting,
    registry,
    set_params,
)
from benchmarks.corpora_table import (
    BEST_RNN_NADE,
    PUBLISHED,
    PUBLISHED_SETS,
    check_gates,
    corpus_row,
    epoch_seconds,
    markdown,
    nll_table,
    published_figures,
)
from rollgen.evaluation import quality

SHARED_README = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "README.md"

# The shapes of metrics/*.json as the stages write them (values made up).
WINDOWS = {
    "train": {"pieces": 20, "frames": 1200},
    "val": {"pieces": 3, "frames": 180},
    "test": {"pieces": 3, "frames": 170},
}
INGEST = {"files": 27, "accepted": 26, "rejected": 1, "duplicate": 0, "merged_in_file_share_in_range": 0.25}
TRAIN = {"model": "transformernade", "params": 503482, "epochs": 2, "best_epoch": 2, "train_seconds": 12.0,
         "frames_per_second": 200.0, "val_nll": 9.5, "mlflow_run_id": "abc"}  # fmt: skip
EVAL = {"model": {"nll": 8.9, "f1": 0.3}, "network": {"nll": 9.2}, "persistence": {"nll": 12.0}, "test_frames": 170}
DATA = {"notes_per_step": 1.0, "mean_polyphony": 4.0, "silent_fraction": 0.01, "empty_beat_rate": 0.10,
        "scale_consistency": 0.95, "frames": 170, "pieces": 3}  # fmt: skip
GENERATED = {"notes_per_step": 1.1, "mean_polyphony": 3.0, "silent_fraction": 0.05, "empty_beat_rate": 0.12,
             "scale_consistency": 0.93, "frames": 128, "pieces": 4}  # fmt: skip
GENERATE = {
    "generated": GENERATED,
    "test": DATA,
    "overlap": {},
    "primer": "test",
    **quality.check_gates(GENERATED, DATA, "test"),
}
JSB = {"corpus": "JSB_Chorales", "source": "/shared/JSB_Chorales", "settings": {"images.steps_per_quarter": 1},
       "published": "JSB"}  # fmt: skip
HISTORY = [{"epoch": "1", "seconds": "20.0"}, {"epoch": "2", "seconds": "3.0"}, {"epoch": "3", "seconds": "5.0"}]
METRICS = {"windows": WINDOWS, "ingest": INGEST, "train": TRAIN, "eval": EVAL, "generate": GENERATE, "history": HISTORY}


def generate_json(generated: dict, reference: dict, split: str = "val") -> dict:
    """generate.json's shape: the statistics, then the gates the generate stage checked on them."""
    return {"generated": generated, split: reference, **quality.check_gates(generated, reference, split)}


def test_the_table_reads_the_generate_stages_own_gates():
    gates = check_gates(GENERATE)
    assert list(gates) == [gate.statistic for gate in quality.GATES]
    assert gates["silent_fraction"]["target"] == "at most test's + 0.03"
    for statistic, gate in GENERATE["gates"].items():
        assert gates[statistic]["result"] in ({"PASS"} if gate["pass"] else {"FAIL", "n/a"})


def test_gates_compare_with_whichever_split_generate_names():
    gates = check_gates(GENERATE)
    assert {name: gate["result"] for name, gate in gates.items()} == {
        "notes_per_step": "PASS",  # 1.1 against 1.0
        "mean_polyphony": "FAIL",  # 3.0 against 4.0: 25% off
        "silent_fraction": "FAIL",  # 5% against 1% + 3 points
        "empty_beat_rate": "PASS",
        "scale_consistency": "PASS",
        "long_note_share": "n/a",  # these statistics do not have it
    }
    on_val = check_gates(generate_json(GENERATED, {**DATA, "mean_polyphony": 3.1}))
    assert on_val["mean_polyphony"]["result"] == "PASS"
    assert on_val["mean_polyphony"]["data"] == 3.1
    nan = check_gates(generate_json({**GENERATED, "notes_per_step": math.nan}, DATA))
    assert nan["notes_per_step"]["result"] == "n/a"
    held = check_gates(generate_json({**GENERATED, "long_note_share": 0.03}, {**DATA, "long_note_share": 0.01}))
    assert held["long_note_share"]["result"] == "FAIL"


def test_nlls_separate_the_network_from_the_ensemble():
    assert nll_table(TRAIN, EVAL) == {
        "val": {"network": {"nll": 9.5}, "ensemble": {}},  # train.json's best epoch
        "test": {"network": {"nll": 9.2}, "ensemble": {"nll": 8.9}},
    }
    alone = nll_table(TRAIN, {"model": {"nll": 9.2, "f1": 0.3}})  # evaluate.transpositions: 0
    assert alone["test"] == {"network": {"nll": 9.2}, "ensemble": {}}
    split = {"val": {"model": {"nll": 9.0, "onset_nll": 3.0}, "network": {"nll": 9.4}}, "test": EVAL}
    assert nll_table(TRAIN, split)["val"] == {"network": {"nll": 9.4}, "ensemble": {"nll": 9.0, "onset_nll": 3.0}}


def test_a_row_holds_data_cost_scores_gates_and_the_published_figures():
    row = corpus_row(JSB, METRICS, wall_seconds=61.23)
    assert row["status"] == "ok"
    assert row["pieces"] == {"train": 20, "val": 3, "test": 3}
    assert row["frames"]["train"] == 1200
    assert (row["params"], row["epochs"], row["train_seconds"]) == (503482, 2, 12.0)
    assert row["seconds_per_epoch"] == 4.0  # the median of the epochs after the first (which also compiles)
    assert row["steady_frames_per_second"] == 300.0
    assert row["wall_seconds"] == 61.2
    assert row["reference"] == "test"
    assert row["ingest"]["merged_in_file_share"] == 0.25
    assert row["published_figures"][BEST_RNN_NADE] == {"nll": 5.19, "kind": "exact"}


def test_a_failed_run_is_a_row_that_says_why():
    row = corpus_row({**JSB, "published": None}, {"ingest": INGEST}, wall_seconds=3.0, error="dvc exited with 1")
    assert row["status"] == "failed: dvc exited with 1"
    assert row["params"] is None and row["nll"] == {} and row["gates"] == {}
    assert "published_figures" not in row


def test_markdown_shows_every_table_and_the_failures():
    rows = [
        corpus_row(JSB, METRICS, 60.0),
        corpus_row(
            {"corpus": "mozart", "source": "music21:mozart", "settings": {}, "published": None}, {}, 5.0, "boom"
        ),
    ]
    text = markdown({"command": "python benchmarks/corpora.py", "commit": "abc1234"}, rows)
    assert "- commit: abc1234" in text
    jsb = next(line for line in text.splitlines() if line.startswith("| JSB_Chorales | /shared"))
    assert "| 20/3/3 | 1,200 | 503,482 | 2 (2) | 12 | 4.000 |" in jsb
    assert "| 9.500 | – | 9.200 | 8.900 |" in jsb  # val network, val ensemble, test network, test ensemble
    assert "1.100 vs 1.000 PASS" in text and "3.000 vs 4.000 FAIL" in text and "| test pieces |" in text
    assert "| 3/5 |" in text  # three of the five gates it could check
    assert "| rollgen ensemble (this run) | 8.900 | exact |" in text
    assert f"| {BEST_RNN_NADE} | 5.190 | exact |" in text
    assert "| LSTM (Bai et al. 2018, TCN paper) | 8.450 | exact |" in text
    assert "- mozart: failed: boom" in text
    tables = [block.splitlines() for block in text.split("\n\n") if block.startswith("|")]
    assert len(tables) == 3
    for table in tables:  # every row as wide as its header
        assert {line.count("|") for line in table} == {table[0].count("|")}


def test_an_epochs_time_leaves_out_the_first_which_also_compiles():
    assert epoch_seconds([{"seconds": "9"}]) == 9.0
    assert epoch_seconds([{"seconds": "9"}, {"seconds": "1"}, {"seconds": "2"}, {"seconds": "30"}]) == 2.0
    assert epoch_seconds([]) is None


def test_published_figures_per_set_leave_out_the_missing():
    piano = published_figures("Piano-midi.de")
    assert piano[BEST_RNN_NADE]["nll"] == 7.05
    assert "LSTM (Bai et al. 2018, TCN paper)" not in piano


@pytest.mark.skipif(not SHARED_README.is_file(), reason="../shared/corpora/README.md is not beside this checkout")
def test_the_published_figures_are_the_shared_readmes_table():
    table = SHARED_README.read_text().split("## The published figures")[1].split("\n\n")[1]
    rows = [line.strip("|").split("|") for line in table.splitlines()[2:]]
    written = []
    for cells in rows:
        model, *figures, kind = (re.sub(r"\*\*", "", cell).strip() for cell in cells)
        written.append((model, tuple(None if figure == "–" else float(figure) for figure in figures), kind))
    assert written == list(PUBLISHED)
    assert table.splitlines()[0].count("|") == len(PUBLISHED_SETS) + 3


def test_the_registry_reads_music21_and_the_published_sets(tmp_path):
    corpora = registry(tmp_path)
    assert corpora["schumann"].source == "music21:schumann_robert"  # music21 knows no plain 'schumann'
    assert corpora["ryansMammoth"].source == "music21:ryansMammoth" and corpora["ryansMammoth"].settings == {}
    assert corpora["haydn"].settings == {"windows.val_fraction": 0.3}  # 4/2/1 pieces instead of 5/1/1
    jsb, nottingham = corpora["JSB_Chorales"], corpora["Nottingham"]
    assert jsb.source == str(tmp_path / "JSB_Chorales")
    assert jsb.settings == {"images.steps_per_quarter": 1, "images.grid": "sample", "evaluate.highest_pitch": 108,
                            **DOCUMENTED["JSB_Chorales"]}  # fmt: skip
    assert DOCUMENTED["JSB_Chorales"]["train.batch_size"] == 2  # its 13,807 frames: 16 batches an epoch at 16
    assert DOCUMENTED["JSB_Chorales"]["train.transformernade.nade_units"] == 512  # a new chord nearly every frame
    assert DOCUMENTED["JSB_Chorales"]["train.average_epochs"] == 10  # the weights averaged: it over-fits late
    assert nottingham.settings["images.steps_per_quarter"] == 2 and nottingham.published == "Nottingham"
    assert nottingham.settings["train.transformernade.relative"] is True  # its documented setting
    assert "MuseData" not in corpora  # kept back: listed only where it is
    (tmp_path / "MuseData").mkdir()
    muse = registry(tmp_path)["MuseData"]
    eighths = {key: value for key, value in nottingham.settings.items() if key not in DOCUMENTED["Nottingham"]}
    assert muse.published == "MuseData" and muse.settings == eighths  # eighths, 88 keys, the defaults' training


def test_a_folder_named_as_a_published_set_keeps_its_protocol(tmp_path):
    (tmp_path / "muse" / "train").mkdir(parents=True)
    args = parse_args(["--folder", f"MuseData={tmp_path / 'muse'}", "--folder", f"mine={tmp_path / 'muse'}",
                       "--corpora", "MuseData,mine", "--shared", str(tmp_path / "none")])  # fmt: skip
    muse, mine = args.selected
    assert muse.source == str(tmp_path / "muse") and muse.published == "MuseData"
    assert muse.settings["images.steps_per_quarter"] == 2 and muse.settings["evaluate.highest_pitch"] == 108
    assert mine.settings == {} and mine.published is None


def test_settings_are_typed_as_dvc_reads_them_and_land_in_params_yaml(tmp_path):
    assert parse_setting("train.batch_size=8") == (None, "train.batch_size", 8)
    assert parse_setting("JSB_Chorales:images.grid=sample") == ("JSB_Chorales", "images.grid", "sample")
    with pytest.raises(ValueError, match="section.key=value"):
        parse_setting("epochs=3")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"ingest": {"source": "music21:bach", "limit": 0}, "train": {"epochs": 100}}))
    set_params(params, {"ingest.source": "/data/x", "train.epochs": 2, "train.rnnnade.width": 64})
    assert yaml.safe_load(params.read_text()) == {
        "ingest": {"source": "/data/x", "limit": 0},
        "train": {"epochs": 2, "rnnnade": {"width": 64}},
    }


def test_a_limit_keeps_a_published_split_and_cuts_each_split(tmp_path):
    source = tmp_path / "set"
    for split, count in (("train", 4), ("valid", 2), ("test", 3)):
        (source / split).mkdir(parents=True)
        for number in range(count):
            (source / split / f"{number}.mid").write_bytes(b"MThd")
    limited = limited_source(str(source), 2, tmp_path / "limited")
    assert sorted(path.relative_to(limited).as_posix() for path in limited.rglob("*.mid")) == [
        "test/0.mid", "test/1.mid", "train/0.mid", "train/1.mid", "valid/0.mid", "valid/1.mid"
    ]  # fmt: skip
    options = argparse.Namespace(pieces=4, steps=32, epochs=2, limit=2)
    corpora = registry(tmp_path)
    published = corpus_settings(replace(corpora["JSB_Chorales"], source=str(source)), options, [])
    assert "ingest.limit" not in published
    music21 = corpus_settings(corpora["mozart"], options, [(None, "train.batch_size", 8), ("other", "x.y", 1)])
    assert music21 == {"generate.pieces": 4, "generate.steps": 32, "train.epochs": 2, "ingest.limit": 2,
                       "train.batch_size": 8}  # fmt: skip


def test_every_corpus_runs_the_commit_the_benchmark_started_at(tmp_path):
    """Each corpus gets its own clone, made when its turn comes: it checks out the commit the run started at,
    not whatever HEAD has become since."""
    first = git("rev-list", "--max-parents=0", "HEAD", cwd=REPO).splitlines()[0]
    clone = make_clone(tmp_path / "clone", first)
    assert git("rev-parse", "HEAD", cwd=clone) == first


def test_a_local_store_keeps_its_artifacts_beside_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert artifact_location("sqlite:///mlflow.db") == (tmp_path / "mlartifacts").as_uri()
    assert artifact_location("file:///srv/mlruns") is None and artifact_location("http://127.0.0.1:5000") is None
    store_folder = tmp_path / "elsewhere"
    store_folder.mkdir()
    store = Store(f"sqlite:///{store_folder / 'mlflow.db'}", "corpora")
    experiment = store.client.get_experiment_by_name("corpora")
    assert experiment.artifact_location == (store_folder / "mlartifacts").as_uri()  # not the checkout's


def test_a_gate_shows_its_standard_error_where_generate_json_has_it():
    generate = generate_json(GENERATED, DATA, "test")
    generate["gates"]["scale_consistency"]["standard_error"] = 0.0123  # the generate stage's, since 2026-12-07
    text = markdown({"command": "c", "commit": "abc1234"}, [corpus_row(JSB, {**METRICS, "generate": generate}, 60.0)])
    assert "0.930 ± 0.012 vs" in text
    assert "1.100 vs 1.000 PASS" in text  # a gate without one (older runs) shows none


def test_the_data_s_own_pieces_show_the_gates_they_pass_themselves():
    generate = generate_json(GENERATED, DATA, "val")
    train_pieces = {**DATA, "mean_polyphony": 3.0}  # a split unlike the validation pieces
    generate["data_gates"] = {"train": quality.data_gates(train_pieces, DATA), "test": quality.data_gates(DATA, DATA)}
    row = corpus_row(JSB, {**METRICS, "generate": generate}, 60.0)
    text = markdown({"command": "c", "commit": "abc1234"}, [row])
    line = next(line for line in text.splitlines() if line.startswith("| JSB_Chorales | val pieces"))
    # long_note_share is missing from these made-up statistics: it fails for every split alike
    assert line.endswith("| train 4/6 (failed: mean_polyphony, long_note_share), test 5/6 (failed: long_note_share) |")
