"""Frame NLL and accuracy, and the two baselines every model must beat."""

import math

import numpy as np
import pytest

from rollgen.evaluate import EPSILON, fit_persistence, frame_scores, persistence_probabilities


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


def test_persistence_learns_how_often_a_pitch_stays_on():
    previous = np.array([[1, 0], [1, 0], [1, 1], [0, 1]], dtype=bool)
    following = np.array([[1, 0], [1, 1], [0, 1], [0, 1]], dtype=bool)
    table = fit_persistence(previous, following)
    # pitch 0: on->on 2 of 3, off->on 0 of 1; add-one smoothing
    assert table[1, 0] == pytest.approx((2 + 1) / (3 + 2))
    assert table[0, 0] == pytest.approx((0 + 1) / (1 + 2))
    assert table[1, 1] == pytest.approx((2 + 1) / (2 + 2))
    probabilities = persistence_probabilities(table, np.array([[True, False]]))
    assert probabilities.tolist() == [[table[1, 0], table[0, 1]]]


def test_the_stage_scores_model_and_baselines_on_the_chosen_pitches(tmp_path):
    import keras

    from rollgen import evaluate
    from rollgen.models import build_model
    from tests.test_train import write_windows

    write_windows(tmp_path)
    keras.utils.set_random_seed(0)
    build_model("lstm").save(tmp_path / "model.keras")
    full = evaluate.run(tmp_path / "model.keras", tmp_path, tmp_path / "eval.json")
    piano = evaluate.run(tmp_path / "model.keras", tmp_path, tmp_path / "eval88.json", highest_pitch=108)
    assert full["pitches"] == "21..126" and piano["pitches"] == "21..108"
    assert piano["model"]["nll"] < full["model"]["nll"]  # 18 fewer pitches, each with a positive NLL
    assert piano["repeat_last"]["f1"] == full["repeat_last"]["f1"]  # the test notes all lie below 109


def test_a_nade_model_is_scored_on_its_exact_nll_and_its_own_decoded_frames(tmp_path):
    import keras

    from rollgen import evaluate
    from rollgen.models import build_model, nade_parts
    from rollgen.windows import load_split
    from tests.test_train import write_windows

    write_windows(tmp_path)
    keras.utils.set_random_seed(0)
    model = build_model("nade")
    test = load_split("test", tmp_path)
    probabilities, decoded = evaluate.predict(model, test["x"], test["y"], batch_size=50)
    truth = (test["y"] > 127).astype(np.float32)
    windows = test["x"].astype(np.float32) / 255
    np.testing.assert_allclose(probabilities, np.asarray(model([windows, truth])), atol=1e-6)  # teacher-forced
    encoder, head = nade_parts(model)
    greedy, _ = head.sample(encoder(windows), np.full(truth.shape, 0.5, np.float32))
    np.testing.assert_array_equal(decoded, np.asarray(greedy))  # predictions never peek at the true notes
    model.save(tmp_path / "model.keras")
    scores = evaluate.run(tmp_path / "model.keras", tmp_path, tmp_path / "eval.json")["model"]
    assert scores == pytest.approx(frame_scores(probabilities, truth > 0, decoded), rel=1e-6)


def test_sampled_decoding_predicts_the_pitches_whose_marginal_probability_exceeds_a_half():
    import keras

    from rollgen.evaluate import decode_nade
    from rollgen.models import build_nade, nade_parts
    from tests.test_models import every_frame

    keras.utils.set_random_seed(5)
    model = build_nade(context=3, num_pitches=6, units=8, hidden=5)
    encoder, head = nade_parts(model)
    windows = np.random.default_rng(1).random((8, 3, 6)).astype(np.float32) * 4  # varied, confident models
    frames = every_frame(6)
    marginals = np.zeros((8, 6))
    for row, window in enumerate(windows):
        conditionals = np.asarray(model([np.repeat(window[None], len(frames), axis=0), frames]))
        joint = np.prod(np.where(frames > 0, conditionals, 1 - conditionals), axis=1)
        marginals[row] = joint @ frames  # exact P(pitch sounds), summed over all 2**6 frames
    decoded = decode_nade(encoder, head, windows, 3000, np.random.default_rng(0))
    clear = np.abs(marginals - 0.5) > 0.05  # 3000 draws put an estimate within ~0.03 of its marginal
    assert clear.sum() > 20 and 0 < (marginals[clear] > 0.5).sum() < clear.sum()  # some on, some off
    np.testing.assert_array_equal(decoded[clear], marginals[clear] > 0.5)
    again = decode_nade(encoder, head, windows, 3000, np.random.default_rng(0))
    np.testing.assert_array_equal(decoded, again)  # seeded
