"""Ingestion accounts for every input: accepted pieces, and rejected or duplicate files with a reason."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from rollgen import ingest
from rollgen.corpus import music21_corpus_files
from tests.conftest import build_midi


def run_ingest(source: Path, out: Path, **options) -> pd.DataFrame:
    return ingest.run(
        str(source),
        midi_dir=out / "midi",
        manifest_path=out / "manifest.csv",
        metrics_path=out / "ingest.json",
        **options,
    )


def test_a_messy_folder_is_fully_accounted_for(tmp_path, chorale_midi_dir):
    source = tmp_path / "in"
    shutil.copytree(chorale_midi_dir, source / "good")
    first = sorted((source / "good").iterdir())[0]
    (source / 'zz copy of it\'s "first" — ça.mid').write_bytes(first.read_bytes())  # same bytes, odd name
    (source / "empty.mid").write_bytes(b"")
    (source / "notes.txt").write_text("not music")
    (source / "random.mid").write_bytes(bytes(range(256)) * 4)
    (source / "folder.mid").mkdir()
    (source / "only drums.mid").write_bytes(build_midi([["0, Note_on_c, 9, 36, 90", "240, Note_off_c, 9, 36, 0"]]))
    (source / "loop.mid").symlink_to(source / "loop.mid")

    manifest = run_ingest(source, tmp_path / "out", workers=2)

    rows = {row.path: row for row in manifest.itertuples()}
    assert len(rows) == 4 + 7  # every input has a row
    assert all(rows[f"good/{path.name}"].status == "accepted" for path in (source / "good").iterdir())
    assert rows['zz copy of it\'s "first" — ça.mid'].status == "duplicate"
    assert "same bytes as good/" in rows['zz copy of it\'s "first" — ça.mid'].reason
    assert rows["empty.mid"].reason == "not a MIDI file (no MThd header)"
    assert rows["notes.txt"].reason.startswith("not a MIDI or score file")
    assert rows["random.mid"].reason == "not a MIDI file (no MThd header)"
    assert rows["folder.mid"].reason == "is a directory, not a file"
    assert rows["only drums.mid"].reason == "no notes in range 21..126"
    assert rows["loop.mid"].reason.startswith("cannot read")
    assert all(row.reason for row in rows.values() if row.status != "accepted")

    written = sorted(path.name for path in (tmp_path / "out" / "midi").iterdir())
    assert written == sorted(manifest.loc[manifest.status == "accepted", "midi"])
    on_disk = pd.read_csv(tmp_path / "out" / "manifest.csv", keep_default_na=False)
    assert list(on_disk.columns[:4]) == ["path", "sha256", "status", "reason"]
    counts = json.loads((tmp_path / "out" / "ingest.json").read_text())
    assert (counts["files"], counts["accepted"], counts["duplicate"], counts["rejected"]) == (11, 4, 1, 6)


def test_the_unexpandable_bach_chorale_is_rejected_with_musics21s_reason():
    root, scores = music21_corpus_files("bach")
    krn = next(path for path in scores if path.name == "bwv277.krn")
    row, midi = ingest.examine(ingest.Source(krn.relative_to(root).as_posix(), str(krn)))
    assert midi is None
    assert row.status == "rejected"
    assert row.path == "bach/bwv277.krn"
    assert "ExpanderException" in row.reason and "repeat" in row.reason


def test_the_music21_source_lists_the_chorale_scores():
    sources = ingest.list_sources("music21:bach")
    assert 400 < len(sources) < 420
    assert all(not source.path.endswith(".rntxt") for source in sources)
    assert sources == sorted(sources, key=lambda source: source.path)


def test_a_folder_with_nothing_usable_stops_the_stage_with_a_clear_message(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.mid").write_bytes(b"MThd")
    with pytest.raises(SystemExit, match="none of 1 inputs"):
        run_ingest(tmp_path / "in", tmp_path / "out", workers=1)
    assert "truncated header (4 bytes)" in (tmp_path / "out" / "manifest.csv").read_text()


def test_the_same_music_in_two_files_is_kept_once(tmp_path):
    notes = ["0, Note_on_c, 0, 60, 90", "480, Note_off_c, 0, 60, 0"]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.mid").write_bytes(build_midi([notes], ticks_per_quarter=480))
    (tmp_path / "in" / "b.mid").write_bytes(build_midi([[n.replace("480,", "960,") for n in notes]], 960))
    manifest = run_ingest(tmp_path / "in", tmp_path / "out", workers=1)
    assert manifest.status.tolist() == ["accepted", "duplicate"]
    assert manifest.reason.tolist()[1] == "same notes as a.mid"


def test_both_parsers_accept_the_same_pieces_with_the_same_rolls(tmp_path, chorale_midi_dir):
    fast = run_ingest(chorale_midi_dir, tmp_path / "fast", workers=1)
    reference = run_ingest(chorale_midi_dir, tmp_path / "ref", workers=1, limits=ingest.Limits(parser="py_midicsv"))
    pd.testing.assert_frame_equal(fast, reference)
    for midi in fast["midi"]:
        assert (tmp_path / "fast" / "midi" / midi).read_bytes() == (tmp_path / "ref" / "midi" / midi).read_bytes()
