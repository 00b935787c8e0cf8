"""Train/val/test splits that do not leak: copies of one work share a split, pre-split folders are kept."""

import hashlib
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollgen.data import splits
from rollgen.data.ingest import midi_name
from rollgen.data.splits import Assignment, PieceInfo, assign_splits
from rollgen.errors import RollgenError
from rollgen.music.corpus import music21_corpus_files, score_to_midi
from rollgen.music.midi import read_midi
from rollgen.music.roll import NUM_PITCHES, piece_to_roll, sounding
from rollgen.params import WindowsParams
from tests.defaults import GRID

# bwv281 ships twice, with slightly different notes; bwv176.6 and bwv280 harmonise one tune differently.
WINDOWS = WindowsParams()  # the windows stage's defaults: windows.split, val_fraction, test_fraction


def assign(pieces: list[PieceInfo], mode: str = WINDOWS.split) -> list[Assignment]:
    """`assign_splits` as the windows stage calls it with the default params (`mode` aside)."""
    return assign_splits(pieces, mode, WINDOWS.val_fraction, WINDOWS.test_fraction)


SCORES = ("bwv281.krn", "bwv281.mxl", "bwv176.6.mxl", "bwv280.mxl", "bwv1.6.mxl")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def piece(path: str, roll: np.ndarray | None = None, sha256: str | None = None) -> PieceInfo:
    """A piece as the windows stage describes it; the roll is an unrelated random one unless given."""
    sha256 = sha256 or sha(path)
    if roll is None:
        roll = chorale_like(int(sha256[:8], 16))
    return PieceInfo(name=midi_name(path, sha256), path=path, sha256=sha256, roll=roll)


def chorale_like(seed: int, chords: int = 48) -> np.ndarray:
    """A roll of `chords` random four-note chords (MIDI 40..80), each held two 16th-note steps."""
    rng = np.random.default_rng(seed)
    roll = np.zeros((NUM_PITCHES, 2 * chords), dtype=bool)
    for chord in range(chords):
        pitches = rng.choice(np.arange(40, 81), size=4, replace=False)
        roll[pitches - 21, 2 * chord : 2 * chord + 2] = True
    return roll


def with_notes_moved(roll: np.ndarray, chords: list[int], semitones: int = 2) -> np.ndarray:
    """The roll with the top note of each of these chords (see `chorale_like`) moved."""
    roll = roll.copy()
    for chord in chords:
        top = np.flatnonzero(roll[:, 2 * chord]).max()
        roll[top, 2 * chord : 2 * chord + 2] = False
        roll[top + semitones, 2 * chord : 2 * chord + 2] = True
    return roll


def transposed(roll: np.ndarray, semitones: int) -> np.ndarray:
    return np.roll(roll, semitones, axis=0)


@pytest.fixture(scope="module")
def chorales() -> dict[str, PieceInfo]:
    """A few of music21's Bach scores as pieces, by file name."""
    root, scores = music21_corpus_files("bach")
    by_name = {path.name: path for path in scores}
    found = {}
    for name in SCORES:
        path = by_name[name]
        roll = sounding(
            piece_to_roll(read_midi(score_to_midi(path)), steps_per_quarter=4, grid=GRID)[0]
        )  # what splits read
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        found[name] = piece(path.relative_to(root).as_posix(), roll, sha256)
    return found


def test_the_same_chorale_in_two_formats_lands_in_one_split(chorales):
    krn, mxl = chorales["bwv281.krn"], chorales["bwv281.mxl"]
    assignments = assign([krn, mxl])
    assert assignments[0].split == assignments[1].split and assignments[0].group == assignments[1].group
    head = assignments[0].group  # the first of the two by name
    for one, assignment in zip([krn, mxl], assignments):
        assert assignment.reason == ("hash of its group" if one.path == head else f"same work as {head}")


def test_a_copy_under_another_name_is_found_by_its_roll(chorales):
    copies = [
        PieceInfo("first-1.mid", "scores/first.krn", chorales["bwv281.krn"].sha256, chorales["bwv281.krn"].roll),
        PieceInfo("second-2.mid", "midi/second.mid", chorales["bwv281.mxl"].sha256, chorales["bwv281.mxl"].roll),
    ]
    first, second = assign(copies)
    assert first.split == second.split and first.group == second.group == "scores/first.krn"
    assert first.reason == "hash of its group"
    assert second.reason == "near-identical roll to scores/first.krn (Jaccard 0.86)"  # 2 of 41 chords differ


