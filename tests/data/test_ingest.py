"""Ingestion accounts for every input: accepted pieces, and rejected or duplicate files with a reason."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from rollgen.data import ingest
from rollgen.errors import RollgenError
from rollgen.music.corpus import music21_corpus_files, score_to_midi
from rollgen.params import ImagesParams, IngestParams, ParamsError, validate
from tests.conftest import build_midi
from tests.real_world import beyond_16ths, to_midi, write_collection


def run_ingest(source: Path, out: Path, images: ImagesParams = ImagesParams(), **options) -> pd.DataFrame:
    """The ingest stage on `source`, its outputs in `out`: `options` are ingest params, `images` the grid."""
    return ingest.run(
        IngestParams(source=str(source), **options),
        images,
        midi_dir=out / "midi",
        manifest_path=out / "manifest.csv",
        metrics_path=out / "ingest.json",
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
    source = ingest.Source(krn.relative_to(root).as_posix(), str(krn))
    row, midi = ingest.examine(source, IngestParams(), ImagesParams())
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
    with pytest.raises(RollgenError, match="none of 1 inputs"):
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
    reference = run_ingest(chorale_midi_dir, tmp_path / "ref", workers=1, parser="py_midicsv")
    pd.testing.assert_frame_equal(fast, reference)
    for midi in fast["midi"]:
        assert (tmp_path / "fast" / "midi" / midi).read_bytes() == (tmp_path / "ref" / "midi" / midi).read_bytes()


# Pieces of music21's corpus other than Bach, whose shortest notes are 16ths (grace notes aside): folk
# fiddle tunes, Renaissance and trecento polyphony, a string quartet, a rag, an aria, a lead sheet.
CORPUS_PIECES = (
    "palestrina/Agnus_01.krn",
    "josquin/adieuMesAmours.abc",
    "trecento/Fava_Dicant_nunc_iudei.xml",
    "ryansMammoth/7thRegimentReel.abc",
    "ryansMammoth/42dHighlandRegimentStrathspey.abc",
    "haydn/opus1no1/movement1.mxl",
    "joplin/maple_leaf_rag.mxl",
    "handel/rinaldo/Lascia_chio_pianga.mxl",
    "leadSheet/berlinAlexandersRagtime.mxl",
)
# ... and two with 32nd notes or sextuplets, re-struck within a 16th.
FINER_THAN_16THS = ("schubert/Lindenbaum.xml", "cpebach/h186.mxl")


def export_corpus(pieces: tuple[str, ...], folder: Path) -> Path:
    """The pieces of music21's corpus exported to MIDI files in `folder`, as ingest converts them."""
    from music21 import corpus

    folder.mkdir(parents=True)
    for piece in pieces:
        midi = score_to_midi(Path(corpus.__file__).parent / piece)
        (folder / f"{piece.replace('/', '_')}.mid").write_bytes(midi)
    return folder


@pytest.fixture(scope="module")
def real_world(tmp_path_factory) -> Path:
    """A folder of real-world-like MIDI: tests.real_world's collection and the corpus pieces."""
    folder = tmp_path_factory.mktemp("real-world")
    write_collection(folder / "written")
    export_corpus(CORPUS_PIECES, folder / "music21")
    return folder


def accounted(manifest: pd.DataFrame) -> bool:
    """Whether every row's notes are drawn or in one column of the manifest, once."""
    counted = manifest[list(ingest.NOTE_COLUMNS)].sum(axis=1)
    return bool((manifest.notes_read == manifest.notes_drawn + counted).all())


def test_the_nearest_grid_keeps_real_world_notes_the_floor_grid_loses(tmp_path, real_world):
    nearest = run_ingest(real_world, tmp_path / "nearest", workers=1)
    floor = run_ingest(real_world, tmp_path / "floor", ImagesParams(grid="floor"), workers=1)
    assert (nearest.status == "accepted").all() and (floor.status == "accepted").all()
    assert accounted(nearest) and accounted(floor) and not nearest.too_short.any()
    kept, lost = (json.loads((tmp_path / grid / "ingest.json").read_text()) for grid in ("nearest", "floor"))
    assert kept["notes_in_range"] == lost["notes_in_range"] > 8_000
    # Lost: zero-length grace notes of the scores, and 4 unisons of the humanised performance, struck 10 to 22
    # ticks apart (a 48th of a quarter at most), which a grid of 16ths rounds onto one step. No more.
    assert kept["lost_share_in_range"] <= 0.005
    by_grid = nearest.set_index("path").merged_by_grid
    assert by_grid["written/performance.mid"] == by_grid.sum() == kept["notes_lost_by_reason"]["merged_by_grid"] == 4
    lost_by_reason = kept["notes_lost_by_reason"]
    assert sum(lost_by_reason[column] for column in ingest.LOST_COLUMNS) == lost_by_reason["zero_length"] + 4
    assert lost["lost_share_in_range"] > 0.05 and lost["notes_lost_by_reason"]["too_short"] > 500
    assert kept["files_losing_over_1_percent"] == 1 < lost["files_losing_over_1_percent"]  # the performance
    assert nearest.set_index("path").lost_share["written/performance.mid"] > ingest.LOST_SHARE_FLAG
    # The notes lost on neither grid: unisons (the same tick), a part of any music in voices.
    assert 0.01 < kept["merged_in_file_share_in_range"] < 0.1


