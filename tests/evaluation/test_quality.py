"""Quality metrics on hand-made rolls with known answers, and the Yang & Lerch overlap area."""

import math

import numpy as np
import pytest

from rollgen.evaluation.quality import (
    GATES,
    Gate,
    best_scale,
    check_gates,
    long_note_share,
    overlap_area,
    piece_features,
    pitch_class_histogram,
    quality_report,
    relative_minor,
)
from rollgen.evaluation.stats import roll_stats
from rollgen.music.roll import HELD, LOWEST_PITCH, ONSET, sounding


def roll_of(notes: list[tuple[int, int, int]], steps: int) -> np.ndarray:
    """A bool roll (106, steps) from (MIDI pitch, first step, length in steps) triples."""
    roll = np.zeros((106, steps), dtype=bool)
    for pitch, start, length in notes:
        roll[pitch - LOWEST_PITCH, start : start + length] = True
    return roll


# C4 for a beat, E4 for a beat, G4 for two beats: 16 steps = 4 beats of 4 steps.
ARPEGGIO = roll_of([(60, 0, 4), (64, 4, 4), (67, 8, 8)], steps=16)


def test_features_of_a_c_major_arpeggio():
    features = piece_features(ARPEGGIO, steps_per_quarter=4)
    assert features["silent_fraction"] == 0
    assert features["notes_per_step"] == 3 / 16
    assert features["mean_polyphony"] == 1
    assert features["pitch_range"] == 7  # C4 to G4
    assert features["pitch_class_entropy"] == pytest.approx(math.log2(3))  # three pitch classes, one note each
    assert features["scale_consistency"] == 1
    assert features["empty_beat_rate"] == 1 / 4  # no note starts in the last beat (G4 is held through it)
    assert features["mean_note_length"] == pytest.approx(16 / 3)


def test_a_chromatic_scale_fits_no_key():
    roll = roll_of([(60 + i, 2 * i, 2) for i in range(12)], steps=24)
    features = piece_features(roll, steps_per_quarter=4)
    assert features["pitch_class_entropy"] == pytest.approx(math.log2(12))  # the most there can be
    assert features["scale_consistency"] == pytest.approx(7 / 12)  # any scale holds 7 of the 12
    assert features["pitch_range"] == 11
    assert features["empty_beat_rate"] == 0


def test_chords_silence_and_a_partial_last_beat():
    # A C major chord for 3 steps, 2 silent steps, then a repeated D: two notes of 1 step each around a rest.
    roll = roll_of([(48, 0, 3), (52, 0, 3), (55, 0, 3), (62, 5, 1), (62, 7, 1)], steps=9)
    features = piece_features(roll, steps_per_quarter=4)
    assert features["silent_fraction"] == 4 / 9  # steps 3, 4, 6, 8
    assert features["mean_polyphony"] == (3 * 3 + 1 + 1) / 5
    assert features["pitch_range"] == 14  # C3 to D4
    # Two whole beats (steps 0-3, 4-7); step 8 is an incomplete beat and is left out. Both have onsets.
    assert features["empty_beat_rate"] == 0
    assert features["mean_note_length"] == (3 + 3 + 3 + 1 + 1) / 5


def test_a_silent_piece_has_no_note_features():
    features = piece_features(np.zeros((106, 8), dtype=bool), steps_per_quarter=4)
    assert features["silent_fraction"] == 1 and features["notes_per_step"] == 0
    for name in ("mean_polyphony", "pitch_range", "pitch_class_entropy", "scale_consistency", "mean_note_length"):
        assert math.isnan(features[name])
    assert features["empty_beat_rate"] == 1


def test_the_best_scale_is_named():
    g_major = roll_of([(pitch, i, 1) for i, pitch in enumerate((67, 69, 71, 72, 74, 76, 78, 79))], steps=8)
    assert best_scale(pitch_class_histogram(g_major)) == ("G major", 1.0)
    # A natural minor holds the pitch classes of C major; the major is named first.
    a_minor = roll_of([(pitch, i, 1) for i, pitch in enumerate((57, 59, 60, 62, 64, 65, 67))], steps=7)
    assert best_scale(pitch_class_histogram(a_minor)) == ("C major", 1.0)
    c_minor = roll_of([(pitch, i, 1) for i, pitch in enumerate((60, 62, 63, 65, 67, 68, 70))], steps=7)
    assert best_scale(pitch_class_histogram(c_minor)) == ("Eb major", 1.0)


