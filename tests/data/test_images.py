"""Rolls -> 106x106 PNG chunks and back (the article's midi2image / image2midi)."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rollgen.data import images, ingest
from rollgen.data.images import IMAGE_SIZE
from rollgen.music import meter
from rollgen.music.corpus import score_to_midi
from rollgen.music.midi import read_midi
from rollgen.music.roll import HELD, NUM_PITCHES, ONSET, piece_to_roll, roll_to_midi, sounding
from rollgen.params import ImagesParams, IngestParams, ParamsError, validate
from tests.defaults import GRID, STEPS_PER_QUARTER, TEMPO_BPM
from tests.real_world import to_midi, write_collection


@pytest.fixture(scope="module")
def chorale_roll(chorale_files):
    roll, _ = piece_to_roll(read_midi(score_to_midi(chorale_files[0])), STEPS_PER_QUARTER, grid=GRID)
    return roll


def test_lossless_chunks_are_exact_106_by_106_slices(chorale_roll):
    chunks = images.roll_to_images(chorale_roll, mode="lossless", chunk_steps=IMAGE_SIZE)
    assert len(chunks) == -(-chorale_roll.shape[1] // 106)
    assert all(chunk.shape == (106, 106) and chunk.dtype == np.uint8 for chunk in chunks)
    joined = np.concatenate(chunks, axis=1)
    assert set(np.unique(joined)) == {0, HELD, ONSET}  # the roll's levels, as pixels
    assert (joined[:, : chorale_roll.shape[1]] == chorale_roll).all()
    assert not joined[:, chorale_roll.shape[1] :].any()  # the last chunk is padded with silence


def test_article_mode_stretches_100_steps_with_lanczos(chorale_roll):
    chunks = images.roll_to_images(chorale_roll, mode="article", chunk_steps=100)
    assert all(chunk.shape == (106, 106) for chunk in chunks)
    first = np.where(sounding(chorale_roll[:, :100]), 255, 0).astype(np.uint8)  # the article's 0/255, no onsets
    expected = np.asarray(Image.fromarray(first).resize((106, 106), Image.LANCZOS))
    assert (chunks[0] == expected).all()
    assert len(np.unique(chunks[0])) > 2  # resampling makes grays: the article's mode is lossy


def test_lossless_needs_106_step_chunks(chorale_roll):
    with pytest.raises(ValueError, match="chunk_steps = 106"):
        images.roll_to_images(chorale_roll, mode="lossless", chunk_steps=100)


@pytest.mark.parametrize("grid", ["nearest", "sample", "floor"])
def test_png_to_midi_to_png_returns_the_same_image(tmp_path, grid):
    # A piece full of what the grids treat differently: staccato, triplets, grace notes, 32nd and 64th runs.
    for path in write_collection(tmp_path / "midi")[:4]:
        roll, _ = piece_to_roll(read_midi(path.read_bytes()), 4, grid=grid)
        for number, chunk in enumerate(images.roll_to_images(roll, "lossless", IMAGE_SIZE)):
            png = tmp_path / f"{number}.png"
            images.save_png(chunk, png)
            midi = roll_to_midi(images.image_levels(images.load_png(png)), 4, tempo_bpm=TEMPO_BPM)
            again, dropped = piece_to_roll(read_midi(midi), 4, grid=grid)
            drawn = images.roll_to_images(again, "lossless", IMAGE_SIZE)[0] if again.shape[1] else np.zeros_like(chunk)
            # The first column's held notes are struck there: the chunk starts them.
            expected = images.image_levels(images.load_png(png))
            expected[:, 0] = np.where(sounding(expected[:, 0]), ONSET, 0)
            assert (drawn == expected).all(), f"{path.name}: chunk {number} changed in the round trip"
            assert not dropped  # a roll's notes are on the grid, one onset a step: each is drawn again as itself
            # The article's image2midi reads what sounds: each run of bright pixels one note.
            article, _ = piece_to_roll(
                read_midi(images.image_to_midi(images.load_png(png), 4, TEMPO_BPM)), 4, grid=GRID
            )
            assert (sounding(article) == sounding(drawn[:, : article.shape[1]])).all()


def test_stage_writes_pngs_and_an_index(tmp_path, chorale_midi_dir):
    names = sorted(path.name for path in chorale_midi_dir.iterdir())[:2]
    sources = [f"bach/{name.replace('.mid', '.mxl')}" for name in names]  # the inputs, as the manifest has them
    manifest = pd.DataFrame(
        {"path": sources, "sha256": ["a" * 64, "b" * 64], "status": "accepted", "reason": "", "midi": names}
    )
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    index = images.run(ImagesParams(), IngestParams(), tmp_path / "manifest.csv", chorale_midi_dir, tmp_path / "images")
    assert list(index.columns) == images.INDEX_COLUMNS
    assert sorted(index.piece.unique()) == names
    assert dict(zip(index.piece, index.path)) == dict(zip(names, sources))
    pngs = sorted(path.name for path in (tmp_path / "images").glob("*.png"))
    assert pngs == sorted(index.image)
    assert all(Image.open(tmp_path / "images" / name).size == (106, NUM_PITCHES) for name in pngs)
    assert (tmp_path / "images" / "index.csv").exists()


def test_stage_writes_each_pieces_meter_beside_the_index(tmp_path, chorale_midi_dir):
    names = sorted(path.name for path in chorale_midi_dir.iterdir())
    manifest = pd.DataFrame({"path": names, "sha256": "c" * 64, "status": "accepted", "reason": "", "midi": names})
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    index = images.run(ImagesParams(), IngestParams(), tmp_path / "manifest.csv", chorale_midi_dir, tmp_path / "images")
    table = pd.read_csv(tmp_path / "images" / images.METERS_NAME, dtype={"step": str})
    assert list(table.columns) == meter.METER_COLUMNS
    assert sorted(table.piece.unique()) == names and (table.groupby("piece").step.first() == "0").all()
    assert table[table.piece == "bwv1.6.mid"].values[:2].tolist() == [
        ["bwv1.6.mid", "0", 1, 4],
        ["bwv1.6.mid", "4", 4, 4],  # 4/4 after the 1/4 pickup, 4 steps in
    ]
    meters = meter.read_meters(tmp_path / "images" / images.METERS_NAME, steps_per_quarter=4)
    for name in names:  # the positions of the frames the images hold, rebuilt without reading MIDI again
        steps = int(index[index.piece == name].steps.sum())
        rows = table[table.piece == name][["step", "numerator", "denominator"]].itertuples(index=False)
        piece = read_midi((chorale_midi_dir / name).read_bytes())
        expected = meter.frame_positions(meter.Meter.from_piece(piece, steps_per_quarter=4), steps)
        assert (meter.positions_from_rows(rows, steps, steps_per_quarter=4) == expected).all()
        assert (meter.frame_positions(meters[name], steps) == expected).all()


def test_the_stage_draws_each_piece_on_the_grid_ingest_counted_it_on(tmp_path):
    # A piece that lasts the quarter limit exactly, at 8 steps a quarter, and the real-world collection: every
    # piece ingest accepts is drawn, in as many steps as the manifest says, whichever the grid.
    source = tmp_path / "in"
    write_collection(source)
    (source / "longest.mid").write_bytes(to_midi([(60, 0, 299), (62, 299 - 1 / 96, 1 / 96)], 96))
    for grid in ("nearest", "floor"):
        grid_params = ImagesParams(steps_per_quarter=8, grid=grid)
        limits = IngestParams(source=str(source), max_quarters=300, workers=1)
        out = tmp_path / grid
        manifest = ingest.run(limits, grid_params, out / "midi", out / "manifest.csv", out / "ingest.json")
        assert (manifest.status == "accepted").all()
        index = images.run(grid_params, limits, out / "manifest.csv", out / "midi", out / "images")
        assert pd.read_csv(out / "images" / images.REJECTED_NAME).empty
        assert index.groupby("piece").steps.sum().to_dict() == dict(zip(manifest.midi, manifest.steps))


def test_a_piece_the_stage_cannot_draw_is_rejected_on_record(tmp_path, chorale_midi_dir):
    good = sorted(path.name for path in chorale_midi_dir.iterdir())[0]
    midi_dir = tmp_path / "midi"
    midi_dir.mkdir()
    (midi_dir / good).write_bytes((chorale_midi_dir / good).read_bytes())
    (midi_dir / "cut.mid").write_bytes((chorale_midi_dir / good).read_bytes()[:200])
    (midi_dir / "long.mid").write_bytes(to_midi([(60, 0, 200)], 480))
    names = [good, "cut.mid", "long.mid", "gone.mid"]
    manifest = pd.DataFrame({"path": names, "sha256": "d" * 64, "status": "accepted", "reason": "", "midi": names})
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    shorter = IngestParams(max_quarters=100)  # not the limit ingest accepted the pieces on
    index = images.run(ImagesParams(), shorter, tmp_path / "manifest.csv", midi_dir, tmp_path / "images")
    assert index.piece.unique().tolist() == [good]
    rejected = pd.read_csv(tmp_path / "images" / images.REJECTED_NAME)
    assert list(rejected.columns) == images.REJECTED_COLUMNS
    assert rejected.piece.tolist() == ["cut.mid", "long.mid", "gone.mid"]
    assert rejected.reason[0].startswith("truncated track 2")
    assert rejected.reason[1:].tolist() == ["too long: 800 steps (limit 401)", "cannot read: No such file or directory"]


def test_article_mode_draws_the_articles_grid():
    with pytest.raises(ParamsError, match="images.mode article draws the article's grid: set images.grid to floor"):
        validate("images", {"mode": "article", "chunk_steps": 100})
