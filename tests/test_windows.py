"""Windows of context frames and their target frame, split by piece."""

import numpy as np
import pandas as pd

from rollgen import images, windows
from rollgen.files import load_npz


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
    x, y = windows.make_windows(np.zeros((9, 4), np.uint8), context=9)
    assert x.shape == (0, 9, 4) and y.shape == (0, 4)


def test_split_follows_the_hash_and_never_changes():
    assert windows.split_of("0" * 64, 0.1, 0.1) == "test"
    assert windows.split_of("2" + "0" * 63, 0.1, 0.1) == "val"  # 2/16 = 0.125: past test, within val
    assert windows.split_of("f" * 64, 0.1, 0.1) == "train"
    hashes = [f"{i:064x}" for i in range(0, 2**64, 2**59)]
    assert windows.assign_splits(hashes, 0.1, 0.1) == windows.assign_splits(hashes, 0.1, 0.1)


def test_small_data_sets_still_get_val_and_test_pieces():
    hashes = ["9" * 64, "a" * 64, "b" * 64]  # all land in train by their hash
    splits = windows.assign_splits(hashes, 0.1, 0.1)
    assert sorted(splits) == ["test", "train", "val"]


def test_stage_writes_pickle_free_archives_split_by_piece(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for piece in range(6):
        roll = rng.random((106, 150)) < 0.05
        for chunk, image in enumerate(images.roll_to_images(roll)):
            name = f"p{piece}_{chunk}.png"
            images.save_png(image, tmp_path / name)
            rows.append(
                (
                    name,
                    f"p{piece}.mid",
                    f"{piece * 2**60:064x}",
                    chunk,
                    chunk * 106,
                    min(106, 150 - chunk * 106),
                )
            )
    pd.DataFrame(rows, columns=images.INDEX_COLUMNS).to_csv(tmp_path / "index.csv", index=False)

    summary = windows.run(tmp_path / "index.csv", tmp_path / "windows", tmp_path / "windows.json", context=9)

    seen = set()
    for split in windows.SPLITS:
        data = load_npz(tmp_path / "windows" / f"{split}.npz")
        assert data["x"].dtype == np.uint8 and data["x"].shape[1:] == (9, 106)
        assert data["y"].dtype == np.uint8 and data["y"].shape == (len(data["x"]), 106)
        assert len(data["x"]) == (150 - 9) * len(data["pieces"])  # windows span chunk boundaries
        assert data["frame_offsets"][-1] == len(data["frames"]) == 150 * len(data["pieces"])
        assert not seen & set(data["pieces"])
        seen |= set(data["pieces"])
        assert summary[split]["pieces"] == len(data["pieces"])
    assert len(seen) == 6