def test_overlap_of_the_same_distribution_is_near_one_and_of_distant_ones_near_zero():
    rng = np.random.default_rng(0)
    reference = rng.normal(4.0, 0.5, 40)
    assert overlap_area(reference, reference) > 0.9
    assert overlap_area(rng.normal(4.0, 0.5, 40), reference) > 0.8  # another sample of it
    assert overlap_area(reference + 20, reference) < 0.02  # far away: inter-set distances ~20, intra ~0.5
    assert overlap_area(rng.normal(4.0, 3.0, 40), reference) < overlap_area(reference, reference)


def test_overlap_survives_degenerate_sets():
    assert overlap_area([3.0] * 5, [3.0] * 6) == pytest.approx(1.0, abs=1e-3)  # all distances 0 on both sides
    assert overlap_area([5.0] * 5, [3.0] * 6) < 0.01  # intra all 0, inter all 2
    assert 0 <= overlap_area([1.0, 2.0, 9.0], [3.0, 3.0, 3.0]) < 0.1  # constant reference, spread generated
    assert overlap_area([1.0, 2.0], [3.0]) is None  # no intra-set distance with one reference piece
    assert overlap_area([], [1.0, 2.0]) is None
    assert overlap_area([1.0, float("nan")], [1.0, 2.0, float("nan")]) is not None  # NaNs are left out


def test_quality_report_has_both_sets_side_by_side_and_the_overlaps():
    test = [ARPEGGIO, roll_of([(62, 0, 8), (65, 0, 8)], 16), roll_of([(60, 0, 16), (64, 4, 12)], 16)]
    report = quality_report([ARPEGGIO, ARPEGGIO], test, steps_per_quarter=4)
    keys = {
        "silent_fraction", "notes_per_step", "mean_polyphony", "pitch_range", "pitch_class_entropy",
        "scale_consistency", "empty_beat_rate", "mean_note_length", "frames", "pieces", "long_note_share",
    }  # fmt: skip
    assert set(report["generated"]) == keys and set(report["test"]) == keys
    assert report["generated"]["pitch_range"] == 7 and report["generated"]["pieces"] == 2
    assert report["test"]["pitch_range"] == pytest.approx((7 + 3 + 4) / 3)
    assert set(report["overlap"]) >= {"notes_per_step", "mean_polyphony", "pitch_range", "mean_note_length"}
    assert all(value is None or 0 <= value <= 1 for value in report["overlap"].values())


def test_each_gate_carries_the_standard_error_of_the_generated_pieces_mean():
    one_key = roll_of([(60, 0, 4), (64, 4, 4), (67, 8, 4)], 16)  # C, E, G: 1.0 in C major
    two_keys = roll_of([(60, 0, 4), (61, 4, 4), (62, 8, 4), (63, 12, 4)], 16)  # C, C#, D, D#: 3 of 4 at best
    reference = [one_key, two_keys, one_key]
    report = quality_report([one_key, two_keys], reference, 4, "val")
    scale = report["gates"]["scale_consistency"]
    assert scale["generated"] == pytest.approx(0.875)
    assert scale["standard_error"] == pytest.approx(np.std([1.0, 0.75], ddof=1) / np.sqrt(2))
    assert report["gates"]["long_note_share"]["standard_error"] is None  # pooled over notes, not pieces
    alone = quality_report([one_key], reference, 4, "val")["gates"]["scale_consistency"]
    assert alone["standard_error"] is None  # one piece: no spread to measure


def test_relative_minor():
    assert relative_minor("C major") == "A minor" and relative_minor("Bb major") == "G minor"


