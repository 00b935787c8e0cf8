"""How much generated music resembles real music: per-piece features and their overlap with a reference set.

The overlap follows Yang & Lerch (2018), "On the evaluation of generative models in music": for each feature,
the distances between pieces within the reference set (intra-set) and between generated and reference pieces
(inter-set) are smoothed into densities; the area both densities share is 1 when generated pieces sit among
the reference pieces as those sit among themselves, and near 0 when they lie apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.integrate import trapezoid
from scipy.stats import gaussian_kde, norm

from rollgen.evaluation.stats import roll_stats
from rollgen.music.roll import roll_to_notes, sounding

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)  # natural minor, as muspy's scale consistency
PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# The 24 scales as rows of 12 pitch-class flags: C major .. B major, then C minor .. B minor.
SCALES = np.array(
    [
        [(pitch_class - tonic) % 12 in steps for pitch_class in range(12)]
        for steps in (MAJOR, MINOR)
        for tonic in range(12)
    ]
)
SCALE_NAMES = [f"{PITCH_CLASSES[tonic]} {mode}" for mode in ("major", "minor") for tonic in range(12)]

# Per-piece features whose generated-vs-test overlap the report gives.
OVERLAP_FEATURES = (
    "notes_per_step",
    "mean_polyphony",
    "pitch_range",
    "pitch_class_entropy",
    "scale_consistency",
    "mean_note_length",
)


def pitch_class_histogram(roll: np.ndarray) -> np.ndarray:
    """Notes (onsets, not sounding steps) per pitch class C..B of a roll (pitches, steps): uint8 levels, or bool."""
    pitches = roll_to_notes(roll).pitches.astype(np.int64)
    return np.bincount(pitches % 12, minlength=12)


def best_scale(histogram: np.ndarray) -> tuple[str, float]:
    """The major or natural-minor scale holding the largest fraction of the notes, and that fraction.

    A major scale and its relative minor hold the same pitch classes, so the major is named (see
    `relative_minor`). NaN for no notes.
    """
    total = histogram.sum()
    if total == 0:
        return "", math.nan
    in_scale = SCALES @ histogram
    best = int(np.argmax(in_scale))
    return SCALE_NAMES[best], float(in_scale[best] / total)


def relative_minor(major: str) -> str:
    """'C major' -> 'A minor': the minor scale of the same pitch classes."""
    tonic = PITCH_CLASSES.index(major.split()[0])
    return f"{PITCH_CLASSES[(tonic + 9) % 12]} minor"


def piece_features(roll: np.ndarray, steps_per_quarter: int) -> dict[str, float]:
    """Features of one roll (pitches, steps) of uint8 levels (or bool: each run struck once); row i is MIDI pitch
    LOWEST_PITCH + i, a step 1/steps_per_quarter of a quarter note. A note runs from a struck cell through the
    held cells after it (rollgen.music.roll.roll_to_notes, as written to MIDI): a re-struck note is two.

    - silent_fraction: steps with no sounding pitch / steps
    - notes_per_step: note onsets / steps
    - mean_polyphony: sounding pitches per non-silent step
    - pitch_range: highest minus lowest pitch played, in semitones
    - pitch_class_entropy: Shannon entropy, in bits (0 .. log2 12 = 3.58), of the notes' pitch-class histogram
    - scale_consistency: fraction of notes in the best of the 24 major / natural-minor scales
    - empty_beat_rate: beats (each `steps_per_quarter` steps, counted from the first step; a last, incomplete
      beat is left out) in which no note starts / beats. A held note leaves the beats after its onset empty:
      this measures rhythmic activity, not silence.
    - mean_note_length: mean length of the notes, in steps
    Features that need notes (or a non-silent step, or a whole beat) are NaN without them.
    """
    sounds = sounding(roll)
    steps = sounds.shape[1]
    per_step = sounds.sum(axis=0)
    notes = roll_to_notes(roll)
    histogram = np.bincount(notes.pitches.astype(np.int64) % 12, minlength=12)
    played = np.flatnonzero(sounds.any(axis=1))
    beats = steps // steps_per_quarter
    has_notes = len(notes.pitches) > 0
    if has_notes:
        shares = histogram[histogram > 0] / histogram.sum()
        entropy = float(-(shares * np.log2(shares)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0
    else:
        entropy = math.nan
    if beats:
        started = np.zeros(beats, dtype=bool)
        onset_beats = notes.starts // steps_per_quarter
        started[onset_beats[onset_beats < beats]] = True
        empty_beat_rate = float(1 - started.mean())
    else:
        empty_beat_rate = math.nan
    return {
        "silent_fraction": float((per_step == 0).mean()) if steps else math.nan,
        "notes_per_step": len(notes.pitches) / steps if steps else math.nan,
        "mean_polyphony": float(per_step[per_step > 0].mean()) if per_step.any() else math.nan,
        "pitch_range": float(played[-1] - played[0]) if has_notes else math.nan,
        "pitch_class_entropy": entropy,
        "scale_consistency": best_scale(histogram)[1],
        "empty_beat_rate": empty_beat_rate,
        "mean_note_length": float(notes.lengths.mean()) if has_notes else math.nan,
    }


def _density(sample: np.ndarray, fallback_width: float):
    """A density for `sample`: scipy's Gaussian KDE (Scott's bandwidth), or, where that is undefined (one
    value, or all values equal), a normal of `fallback_width` around the value. Gives (pdf, bandwidth)."""
    point_mass = norm(loc=float(np.mean(sample)), scale=fallback_width).pdf, fallback_width
    if len(sample) < 2 or np.ptp(sample) == 0:
        return point_mass
    try:
        kde = gaussian_kde(sample)
    except np.linalg.LinAlgError:  # a spread too small for the covariance to invert: as one value
        return point_mass
    return kde, float(np.sqrt(kde.covariance[0, 0]))


def density_overlap(first: np.ndarray, second: np.ndarray, grid_points: int = 4096) -> float:
    """The area under the smaller of the two samples' smoothed densities: 1 for the same distribution, 0 for
    disjoint ones. Integrated on a grid reaching 4 bandwidths past both samples, so each density's whole mass
    counts (mgeval integrates over the samples' range only, which gives identical sets less than 1)."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    spread = float(np.ptp(np.concatenate([first, second])))
    # Narrow enough to keep two different constants apart, wide enough for the grid to resolve it.
    fallback_width = spread / 100 if spread > 0 else 1.0
    pdf_first, width_first = _density(first, fallback_width)
    pdf_second, width_second = _density(second, fallback_width)
    margin = 4 * max(width_first, width_second)
    grid = np.linspace(min(first.min(), second.min()) - margin, max(first.max(), second.max()) + margin, grid_points)
    return float(min(1.0, trapezoid(np.minimum(pdf_first(grid), pdf_second(grid)), grid)))


def overlap_area(generated: Sequence[float], reference: Sequence[float]) -> float | None:
    """Yang & Lerch's overlap area of one scalar feature: intra-set distances |r_i - r_j| (i < j) of the
    reference pieces vs inter-set distances |g_i - r_j| of generated to reference pieces. NaN values (a
    feature a piece lacks) are left out; None when fewer than two reference or no generated values remain."""
    generated = np.asarray(generated, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    generated, reference = generated[np.isfinite(generated)], reference[np.isfinite(reference)]
    if len(reference) < 2 or len(generated) == 0:
        return None
    first, second = np.triu_indices(len(reference), k=1)
    intra = np.abs(reference[first] - reference[second])
    inter = np.abs(generated[:, None] - reference[None, :]).ravel()
    return density_overlap(intra, inter)


def present(features: list[dict[str, float]], name: str) -> np.ndarray:
    """The values of feature `name` of the pieces that have it (NaN: a piece without)."""
    values = np.array([piece[name] for piece in features], dtype=np.float64)
    return values[np.isfinite(values)]


def summarise(features: list[dict[str, float]]) -> dict[str, float | None]:
    """Each feature's mean over the pieces that have it (None when none has)."""
    summary: dict[str, float | None] = {}
    for name in ("pitch_range", "pitch_class_entropy", "scale_consistency", "empty_beat_rate", "mean_note_length"):
        values = present(features, name)
        summary[name] = float(values.mean()) if len(values) else None
    return summary


def note_lengths(rolls: Sequence[np.ndarray]) -> np.ndarray:
    """The length in steps of every note (from a struck cell through the held ones after it) of rolls."""
    return np.concatenate([roll_to_notes(roll).lengths for roll in rolls] or [np.zeros(0, np.int64)])


def long_note_share(rolls: Sequence[np.ndarray], limit: float) -> float | None:
    """The share of the rolls' notes held longer than `limit` steps (None without notes): a stuck note, which
    a sampler at too low a temperature holds for bars, shows here before it moves any mean."""
    lengths = note_lengths(rolls)
    return float((lengths > limit).mean()) if len(lengths) else None


def long_note_limit(reference: Sequence[np.ndarray]) -> float:
    """The length in steps past which a note counts as long: the LONG_NOTE_PERCENTILE of the reference's."""
    lengths = note_lengths(reference)
    return float(np.percentile(lengths, LONG_NOTE_PERCENTILE)) if len(lengths) else 0.0


@dataclass(frozen=True)
class Gate:
    """A statistic the generated pieces must keep near the reference pieces' (rollgen#27): `within` a share
    `tolerance` of it, `at_most` or `at_least` `tolerance` from it, or `below` `tolerance` whatever it is."""

    statistic: str
    rule: str
    tolerance: float

    def describe(self, reference_name: str) -> str:
        return {
            "within": f"within {self.tolerance:.0%} of {reference_name}'s",
            "at_most": f"at most {reference_name}'s + {self.tolerance:g}",
            "at_least": f"at least {reference_name}'s - {self.tolerance:g}",
            "below": f"at most {self.tolerance:g}",
        }[self.rule]

    def check(self, generated: float | None, reference: float | None) -> tuple[bool, float | None]:
        """Whether `generated` passes, and its distance from `reference` in units of the tolerance (1: at the
        gate's edge; None where either value is missing, which fails)."""
        if generated is None or reference is None or not (np.isfinite(generated) and np.isfinite(reference)):
            return False, None
        scale = self.tolerance * abs(reference) if self.rule == "within" else self.tolerance
        distance = abs(generated - reference) / scale if scale > 0 else (0.0 if generated == reference else math.inf)
        passed = {
            "within": distance <= 1,
            "at_most": generated <= reference + self.tolerance,
            "at_least": generated >= reference - self.tolerance,
            "below": generated <= self.tolerance,
        }[self.rule]
        return bool(passed), distance


# Near enough the data's to sound like it (rollgen#27): what the generate stage checks and chooses its temperature by.
GATES = (
    Gate("notes_per_step", "within", 0.15),
    Gate("mean_polyphony", "within", 0.15),
    Gate("silent_fraction", "at_most", 0.03),
    Gate("empty_beat_rate", "at_most", 0.03),
    Gate("scale_consistency", "at_least", 0.03),
    Gate("long_note_share", "below", 0.02),  # notes held past the reference's 99th-percentile note length
)
LONG_NOTE_PERCENTILE = 99


def check_gates(generated: dict, reference: dict, reference_name: str) -> dict:
    """Every gate of GATES on two `quality_report` blocks: per statistic both values, the rule and whether it
    passed; then how many passed, and the mean distance of the statistics from the reference's in units of
    their tolerance (over those both sides have), which tells apart settings that pass as many gates."""
    gates, distances = {}, []
    for gate in GATES:
        passed, distance = gate.check(generated.get(gate.statistic), reference.get(gate.statistic))
        gates[gate.statistic] = {
            "generated": generated.get(gate.statistic),
            reference_name: reference.get(gate.statistic),
            "rule": gate.describe(reference_name),
            "pass": passed,
        }
        if distance is not None and math.isfinite(distance):
            distances.append(distance)
    return {
        "gates": gates,
        "gates_passed": sum(gate["pass"] for gate in gates.values()),
        "gates_distance": float(np.mean(distances)) if distances else None,
    }


def data_gates(pieces: dict, val: dict) -> dict:
    """The gates checked on a split of the data itself against the validation pieces: a gate the training
    pieces fail measures how far the splits differ (a folder of a few pieces), not the model."""
    verdict = check_gates(pieces, val, "val")
    failed = [statistic for statistic, gate in verdict["gates"].items() if not gate["pass"]]
    return {"gates_passed": verdict["gates_passed"], "failed": failed}


def describe_set(
    rolls: Sequence[np.ndarray], steps_per_quarter: int, long_note_limit: float, features: list[dict] | None = None
) -> dict:
    """One set of rolls in numbers: `roll_stats` over all their frames, `pieces`, the per-piece means of
    `piece_features` (`features`, where they are at hand) and the share of notes held past `long_note_limit`
    steps."""
    if features is None:
        features = [piece_features(roll, steps_per_quarter) for roll in rolls]
    return {
        **roll_stats(rolls),
        "pieces": len(rolls),
        **summarise(features),
        "long_note_share": long_note_share(rolls, long_note_limit),
    }


def quality_report(
    generated: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    steps_per_quarter: int,
    reference_name: str = "test",
) -> dict[str, dict]:
    """Generated and reference rolls side by side (the reference under `reference_name`, see `describe_set`;
    a note is long past the reference's 99th-percentile note length, `long_note_limit`), then `overlap`, per
    feature of OVERLAP_FEATURES, the overlap area of the generated pieces' values with the reference pieces'
    (see `overlap_area`), and the GATES checked (`check_gates`)."""
    limit = long_note_limit(reference)
    ours = [piece_features(roll, steps_per_quarter) for roll in generated]
    theirs = [piece_features(roll, steps_per_quarter) for roll in reference]
    report: dict = {
        "generated": describe_set(generated, steps_per_quarter, limit, ours),
        reference_name: describe_set(reference, steps_per_quarter, limit, theirs),
        "overlap": {
            feature: overlap_area([piece[feature] for piece in ours], [piece[feature] for piece in theirs])
            for feature in OVERLAP_FEATURES
        },
        "long_note_limit": limit,
    }
    report.update(check_gates(report["generated"], report[reference_name], reference_name))
    errors = standard_errors(ours)
    for statistic, gate in report["gates"].items():  # how far chance alone moves the generated side
        gate["standard_error"] = errors.get(statistic)
    return report


def standard_errors(features: list[dict[str, float]]) -> dict[str, float | None]:
    """Per feature of `piece_features`, the standard error of its mean over the pieces that have it (None for
    fewer than two): a gate read on 32 pieces is at the mercy of the draw within about two of these."""
    errors: dict[str, float | None] = {}
    for name in features[0] if features else ():
        values = present(features, name)
        errors[name] = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None
    return errors
