"""Samplers: the article's vanish_proof loop reproduced exactly, and the better defaults."""

import numpy as np
import pytest

from rollgen.sampling import make_sampler


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
    sampler = make_sampler("vanish_proof")
    ours = [sampler(p, step, rng)[0] for step, p in enumerate(predictions)]
    expected = articles_loop(predictions)
    assert all((a == b).all() for a, b in zip(ours, expected))
    # It is a falling threshold: 1 - 0.65 * 1.001**step; by step 431 the offset reaches 1 and all sound.
    assert ours[0].sum() == (predictions[0] + np.float32(0.65) >= 1).sum()
    assert (ours[599] >= 1).all()  # and pitches with p + offset >= 2 even come out as 2, fed back as such


def test_the_plain_cast_is_why_the_article_heard_silence():
    probabilities = np.full((1, 106), 0.999, dtype=np.float32)
    assert probabilities.astype(np.uint8).sum() == 0


def test_threshold_and_seeded_bernoulli():
    probabilities = np.array([[0.1, 0.5, 0.51, 0.99]])
    rng = np.random.default_rng(0)
    assert make_sampler("threshold", threshold=0.5)(probabilities, 0, rng).tolist() == [[0, 0, 1, 1]]
    draws = [make_sampler("bernoulli")(np.full((1, 10_000), 0.3), 0, np.random.default_rng(5)) for _ in range(2)]
    assert (draws[0] == draws[1]).all()
    assert draws[0].mean() == pytest.approx(0.3, abs=0.02)
    cold = make_sampler("bernoulli", temperature=0.25)(np.full((1, 10_000), 0.3), 0, np.random.default_rng(5))
    assert cold.mean() < 0.1  # a low temperature pushes probabilities toward 0 or 1


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="generate.sampling"):
        make_sampler("beam")
