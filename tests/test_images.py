"""Rolls -> 106x106 PNG chunks and back (the article's midi2image / image2midi)."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rollgen import images, meter
from rollgen.corpus import score_to_midi
from rollgen.midi import read_midi
from rollgen.roll import NUM_PITCHES, piece_to_roll


@pytest.fixture(scope="module")
def chorale_roll(chorale_files):
    roll, _ = piece_to_roll(read_midi(score_to_midi(chorale_files[0])))
    return roll


def test_lossless_chunks_are_exact_106_by_106_slices(chorale_roll):
    chunks = images.roll_to_images(chorale_roll)
    assert len(chunks) == -(-chorale_roll.shape[1] // 106)
    assert all(chunk.shape == (106, 106) and chunk.dtype == np.uint8 for chunk in chunks)
    joined = np.concatenate(chunks, axis=1)
    assert set(np.unique(joined)) <= {0, 255}
    assert (joined[:, : chorale_roll.shape[1]] == np.where(chorale_roll, 255, 0)).all()
    assert not joined[:, chorale_roll.shape[1] :].any()  # the last chunk is padded with silence


def test_article_mode_stretches_100_steps_with_lanczos(chorale_roll):
    chunks = images.roll_to_images(chorale_roll, mode="article", chunk_steps=100)
    assert all(chunk.shape == (106, 106) for chunk in chunks)
    first = np.where(chorale_roll[:, :100], 255, 0).astype(np.uint8)
    expected = np.asarray(Image.fromarray(first).resize((106, 106), Image.LANCZOS))
    assert (chunks[0] == expected).all()
    assert len(np.unique(chunks[0])) > 2  # resampling makes grays: the article's mode is lossy


def test_lossless_needs_106_step_chunks(chorale_roll):
    with pytest.raises(ValueError, match="chunk_steps = 106"):
        images.roll_to_images(chorale_roll, mode="lossless", chunk_steps=100)


def test_png_to_midi_to_png_returns_the_same_image(tmp_path, chorale_roll):
    for number, chunk in enumerate(images.roll_to_images(chorale_roll)):
        png = tmp_path / f"{number}.png"
        images.save_png(chunk, png)
        midi = images.image_to_midi(images.load_png(png))  # the article's image2midi
        roll, _ = piece_to_roll(read_midi(midi))
        again = images.roll_to_images(roll)[0] if roll.shape[1] else np.zeros((106, 106), np.uint8)
        assert (again == images.load_png(png)).all(), f"chunk {number} changed in the round trip"


def test_stage_writes_pngs_and_an_index(tmp_path, chorale_midi_dir):
    names = sorted(path.name for path in chorale_midi_dir.iterdir())[:2]
    sources = [f"bach/{name.replace('.mid', '.mxl')}" for name in names]  # the inputs, as the manifest has them
    manifest = pd.DataFrame(
        {"path": sources, "sha256": ["a" * 64, "b" * 64], "status": "accepted", "reason": "", "midi": names}
    )
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    index = images.run(tmp_path / "manifest.csv", chorale_midi_dir, tmp_path / "images")
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
    index = images.run(tmp_path / "manifest.csv", chorale_midi_dir, tmp_path / "images")
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
