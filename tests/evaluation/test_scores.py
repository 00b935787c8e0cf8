"""The numbers every score is made of: a frame's Bernoulli NLL in nats, and F1-style accuracy."""

import math

import numpy as np
import pytest

from rollgen.evaluation.scores import EPSILON, bernoulli_nll, frame_scores, onset_nll, onset_targets
from rollgen.music.roll import HELD, ONSET
from tests.archives import sequences


def test_scores_match_a_hand_computed_example():
    probabilities = np.array([[0.9, 0.2, 0.6], [0.4, 0.7, 0.1]])
    targets = np.array([[1, 0, 0], [1, 1, 0]], dtype=bool)
    scores = frame_scores(probabilities, targets)
    frame_1 = -(math.log(0.9) + math.log(0.8) + math.log(0.4))
    frame_2 = -(math.log(0.4) + math.log(0.7) + math.log(0.9))
    assert scores["nll"] == pytest.approx((frame_1 + frame_2) / 2)
    # predicted on: (0,0) TP, (0,2) FP, (1,1) TP; missed: (1,0) FN
    assert scores["acc"] == pytest.approx(2 / 4)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)


def test_hard_guesses_have_a_finite_nll():
    scores = frame_scores(np.array([[1.0, 0.0]]), np.array([[False, True]]))
    assert scores["nll"] == pytest.approx(-2 * math.log(EPSILON), rel=1e-6)
    assert scores["acc"] == 0.0


def test_the_nll_of_a_cell_is_minus_the_log_of_the_probability_given_to_its_target():
    probabilities = np.array([[0.9, 0.2], [0.5, 1.0]])
    targets = np.array([[True, True], [False, False]])
    expected = -np.log([[0.9, 0.2], [0.5, EPSILON]])  # 1 - 1.0 is clipped to EPSILON
    np.testing.assert_allclose(bernoulli_nll(probabilities, targets), expected, rtol=1e-6)
    assert frame_scores(probabilities, targets)["nll"] == pytest.approx(expected.sum(axis=1).mean())


def test_an_empty_split_has_no_nll_and_no_hits():
    scores = frame_scores(np.zeros((0, 3)), np.zeros((0, 3), dtype=bool))
    assert math.isnan(scores["nll"]) and scores["f1"] == 0.0


def test_the_onset_nll_counts_the_held_on_pitches_alone_averaged_over_every_frame():
    """Three frames of one piece over 3 pitches (levels): pitch 0 struck, held, struck again; pitch 1 struck
    after silence (certain); pitch 2 silent. Only pitch 0's last two frames are a question."""
    data = sequences([np.array([[ONSET, 0, 0], [HELD, 0, 0], [ONSET, ONSET, 0]], np.uint8)], context=1)
    struck, uncertain = onset_targets(data)
    assert uncertain.tolist() == [[False] * 3, [True, False, False], [True, False, False]]
    assert struck.tolist() == [[True, False, False], [False, False, False], [True, True, False]]
    probabilities = np.full((3, 3), 0.5)  # wrong where the onset is certain: it would cost ln 2 a cell
    probabilities[1, 0], probabilities[2, 0] = 0.2, 0.6
    expected = (-math.log(0.8) - math.log(0.6)) / 3
    assert onset_nll(probabilities, struck, uncertain) == pytest.approx(expected)
    assert math.isnan(onset_nll(np.zeros((0, 3)), np.zeros((0, 3), bool), np.zeros((0, 3), bool)))
