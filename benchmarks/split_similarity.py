"""How alike music21's Bach chorales are under rollgen.data.splits' shingles: the numbers behind its threshold.

    python benchmarks/split_similarity.py [--cache build/bach_rolls.npz] [--chords 2 3 4] [--edits 2]

Reads every Bach score music21 ships (rolls at 4 steps per quarter, cached in --cache as .npz, no pickle,
after the first run: parsing takes ~2 minutes), then for each shingle length in --chords prints:
- the Jaccard similarity of the known copies (bwv281 and bwv366, each as .krn and .mxl);
- each chorale's highest similarity to a different work (another file stem): quantiles, and the top pairs
  with how much of their music matches (difflib's ratio over the onset chords, and over the soprano line's
  intervals): a reused harmonisation matches in its chords, a new harmonisation of one tune in its soprano
  only;
- for every chorale, the similarity to itself with --edits notes moved by a tone, and transposed a fifth
  up as well, and the share of these copies that reach rollgen.data.splits.SIMILARITY_THRESHOLD.
The last line is all figures as one JSON object.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path, PurePosixPath

import numpy as np

from rollgen.data import splits
from rollgen.music.corpus import music21_corpus_files, score_to_midi
from rollgen.music.midi import read_midi
from rollgen.music.roll import LOWEST_PITCH, piece_to_roll, roll_to_notes, sounding
from rollgen.params import ImagesParams

GRID = ImagesParams().grid  # the images stage's default, as the rolls the splits read
KNOWN_COPIES = (("bach/bwv281.krn", "bach/bwv281.mxl"), ("bach/bwv366.krn", "bach/bwv366.mxl"))


def load_rolls(cache: Path) -> dict[str, np.ndarray]:
    """Path relative to the corpus -> bool roll (106, steps), parsed once and cached as bit-packed arrays."""
    if cache.exists():
        archive = np.load(cache, allow_pickle=False)
        return {
            name: np.unpackbits(archive[name], axis=1, count=int(archive[f"{name}|steps"])).astype(bool)
            for name in archive.files
            if not name.endswith("|steps")
        }
    root, scores = music21_corpus_files("bach")
    rolls, arrays = {}, {}
    for number, path in enumerate(scores):
        name = path.relative_to(root).as_posix()
        try:
            rolls[name] = sounding(piece_to_roll(read_midi(score_to_midi(path)), steps_per_quarter=4, grid=GRID)[0])
        except Exception as error:  # one score music21 cannot expand (bwv277.krn): left out, said
            print(f"{name}: left out: {type(error).__name__}: {error}", file=sys.stderr)
            continue
        arrays[name] = np.packbits(rolls[name], axis=1)
        arrays[f"{name}|steps"] = np.int64(rolls[name].shape[1])
        print(f"{number + 1}/{len(scores)} {name}", file=sys.stderr, end="\r")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, **arrays)
    return rolls


def match(a: list, b: list) -> float:
    """How much of two sequences agree, 0..1 (difflib's ratio)."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def soprano_intervals(roll: np.ndarray) -> list[int]:
    """The steps of the highest sounding pitch from onset chord to onset chord: the tune, in any key."""
    starts = roll & ~np.pad(roll, ((0, 0), (1, 0)))[:, :-1]
    top = [int(roll.shape[0] - 1 - np.argmax(roll[::-1, step])) for step in np.flatnonzero(starts.any(axis=0))]
    return np.diff(top).tolist()


def edited(roll: np.ndarray, edits: int, rng: np.random.Generator) -> np.ndarray:
    """The roll with `edits` random notes moved two semitones up or down."""
    roll = roll.copy()
    notes = roll_to_notes(roll)
    for index in rng.choice(len(notes.pitches), size=edits, replace=False):
        row, start, length = notes.pitches[index] - LOWEST_PITCH, notes.starts[index], notes.lengths[index]
        roll[row, start : start + length] = False
        roll[np.clip(row + rng.choice([-2, 2]), 0, roll.shape[0] - 1), start : start + length] = True
    return roll


def transposed(roll: np.ndarray, semitones: int) -> np.ndarray:
    """The roll moved up `semitones` (the chorales lie far from the roll's edges, so nothing wraps)."""
    return np.roll(roll, semitones, axis=0)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    together = len(np.intersect1d(a, b))
    return together / (len(a) + len(b) - together) if len(a) + len(b) else 0.0


def measure(rolls: dict[str, np.ndarray], chords: int, edits: int) -> dict:
    names = sorted(rolls)
    shingles = [splits.roll_shingles(rolls[name], chords) for name in names]
    rows, cols, similarity = splits.similar_pairs(shingles, threshold=1e-9)
    pair = {(names[a], names[b]): value for a, b, value in zip(rows, cols, similarity)}
    stems = [PurePosixPath(name).stem.lower() for name in names]
    other = np.array([stems[a] != stems[b] for a, b in zip(rows, cols)], dtype=bool)
    best = np.zeros(len(names))
    np.maximum.at(best, rows[other], similarity[other])
    np.maximum.at(best, cols[other], similarity[other])
    top = []
    for i in np.argsort(-np.where(other, similarity, -1), kind="stable")[:16]:
        a, b = rolls[names[rows[i]]], rolls[names[cols[i]]]
        chords_alike = match(splits.onset_chords(a)[0].tolist(), splits.onset_chords(b)[0].tolist())
        tune_alike = match(soprano_intervals(a), soprano_intervals(b))
        top.append(
            f"{names[rows[i]]} ~ {names[cols[i]]}: {similarity[i]:.3f} (chords match {chords_alike:.2f}, "
            f"soprano {tune_alike:.2f})"
        )
    rng = np.random.default_rng(0)
    copies: dict[str, list[float]] = {"edited": [], "edited and transposed": []}
    for name, own in zip(names, shingles):
        changed = edited(rolls[name], edits, rng)
        copies["edited"].append(jaccard(own, splits.roll_shingles(changed, chords)))
        copies["edited and transposed"].append(jaccard(own, splits.roll_shingles(transposed(changed, 7), chords)))
    threshold = splits.SIMILARITY_THRESHOLD
    return {
        "chords": chords,
        "pieces": len(names),
        "shingles per piece, median": int(np.median([len(s) for s in shingles])),
        "known copies": {f"{a} ~ {b}": round(float(pair.get((a, b), 0.0)), 3) for a, b in KNOWN_COPIES},
        "highest to another work, quantiles 50/90/95/98/100": [
            round(float(q), 3) for q in np.quantile(best, [0.5, 0.9, 0.95, 0.98, 1.0])
        ],
        "top pairs of different works": top,
        **{
            f"{edits} notes moved{' and transposed' if kind != 'edited' else ''}: lowest, median, "
            f"share >= {threshold}": [
                round(float(np.min(values)), 3),
                round(float(np.median(values)), 3),
                round(float(np.mean(np.array(values) >= threshold)), 3),
            ]
            for kind, values in copies.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path("build/bach_rolls.npz"))  # git-ignored, not a shared /tmp
    parser.add_argument("--chords", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--edits", type=int, default=2)
    args = parser.parse_args()
    rolls = load_rolls(args.cache)
    report = [measure(rolls, chords, args.edits) for chords in args.chords]
    for figures in report:
        print(json.dumps(figures, indent=1, ensure_ascii=False))
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
