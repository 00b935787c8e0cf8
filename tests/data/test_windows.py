"""The windows stage: each split's frame sequences with their bar positions, split by piece; article mode's
windows; archives read as levels (onsets kept, or runs struck in an archive without them)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rollgen.data import archive, images, windows
from rollgen.files import load_npz
from rollgen.music import meter
from rollgen.music.roll import HELD, ONSET, sounding, strike_runs
from rollgen.params import ImagesParams, ParamsError, WindowsParams, validate
from tests.defaults import STEPS_PER_QUARTER


def test_next_mode_targets_the_frame_right_after_the_window():
    frames = np.arange(20 * 3, dtype=np.uint8).reshape(20, 3)
    x, y = windows.make_windows(frames, context=9, mode="next")
    assert x.shape == (11, 9, 3) and y.shape == (11, 3)
    for i in range(len(x)):
        assert (x[i] == frames[i : i + 9]).all()
        assert (y[i] == frames[i + 9]).all()


def test_article_mode_skips_a_frame_as_split_sequences_did():
    frames = np.arange(106 * 2, dtype=np.uint16).reshape(106, 2)
    x, y = windows.make_windows(frames, context=9, mode="article")
    assert len(x) == 106 - 10  # the article's loop: 96 windows per 106-frame image
    assert (x[5] == frames[5:14]).all()
    assert (y[5] == frames[15]).all()


def test_too_short_sequences_give_no_windows():
    x, y = windows.make_windows(np.zeros((9, 4), np.uint8), context=9, mode="next")
    assert x.shape == (0, 9, 4) and y.shape == (0, 4)


def write_images(folder: Path, lengths: list[int], meters: dict[str, tuple[int, int]], mode: str = "lossless"):
    """PNG chunks of random pieces as the images stage writes them: index.csv, and meters.csv for the pieces
    in `meters` (name: time signature from step 0). Gives the rolls (pitches, steps) by piece name."""
    rng = np.random.default_rng(0)
    rows, rolls = [], {}
    chunk_steps = 106 if mode == "lossless" else 100
    for number, length in enumerate(lengths):
        name = f"p{number}.mid"
        rolls[name] = rng.random((106, length)) < 0.05
        for chunk, image in enumerate(images.roll_to_images(rolls[name], mode=mode, chunk_steps=chunk_steps)):
            image_name = images.image_name(name, chunk)
            images.save_png(image, folder / image_name)
            steps = min(chunk_steps, length - chunk * chunk_steps)
            rows.append(
                (image_name, name, f"source/{name}", f"{number * 2**60:064x}", chunk, chunk * chunk_steps, steps)
            )
    pd.DataFrame(rows, columns=images.INDEX_COLUMNS).to_csv(folder / "index.csv", index=False)
    table = [(name, "0", *signature) for name, signature in meters.items()]
    pd.DataFrame(table, columns=meter.METER_COLUMNS).to_csv(folder / images.METERS_NAME, index=False)
    return rolls


def test_stage_writes_every_pieces_frames_once_with_their_bar_positions(tmp_path):
    lengths = [150, 150, 212, 90, 150, 150]  # chunks joined back: 150 = 106 + 44 steps
    rolls = write_images(tmp_path, lengths, {"p0.mid": (3, 4), "p2.mid": (6, 8)})  # the rest: no row, 4/4

    params = WindowsParams(steps=9)
    summary = windows.run(params, ImagesParams(), tmp_path / "index.csv", tmp_path / "windows", tmp_path / "w.json")

    seen = set()
    for split in windows.SPLITS:
        stored = load_npz(tmp_path / "windows" / f"{split}.npz")
        assert "x" not in stored and "y" not in stored  # no overlapping copies of the frames
        assert stored["frames"].dtype == np.uint8 and stored["positions"].dtype == np.int16 and stored["onsets"]
        data = archive.load_sequences(split, tmp_path / "windows")
        assert (data.context, data.target_gap) == (9, 0) and len(data) == len(data.names)
        assert data.offsets[-1] == len(data.frames) == len(data.positions)
        for number, name in enumerate(data.names):
            np.testing.assert_array_equal(data.sequence(number), strike_runs(rolls[name], time_axis=1).T)
            signature = {"p0.mid": (3, 4), "p2.mid": (6, 8)}.get(name, (4, 4))
            where = meter.frame_positions(
                meter.Meter.from_steps([(0, *signature)], STEPS_PER_QUARTER), rolls[name].shape[1]
            )
            np.testing.assert_array_equal(data.positions[data.offsets[number] : data.offsets[number + 1]], where)
        assert not seen & set(data.names)
        seen |= set(data.names)
        assert summary[split] == {"pieces": len(data), "frames": len(data.frames)}
    assert seen == set(rolls)
    table = pd.read_csv(tmp_path / "windows" / windows.SPLITS_TABLE)
    assert list(table.columns) == ["piece", "path", "split", "group", "reason"] and len(table) == 6
    for row in table.itertuples():  # splits.csv says where each piece went
        assert row.piece in archive.load_sequences(row.split, tmp_path / "windows").names
        assert row.path == f"source/{row.piece}"


def test_article_mode_keeps_each_image_and_the_articles_windows(tmp_path):
    rolls = write_images(tmp_path, [150, 230], {"p1.mid": (3, 4)}, mode="article")  # 2 and 3 images of 100 steps
    params = WindowsParams(steps=9, mode="article", val_fraction=0.0, test_fraction=0.0)
    drawn = ImagesParams(mode="article", chunk_steps=100, grid="floor")
    windows.run(params, drawn, tmp_path / "index.csv", tmp_path / "windows", tmp_path / "windows.json")
    data = archive.load_sequences("train", tmp_path / "windows")
    stored = load_npz(tmp_path / "windows" / "train.npz")
    assert data.target_gap == 1 and sorted(data.names) == sorted(rolls)
    assert np.diff(data.offsets).tolist() == [106] * 5  # every image's 106 columns, a sequence of its own
    assert stored["x"].shape == (96 * 5, 9, 106) and stored["y"].shape == (96 * 5, 106)  # split_sequences' windows
    assert not stored["onsets"] and len(np.unique(stored["frames"])) > 3  # the article's pictures, grays and all
    for number in range(len(data)):  # read as levels: each run of bright pixels struck at its first column
        picture = stored["frames"][data.offsets[number] : data.offsets[number + 1]]
        np.testing.assert_array_equal(data.sequence(number), strike_runs(sounding(picture), time_axis=0))
    x, y = windows.make_windows(stored["frames"][: data.offsets[1]], 9, "article")
    np.testing.assert_array_equal(stored["x"][:96], x)  # the article's arrays, of its pictures' pixels
    np.testing.assert_array_equal(stored["y"][:96], y)
    first_image = 2 if data.names[0] == "p0.mid" else 0  # p1's first image: its columns drawn from steps 0..99
    three_four = meter.frame_positions(meter.Meter.from_steps([(0, 3, 4)], STEPS_PER_QUARTER), 230)
    positions = data.positions[data.offsets[first_image] : data.offsets[first_image + 1]]
    np.testing.assert_array_equal(positions, three_four[np.arange(106) * 100 // 106])


def test_previous_frames_are_silent_before_each_piece():
    from tests.archives import sequences

    data = sequences([np.full((3, 106), 255, np.uint8), np.full((2, 106), 255, np.uint8)])
    assert data.previous_frames()[:, 0].tolist() == [0, 255, 255, 0, 255]
    gap = archive.Sequences(data.frames, data.offsets, data.positions, data.names, target_gap=1)
    assert gap.previous_frames()[:, 0].tolist() == [0, 0, 255, 0, 0]  # two back in article mode


def test_an_unknown_mode_is_a_clear_error():
    with pytest.raises(ParamsError, match="windows.mode must be 'next' or 'article', not 'skip'"):
        validate("windows", {"mode": "skip"})
    with pytest.raises(ValueError, match="windows.mode must be one of"):
        windows.make_windows(np.zeros((20, 4), np.uint8), context=9, mode="skip")


def test_an_archive_without_onsets_reads_as_levels_struck_piece_by_piece(tmp_path):
    from tests.archives import sequences, write_archive

    # Two pieces of one held C4 each, joined in the archive: the second piece's note is struck again.
    old = sequences([np.full((3, 106), 255, np.uint8), np.full((2, 106), 255, np.uint8)])
    write_archive(tmp_path / "old.npz", old)  # no onsets flag: written before onsets were kept
    data = archive.read_sequences(tmp_path / "old.npz")
    assert data.frames.dtype == np.uint8 and data.frames[:, 0].tolist() == [ONSET, HELD, HELD, ONSET, HELD]
    write_archive(tmp_path / "flagged.npz", old, onsets=False)
    np.testing.assert_array_equal(archive.read_sequences(tmp_path / "flagged.npz").frames, data.frames)
    write_archive(tmp_path / "levels.npz", data, onsets=True)  # levels are read as they are
    np.testing.assert_array_equal(archive.read_sequences(tmp_path / "levels.npz").frames, data.frames)
    empty = sequences([np.zeros((0, 106), np.uint8), np.full((2, 106), 255, np.uint8)])
    write_archive(tmp_path / "empty.npz", empty)
    assert archive.read_sequences(tmp_path / "empty.npz").frames[:, 0].tolist() == [ONSET, HELD]