def test_different_chorales_stay_apart_even_on_one_tune(chorales):
    pieces = [chorales[name] for name in ("bwv176.6.mxl", "bwv280.mxl", "bwv1.6.mxl", "bwv281.mxl")]
    for assignment, one in zip(assign(pieces), pieces):
        assert assignment.group == one.path
    _, _, similarity = splits.similar_pairs([splits.roll_shingles(one.roll) for one in pieces], threshold=0.0)
    assert 0.5 < similarity.max() < splits.SIMILARITY_THRESHOLD  # bwv176.6 ~ bwv280: alike, yet not a copy


def test_a_roll_with_notes_changed_and_a_transposed_copy_join_the_original():
    original = chorale_like(1)
    pieces = [
        piece("a/original.mid", original),
        piece("b/edited.mid", with_notes_moved(original, [10, 30])),
        piece("c/up-a-fourth.mid", transposed(original, 5)),
        piece("d/edited-down-a-third.mid", transposed(with_notes_moved(original, [5, 25], semitones=-1), -4)),
        piece("e/unrelated.mid", chorale_like(2)),
    ]
    assignments = assign(pieces)
    assert len({a.group for a in assignments[:4]}) == 1 and len({a.split for a in assignments[:4]}) == 1
    assert assignments[4].group == "e/unrelated.mid"
    linked = [a.reason for one, a in zip(pieces, assignments) if a.group != one.path]
    assert len(linked) == 3 and all(reason.startswith("near-identical roll to ") for reason in linked)


def test_shingles_ignore_key_and_a_changed_note_costs_only_its_neighbours():
    original = chorale_like(3)
    assert np.array_equal(splits.roll_shingles(original), splits.roll_shingles(transposed(original, -7)))
    kept = np.intersect1d(splits.roll_shingles(original), splits.roll_shingles(with_notes_moved(original, [20])))
    assert len(kept) == 48 - 2 - 3  # 46 shingles of 3 chords, of which the 3 that hold chord 20 change


@pytest.mark.parametrize(
    ("folder", "split"),
    [("train", "train"), ("val", "val"), ("valid", "val"), ("Validation", "val"), ("TEST", "test")],
)
def test_split_folders_are_honoured_in_any_spelling(folder, split):
    pieces = [piece(f"{folder}/song.mid"), piece("train/other.mid")]
    assignments = assign(pieces)
    assert assignments[0] == Assignment(split, f"{folder}/song.mid", f"folder '{folder}/'")


def test_folders_beat_hashes_and_similarity():
    roll = chorale_like(4)
    pieces = [piece("train/a.mid", roll, "0" * 64), piece("test/a.mid", roll, "f" * 64)]
    assert [a.split for a in assign(pieces)] == ["train", "test"]


def test_folders_mode_names_a_piece_outside_the_split_folders():
    pieces = [piece("train/a.mid"), piece("test/b.mid"), piece("extra/stray.mid")]
    with pytest.raises(RollgenError, match=r"extra/stray.mid: not in a split folder.*train/.*valid/.*test/"):
        assign(pieces, mode="folders")


@pytest.mark.parametrize(
    "paths",
    [
        ["train/a.mid", "test/b.mid", "extra/c.mid"],  # one piece outside the split folders
        ["train/a.mid", "test/b.mid", "c.mid"],  # one at the top level
        ["val/a.mid", "test/b.mid", "test/c.mid"],  # no train folder
    ],
)
def test_auto_mode_groups_when_the_folders_are_not_a_split(paths):
    assignments = assign([piece(path) for path in paths])
    assert not any(a.reason.startswith("folder") for a in assignments)
    assert assign([piece(path) for path in paths], mode="groups") == assignments


def test_val_and_test_get_a_piece_from_three_unrelated_ones():
    pieces = [piece(f"songs/{name}.mid", sha256=f"f{i}" + "0" * 62) for i, name in enumerate("abc")]
    assignments = assign(pieces)
    assert sorted(a.split for a in assignments) == ["test", "train", "val"]
    assert assignments[0].reason.endswith("moved to test, which was empty (smallest hash of the train groups)")