def test_a_long_note_is_one_held_past_the_reference_s_99th_percentile():
    reference = [roll_of([(60 + (n % 5), n * 4, 4) for n in range(99)] + [(50, 0, 8)], 400)]  # 99 notes of 4, one of 8
    report = quality_report([roll_of([(60, 0, 4), (62, 4, 5), (64, 9, 40)], 64)], reference, 4, "val")
    assert report["long_note_limit"] == pytest.approx(4 + 0.01 * 4)  # numpy's interpolated 99th percentile
    assert report["generated"]["long_note_share"] == pytest.approx(2 / 3)  # 5 and 40 steps are past it
    assert report["val"]["long_note_share"] == pytest.approx(1 / 100)
    assert long_note_share([np.zeros((106, 4), dtype=bool)], 4) is None


def test_each_gate_passes_at_its_edge_and_fails_past_it():
    rules = (("within", 0.15), ("at_most", 0.03), ("at_least", 0.03), ("below", 0.02))
    within, at_most, at_least, below = (Gate("x", rule, tolerance) for rule, tolerance in rules)
    assert within.check(1.15, 1.0) == (True, pytest.approx(1.0)) and not within.check(0.84, 1.0)[0]
    assert at_most.check(0.05, 0.02)[0] and not at_most.check(0.051, 0.02)[0] and at_most.check(0.0, 0.02)[0]
    assert at_least.check(0.90, 0.93)[0] and not at_least.check(0.899, 0.93)[0] and at_least.check(1.0, 0.93)[0]
    assert below.check(0.02, 0.01)[0] and not below.check(0.021, 0.0)[0]
    assert within.check(None, 1.0) == (False, None) and within.check(float("nan"), 1.0) == (False, None)


def test_the_gates_of_a_report_name_both_sides_the_rule_and_the_verdict():
    generated = {"notes_per_step": 0.9, "mean_polyphony": 4.0, "silent_fraction": 0.10, "empty_beat_rate": 0.05,
                 "scale_consistency": 0.95, "long_note_share": 0.0}  # fmt: skip
    reference = {"notes_per_step": 1.0, "mean_polyphony": 4.0, "silent_fraction": 0.02, "empty_beat_rate": 0.04,
                 "scale_consistency": 0.93, "long_note_share": 0.01}  # fmt: skip
    verdict = check_gates(generated, reference, "val")
    assert list(verdict["gates"]) == [gate.statistic for gate in GATES]
    assert verdict["gates"]["silent_fraction"] == {
        "generated": 0.10, "val": 0.02, "rule": "at most val's + 0.03", "pass": False,
    }  # fmt: skip
    assert verdict["gates"]["notes_per_step"]["rule"] == "within 15% of val's"
    assert verdict["gates_passed"] == 5
    distances = [0.1 / 0.15, 0, 0.08 / 0.03, 0.01 / 0.03, 0.02 / 0.03, 0.01 / 0.02]
    assert verdict["gates_distance"] == pytest.approx(np.mean(distances))


def test_a_re_struck_note_counts_as_notes_of_its_own():
    """Levels split a held pitch where it is struck again: repeated eighths are eighths (notes_per_step, the
    note lengths, long notes), where the same roll without onsets reads as one note held for the whole bar."""
    repeated = np.zeros((106, 16), np.uint8)
    repeated[60 - LOWEST_PITCH] = np.tile([ONSET, HELD], 8)
    features = piece_features(repeated, steps_per_quarter=4)
    assert features["notes_per_step"] == 0.5 and features["mean_note_length"] == 2
    assert features["empty_beat_rate"] == 0 and features["mean_polyphony"] == 1
    held = piece_features(sounding(repeated), steps_per_quarter=4)
    assert held["notes_per_step"] == 1 / 16 and held["mean_note_length"] == 16
    assert (
        roll_stats([repeated])["notes_per_step"] == 0.5 and roll_stats([sounding(repeated)])["notes_per_step"] == 1 / 16
    )
    assert long_note_share([repeated], limit=4) == 0 and long_note_share([sounding(repeated)], limit=4) == 1
