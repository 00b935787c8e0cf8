"""Samplers: the article's vanish_proof loop reproduced exactly, and the better defaults."""

import numpy as np
import pytest

from rollgen.models.sampling import limit_notes
from tests.defaults import sampler_with

ARTICLE = {"vanish_proof": 0.65, "vanish_inc": 1.001}  # the article's offset and its growth per step


def articles_loop(predictions: list[np.ndarray]) -> list[np.ndarray]:
    """The article's generation loop body, verbatim apart from the model call."""
    song = []
    vanish_proof = 0.65
    vanish_inc = 1.001
    for pred in predictions:
        pred = pred + vanish_proof
        vanish_proof *= vanish_inc
        notes = (pred.astype(np.uint8)).reshape(106)
        song.append(notes)
    return song


def test_vanish_proof_matches_the_article_step_for_step():
    rng = np.random.default_rng(3)
    predictions = [rng.random((1, 106)).astype(np.float32) for _ in range(600)]
    sampler = sampler_with("vanish_proof", **ARTICLE)
    ours = [sampler(p, step, rng)[0] for step, p in enumerate(predictions)]
    expected = articles_loop(predictions)
    assert all((a == b).all() for a, b in zip(ours, expected))
    # It is a falling threshold: 1 - 0.65 * 1.001**step; by step 431 the offset reaches 1 and all sound.
    assert ours[0].sum() == (predictions[0] + np.float32(0.65) >= 1).sum()
    assert (ours[599] >= 1).all()  # and pitches with p + offset >= 2 even come out as 2, fed back as such


def test_vanish_proof_is_a_falling_threshold_and_its_nade_levels_are_the_same_one():
    """With no offset the cast silences every p < 1 (the article's first loop); with one, a pitch sounds at
    p >= 1 - offset; a NADE model gets that threshold as its levels, step for step."""
    silent = sampler_with("vanish_proof", vanish_proof=0.0)
    assert silent(np.full((1, 106), 0.999, np.float32), 0, None).sum() == 0
    probabilities = np.array([[0.30, 0.34, 0.36, 0.90]], np.float32)
    assert sampler_with("vanish_proof", **ARTICLE)(probabilities, 0, None).tolist() == [[0, 0, 1, 1]]  # 1 - 0.65 = 0.35
    grid = np.random.default_rng(0).random((1, 1000)).astype(np.float32)
    levels = sampler_with("vanish_proof", **ARTICLE)
    for step in (0, 100, 300, 431, 600):
        sampler = sampler_with("vanish_proof", **ARTICLE)
        for earlier in range(step):  # one instance, one call per step: the offset grows with each
            sampler(grid, earlier, None)
        drawn = sampler(grid, step, None).astype(bool)
        expected = grid > levels.levels(grid.shape, step, None)
        assert (drawn != expected).sum() <= 1, step  # the same but for a p exactly at the threshold


def test_threshold_and_seeded_bernoulli():
    probabilities = np.array([[0.1, 0.5, 0.51, 0.99]])
    rng = np.random.default_rng(0)
    assert sampler_with("threshold", threshold=0.5)(probabilities, 0, rng).tolist() == [[0, 0, 1, 1]]
    draws = [sampler_with("bernoulli")(np.full((1, 10_000), 0.3), 0, np.random.default_rng(5)) for _ in range(2)]
    assert (draws[0] == draws[1]).all()
    assert draws[0].mean() == pytest.approx(0.3, abs=0.02)
    cold = sampler_with("bernoulli", temperature=0.25)(np.full((1, 10_000), 0.3), 0, np.random.default_rng(5))
    assert cold.mean() < 0.1  # a low temperature pushes probabilities toward 0 or 1


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="generate.sampling"):
        sampler_with("beam")


def test_max_notes_keeps_the_most_probable_of_the_sounding_pitches():
    probabilities = np.array(
        [
            [0.9, 0.8, 0.7, 0.6, 0.1],  # four above 0.5: the two most probable stay
            [0.1, 0.6, 0.1, 0.95, 0.1],  # two: nothing to drop
            [0.1, 0.1, 0.1, 0.1, 0.1],  # none
        ]
    )
    frame = limit_notes(probabilities > 0.5, probabilities, max_notes=2, min_notes=0)
    assert frame.tolist() == [[1, 1, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]]


def test_max_notes_never_adds_a_pitch_that_was_not_sampled():
    probabilities = np.array([[0.9, 0.8, 0.7]])
    sampled = np.array([[0, 1, 1]])  # the most probable pitch happened not to sound
    assert limit_notes(sampled, probabilities, max_notes=1, min_notes=0).tolist() == [[0, 1, 0]]


def test_min_notes_adds_the_most_probable_silent_pitches():
    probabilities = np.array([[0.3, 0.05, 0.4, 0.2, 0.1], [0.9, 0.8, 0.7, 0.6, 0.5]])
    sampled = np.array([[0, 1, 0, 0, 0], [1, 1, 1, 0, 0]])
    frame = limit_notes(sampled, probabilities, max_notes=0, min_notes=3)
    # Row 0: the improbable sounding pitch stays and the two most probable silent ones join; row 1 has enough.
    assert frame.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 0, 0]]


def test_caps_through_the_samplers_bound_every_frame():
    rng = np.random.default_rng(0)
    probabilities = rng.random((64, 106)) ** 3
    for sampler in (
        sampler_with("bernoulli", temperature=1.0, min_notes=3, max_notes=5),
        sampler_with("threshold", threshold=0.3, min_notes=3, max_notes=5),
    ):
        counts = sampler(probabilities, 0, np.random.default_rng(1)).sum(axis=1)
        assert counts.min() >= 3 and counts.max() <= 5
    uncapped = sampler_with("threshold", threshold=0.3)(probabilities, 0, rng).sum(axis=1)
    assert uncapped.max() > 5  # the caps did something


def test_caps_off_change_nothing_and_bad_caps_are_clear_errors():
    probabilities = np.random.default_rng(2).random((8, 106))
    sampled = (probabilities > 0.5).astype(np.uint8)
    assert (limit_notes(sampled, probabilities, max_notes=0, min_notes=0) == sampled).all()
    with pytest.raises(ValueError, match="min_notes"):
        sampler_with("threshold", min_notes=5, max_notes=3)
    with pytest.raises(ValueError, match="0 \\(off\\) or positive"):
        sampler_with("bernoulli", max_notes=-1)


def test_vanish_proof_ignores_the_caps_and_stays_the_articles_loop():
    rng = np.random.default_rng(4)
    predictions = [rng.random((1, 106)).astype(np.float32) for _ in range(50)]
    capped = sampler_with("vanish_proof", **ARTICLE, min_notes=4, max_notes=5)
    ours = [capped(p, step, rng)[0] for step, p in enumerate(predictions)]
    assert all((a == b).all() for a, b in zip(ours, articles_loop(predictions)))
