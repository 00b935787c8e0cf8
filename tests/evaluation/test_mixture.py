"""The test-time transposition ensemble (evaluation.mixture): an exact distribution over every frame, scored as one
model is."""

import keras
import numpy as np
import pytest

from rollgen.data.archive import sounding
from rollgen.evaluation.mixture import TranspositionMixture, mixture_conditionals, playable_pitches, shift_frames
from rollgen.evaluation.scores import frame_scores
from rollgen.models import builders as models
from rollgen.models import frame_model
from rollgen.params import LstmParams
from tests.archives import sequences
from tests.tiny import CONTEXT, PITCHES, every_frame, joint, tiny, tiny_data


def every_next_frame(seed: int = 0):
    """64 copies of one piece whose last frames run through all 2**6 frames: the same past, every future."""
    piece = tiny_data([9], seed=seed).sequence(0)
    pieces = [np.concatenate([piece[:-1], (frame[None] * 255).astype(np.uint8)]) for frame in every_frame()]
    return sequences(pieces, context=CONTEXT)


@pytest.mark.parametrize("name", ["transformernade", "nade", "lstm"])
def test_the_mixtures_next_frame_probabilities_sum_to_one(name):
    """Over all 64 frames that may follow one past, the mixture's frame probabilities (the product of its
    per-pitch conditionals) sum to 1, though its shifted experts cannot play every pitch."""
    keras_model = tiny(name, seed=3) if name != "lstm" else _tiny_lstm()
    data = every_next_frame()
    last = data.offsets[1:] - 1
    for reach in (1, 2):
        probabilities = TranspositionMixture(frame_model.wrap(keras_model), reach).predict(data).probabilities
        assert joint(probabilities[last], every_frame()).sum() == pytest.approx(1.0, abs=1e-5)


def _tiny_lstm():
    """A factorised window model: its conditionals ignore the notes below."""
    keras.utils.set_random_seed(3)
    return models.build_lstm(LstmParams(units=4), CONTEXT, PITCHES)


def test_the_mixtures_frame_probability_is_the_mean_of_its_experts():
    """A frame's probability under the mixture is the mean, over shifts, of the network's probability of the
    moved frame after the moved past (0 where the shift pushes a true note off the roll)."""
    model = frame_model.wrap(tiny("rnnnade", seed=4))
    data = tiny_data(seed=5)
    truth = sounding(data.frames)
    reach = 2
    by_hand = []
    for shift in range(-reach, reach + 1):
        moved = sequences([shift_frames(data.sequence(n), shift) for n in range(len(data))])
        conditionals = shift_frames(model.predict(moved).probabilities, -shift).astype(np.float64)
        playable = playable_pitches(PITCHES, shift)
        factors = np.where(truth, conditionals, 1 - conditionals)
        probability = np.prod(np.where(playable, factors, 1.0), axis=1)
        by_hand.append(np.where((truth & ~playable).any(axis=1), 0.0, probability))
    mixture = TranspositionMixture(model, reach).predict(data)
    np.testing.assert_allclose(joint(mixture.probabilities, truth), np.mean(by_hand, axis=0), rtol=1e-4)
    nll = frame_scores(mixture.probabilities, truth)["nll"]
    assert nll == pytest.approx(-np.log(np.mean(by_hand, axis=0)).mean(), rel=1e-4)


def test_reach_zero_is_the_network_itself():
    model = frame_model.wrap(tiny("transformernade", seed=6))
    data = tiny_data(seed=7)
    alone, mixed = model.predict(data, samples=8, seed=1), TranspositionMixture(model, 0).predict(data, 8, 1)
    np.testing.assert_allclose(mixed.probabilities, alone.probabilities, atol=1e-6)
    assert mixed.predicted.shape == alone.predicted.shape


def test_an_expert_that_cannot_play_a_true_note_drops_out_of_the_weights():
    """Two experts; the second cannot play pitch 0, which sounds: from pitch 1 on only the first counts."""
    q = np.array([[[0.9, 0.2, 0.7]], [[0.0, 0.6, 0.1]]])
    truth = np.array([[True, False, True]])
    playable = np.array([[True, True, True], [False, True, True]])
    conditionals = mixture_conditionals(q, truth, playable)
    np.testing.assert_allclose(conditionals, [[0.45, 0.2, 0.7]], atol=1e-6)


def test_draws_are_shared_out_among_the_experts():
    """samples N: the experts draw N frames between them, and the guess is the mean of their marginals."""
    model = frame_model.wrap(tiny("transformernade", seed=8))
    data = tiny_data(seed=9)
    prediction = TranspositionMixture(model, 1).predict(data, samples=9, seed=2)
    counts = prediction.marginals * 9  # three experts, three draws each, equal weights: a count out of 9
    np.testing.assert_allclose(counts, counts.round(), atol=1e-4)
    assert prediction.marginals.max() <= 1 and prediction.marginals.min() >= 0