def test_music_finer_than_the_grid_loses_notes_until_the_grid_is_finer(tmp_path):
    folder = export_corpus(FINER_THAN_16THS, tmp_path / "finer")
    (folder / "beyond 16ths.mid").write_bytes(to_midi(beyond_16ths(), 480))
    # 16ths merge re-strikes within a step (the tremolo, 32nds, sextuplets: 3% of C. P. E. Bach's notes, 1% of
    # Schubert's); 12 steps a quarter strike each on a step of its own, and loses no more than the grace notes.
    flagged = {4: {"beyond 16ths.mid", "cpebach_h186.mxl.mid"}, 12: set()}
    for steps_per_quarter in (4, 12):
        rows = []
        for path in sorted(folder.iterdir()):
            grid = ImagesParams(steps_per_quarter=steps_per_quarter)
            row, _ = ingest.examine(ingest.Source(path.name, str(path)), IngestParams(), grid)
            assert row.status == "accepted" and not row.too_short
            assert (row.merged_by_grid > 0) == (steps_per_quarter == 4), (row.path, steps_per_quarter)
            rows.append(row)
        assert {row.path for row in rows if row.lost_share > ingest.LOST_SHARE_FLAG} == flagged[steps_per_quarter]


def test_every_note_of_a_file_is_counted_once_in_the_manifest(tmp_path):
    events = [
        "0, Note_on_c, 0, 60, 90", "480, Note_off_c, 0, 60, 0",  # drawn
        "480, Note_on_c, 0, 60, 90", "960, Note_off_c, 0, 60, 0",  # re-struck: drawn
        "480, Note_on_c, 1, 60, 90", "720, Note_off_c, 1, 60, 0",  # the same onset, a second voice: merged in the file
        "0, Note_on_c, 0, 10, 90", "480, Note_off_c, 0, 10, 0",  # out of range
        "0, Note_on_c, 9, 36, 90", "120, Note_off_c, 9, 36, 0",  # drums
        "960, Note_on_c, 0, 64, 90", "960, Note_off_c, 0, 64, 0",  # zero length
        "960, Note_on_c, 0, 67, 90", "990, Note_off_c, 0, 67, 0",  # short notes: the second struck on the first's
        "1000, Note_on_c, 0, 67, 90", "1056, Note_off_c, 0, 67, 0",  # step (8.33 rounds to 8), merged by the grid
        "1200, Note_on_c, 0, 67, 90", "1296, Note_off_c, 0, 67, 0",  # (nearest); all three too short (floor)
    ]  # fmt: skip
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.mid").write_bytes(build_midi([events]))
    columns = ["notes_read", "notes_drawn", *ingest.NOTE_COLUMNS, "lost_share"]
    nearest = run_ingest(tmp_path / "in", tmp_path / "nearest", workers=1)
    assert nearest[columns].iloc[0].tolist() == [9, 4, 1, 1, 1, 0, 1, 1, round(2 / 7, 6)]  # lost: 2 of 7 in range
    assert nearest.dropped_reasons[0] == (
        "drums (channel 10): 1; merged: a unison in the file: 1; merged: struck on another's step by the grid: 1;"
        " pitch outside 21..126: 1; zero length: 1"
    )
    floor = run_ingest(tmp_path / "in", tmp_path / "floor", ImagesParams(grid="floor"), workers=1)
    assert floor[columns].iloc[0].tolist() == [9, 2, 1, 1, 1, 3, 0, 1, round(4 / 7, 6)]
    metrics = json.loads((tmp_path / "nearest" / "ingest.json").read_text())
    assert {key: metrics[key] for key in ("notes_read", "notes_in_range", "notes_drawn")} == {
        "notes_read": 9, "notes_in_range": 7, "notes_drawn": 4,
    }  # fmt: skip
    assert metrics["notes_lost_by_reason"] == dict(zip(ingest.NOTE_COLUMNS, [1, 1, 1, 0, 1, 1]))
    assert (metrics["lost_share_in_range"], metrics["merged_in_file_share_in_range"]) == (
        round(2 / 7, 6),
        round(1 / 7, 6),
    )


def test_two_short_notes_are_a_piece_on_the_nearest_grid(tmp_path):
    events = [
        "0, Note_on_c, 0, 60, 90",
        "96, Note_off_c, 0, 60, 0",
        "240, Note_on_c, 0, 62, 90",
        "336, Note_off_c, 0, 62, 0",
    ]
    path = tmp_path / "two staccato notes.mid"
    path.write_bytes(build_midi([events]))
    row, midi = ingest.examine(ingest.Source(path.name, str(path)), IngestParams(), ImagesParams())
    assert row.status == "accepted" and row.notes_drawn == 2 and row.steps == 3 and midi
    row, midi = ingest.examine(ingest.Source(path.name, str(path)), IngestParams(), ImagesParams(grid="floor"))
    assert midi is None and row.reason == "no notes to draw (shorter than one step: 2)"


def test_an_unknown_grid_stops_ingest_before_any_file_is_read():
    with pytest.raises(ParamsError, match="images.grid must be 'nearest', 'sample' or 'floor', not 'round'"):
        validate("images", {"grid": "round"})  # as the stage's params are read, before ingest.run