def test_the_small_data_fallback_moves_whole_groups():
    roll = chorale_like(5)
    pieces = [
        piece("songs/a.mid", roll, "f0" + "0" * 62),
        piece("songs/a.kar", roll, "ff" + "0" * 62),
        piece("songs/b.mid", sha256="f1" + "0" * 62),
        piece("songs/c.mid", sha256="f2" + "0" * 62),
    ]
    assert [a.split for a in assign(pieces)] == ["test", "test", "val", "train"]


def test_a_piece_keeps_its_split_when_unrelated_pieces_come_or_go():
    pieces = [piece(f"songs/{number}.mid") for number in range(60)]
    before = assign(pieces)
    assert {a.split for a in before} == set(splits.SPLITS)  # enough pieces that no fallback is needed
    after = assign(pieces[:40] + [piece(f"more/{number}.mid") for number in range(30)])
    assert after[:40] == before[:40]


def test_split_follows_the_hash_rule():
    assert splits.split_of("0" * 64, 0.1, 0.1) == "test"
    assert splits.split_of("2" + "0" * 63, 0.1, 0.1) == "val"  # 2/16 = 0.125: past test, within val
    assert splits.split_of("f" * 64, 0.1, 0.1) == "train"


def test_empty_rolls_are_not_copies_of_each_other():
    empty = np.zeros((NUM_PITCHES, 0), dtype=bool)
    assignments = assign([piece("songs/a.mid", empty), piece("songs/b.mid", empty)])
    assert [a.group for a in assignments] == ["songs/a.mid", "songs/b.mid"]


def test_an_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="splits mode must be one of"):
        assign([piece("songs/a.mid")], mode="random")


# Pieces for the property test: a few base rolls, each also edited or transposed, under random paths.
BASES = [chorale_like(seed, chords=24) for seed in range(4)]
VARIANTS = [
    lambda roll: roll,
    lambda roll: transposed(roll, 3),
    lambda roll: with_notes_moved(roll, [12]),
]


@st.composite
def piece_lists(draw) -> tuple[list[PieceInfo], list[int]]:
    """Random pieces and each one's base roll; paths from a small pool, so some are the same work."""
    count = draw(st.integers(min_value=0, max_value=14))
    pieces, bases = [], []
    for number in range(count):
        folder = draw(st.sampled_from(["", "train/", "Test/", "valid/", "bach/"]))
        path = folder + draw(st.sampled_from(["a", "b", "c", "d"])) + draw(st.sampled_from([".mid", ".krn"]))
        base = draw(st.integers(min_value=0, max_value=len(BASES) - 1))
        roll = VARIANTS[draw(st.integers(min_value=0, max_value=len(VARIANTS) - 1))](BASES[base])
        sha256 = f"{draw(st.integers(min_value=0, max_value=2**256 - 1)):064x}"
        pieces.append(PieceInfo(f"{number}-{sha256[:8]}.mid", path, sha256, roll))
        bases.append(base)
    return pieces, bases


def copies_of(pieces: list[PieceInfo], bases: list[int]) -> list[int]:
    """For each piece, the first piece it is a copy of through a chain of same works or same base rolls."""
    parent = list(range(len(pieces)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(pieces)):
        for j in range(i):
            same_work = pieces[i].path.rsplit(".", 1)[0].lower() == pieces[j].path.rsplit(".", 1)[0].lower()
            if same_work or bases[i] == bases[j]:
                parent[root(i)] = root(j)
    return [root(i) for i in range(len(pieces))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=piece_lists(), shuffle_seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_a_group_never_straddles_two_splits_whatever_the_order(drawn, shuffle_seed):
    pieces, bases = drawn
    assignments = assign(pieces)
    split_of_group: dict[str, str] = {}
    for assignment in assignments:
        assert split_of_group.setdefault(assignment.group, assignment.split) == assignment.split
    if not all(a.reason.startswith("folder") for a in assignments):
        # Grouped: the groups are exactly the chains of copies, each named by its first member by name.
        expected = copies_of(pieces, bases)
        for i, j in zip(*np.triu_indices(len(pieces), 1)):
            assert (assignments[i].group == assignments[j].group) == (expected[i] == expected[j])
        for assignment in assignments:
            members = [other for other, a in zip(pieces, assignments) if a.group == assignment.group]
            assert assignment.group == min(members, key=lambda other: other.name).path
    order = list(range(len(pieces)))
    random.Random(shuffle_seed).shuffle(order)
    shuffled = assign([pieces[i] for i in order])
    assert [shuffled[order.index(i)] for i in range(len(pieces))] == assignments
