"""Frame NLL and accuracy over every frame of every test piece, and the two baselines every model must beat."""

from dataclasses import replace

import keras
import numpy as np
import pytest

from rollgen.data.archive import sounding
from rollgen.evaluation import evaluate
from rollgen.evaluation.evaluate import fit_persistence, persistence_probabilities
from rollgen.evaluation.mixture import TranspositionMixture
from rollgen.evaluation.scores import frame_scores, onset_nll, onset_targets
from rollgen.models import frame_model
from rollgen.models.nade import Decoder
from rollgen.music.roll import onsets, strike_runs
from rollgen.params import EvaluateParams, TrainParams
from tests.archives import write_archive, write_windows
from tests.tiny import PITCHES, every_frame, joint, prefix_by_hand, tiny, tiny_data


def alone(**values) -> EvaluateParams:
    """Evaluate params scoring the network alone (no ensemble), decoded greedily unless `values` say."""
    return EvaluateParams(**{"samples": 0, "transpositions": 0, **values})


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
    written = write_windows(tmp_path)
    keras.utils.set_random_seed(0)
    frame_model.build(TrainParams(model="lstm"), context=9).keras.save(tmp_path / "model.keras")
    full = evaluate.run(alone(), tmp_path / "model.keras", tmp_path, tmp_path / "eval.json")
    piano = evaluate.run(alone(highest_pitch=108), tmp_path / "model.keras", tmp_path, tmp_path / "eval88.json")
    assert full["pitches"] == "21..126" and piano["pitches"] == "21..108"
    assert piano["model"]["nll"] < full["model"]["nll"]  # 18 fewer pitches, each with a positive NLL
    assert piano["repeat_last"]["f1"] == full["repeat_last"]["f1"]  # the test notes all lie below 109
    assert full["test_frames"] == len(written["test"].frames) and full["test_pieces"] == len(written["test"])


def test_every_test_frame_is_scored_the_first_ones_from_the_initial_state(tmp_path):
    """eval.json's numbers recomputed by hand on a tiny sequence model: its NLL of what sounds from a Keras call
    on each piece up to each frame, and its onset NLL over the cells that sounded in the frame before too;
    repeat_last from the frame before (silence before a piece), persistence from the training pieces' counts."""
    keras_model = tiny("rnnnade", seed=3)
    keras_model.save(tmp_path / "model.keras")
    train, test = tiny_data([30, 17], seed=1), tiny_data([9, 1, 20], seed=2)
    write_archive(tmp_path / "train.npz", train, onsets=True)
    write_archive(tmp_path / "test.npz", test, onsets=True)
    (tmp_path / "val.npz").write_bytes(b"not read: evaluate scores the test split")
    results = evaluate.run(alone(), tmp_path / "model.keras", tmp_path, tmp_path / "eval.json")

    truth = sounding(test.frames)
    assert results["test_frames"] == 9 + 1 + 20 and results["test_pieces"] == 3
    conditionals, struck = prefix_by_hand(keras_model, test)
    nll = -np.where(truth, np.log(conditionals), np.log1p(-conditionals)).sum(axis=1).mean()
    assert results["model"]["nll"] == pytest.approx(nll, rel=1e-5)
    before = np.zeros_like(truth)
    for start, end in zip(test.offsets[:-1], test.offsets[1:]):
        before[start + 1 : end] = truth[start : end - 1]
    uncertain = truth & before
    onset_nll = -(np.where(onsets(test.frames), np.log(struck), np.log1p(-struck)) * uncertain).sum(axis=1).mean()
    assert uncertain.sum() > 10 and results["model"]["onset_nll"] == pytest.approx(onset_nll, rel=1e-5)
    assert results["repeat_last"] == pytest.approx(frame_scores(before.astype(float), truth))
    train_truth = sounding(train.frames)
    train_before = np.zeros_like(train_truth)
    for start, end in zip(train.offsets[:-1], train.offsets[1:]):
        train_before[start + 1 : end] = train_truth[start : end - 1]
    stays = (train_truth & train_before).sum(axis=0), train_before.sum(axis=0)
    starts = (train_truth & ~train_before).sum(axis=0), (~train_before).sum(axis=0)
    persistence = np.where(before, (stays[0] + 1) / (stays[1] + 2), (starts[0] + 1) / (starts[1] + 2))
    assert results["persistence"] == pytest.approx(frame_scores(persistence, truth))


def test_onsets_change_what_a_model_reads_not_what_its_nll_scores(tmp_path):
    """`nll` scores what sounds, as before onsets: the struck cells reach it only through what the model reads.
    A model blind to the struck cells it reads (their weights zeroed) gives the same nll on the pieces' levels
    and on the same pieces struck once per run; seeing them, it gives another."""
    keras_model = tiny("rnnnade", seed=3)
    test = tiny_data([9, 1, 20], seed=2)
    write_archive(tmp_path / "train.npz", tiny_data([30, 17], seed=1), onsets=True)
    once = tmp_path / "once"
    once.mkdir()
    write_archive(once / "train.npz", tiny_data([30, 17], seed=1), onsets=True)
    write_archive(tmp_path / "test.npz", test, onsets=True)
    write_archive(once / "test.npz", replace(test, frames=strike_runs(sounding(test.frames), time_axis=0)), onsets=True)

    def nll(folder):
        keras_model.save(folder / "model.keras")
        return evaluate.run(alone(), folder / "model.keras", folder, folder / "eval.json")["model"]["nll"]

    assert nll(tmp_path) != pytest.approx(nll(once), rel=1e-4)
    lstm_kernel = keras_model.get_layer("encoder").lstms[0].cell.kernel  # rows: sounding, struck, position
    lstm_kernel.assign(np.concatenate([lstm_kernel[:PITCHES], 0 * lstm_kernel[PITCHES : 2 * PITCHES],
                                       lstm_kernel[2 * PITCHES :]]))  # fmt: skip
    head = keras_model.get_layer("nade")
    for kernel in (head.visible_kernel, head.hidden_kernel):  # the features end with the frame before, read as is
        kernel.assign(np.concatenate([kernel[:-PITCHES], 0 * kernel[-PITCHES:]]))
    assert nll(tmp_path) == pytest.approx(nll(once), rel=1e-6)


def test_a_nade_model_is_scored_on_its_exact_nll_and_its_own_decoded_frames(tmp_path):
    model = frame_model.wrap(tiny("nade", seed=4))
    model.keras.save(tmp_path / "model.keras")
    test = tiny_data([12, 30], seed=5)
    write_archive(tmp_path / "train.npz", tiny_data([20], seed=6), onsets=True)
    write_archive(tmp_path / "test.npz", test, onsets=True)
    truth = sounding(test.frames)
    for samples, seed in ((0, 0), (8, 3)):
        prediction = model.predict(test, samples=samples, seed=seed)
        params = alone(samples=samples, seed=seed)
        scores = evaluate.run(params, tmp_path / "model.keras", tmp_path, tmp_path / "eval.json")
        assert prediction.onsets is None and scores["model"].pop("onset_nll") is None  # a window model: no onsets
        assert scores["model"] == pytest.approx(frame_scores(prediction.probabilities, truth, prediction.predicted))
        assert scores["decoding"] == ("greedy, lowest pitch first" if not samples else "marginal > 0.5 from 8 samples")


def test_with_transpositions_the_model_is_the_ensemble_and_the_network_is_reported_beside_it(tmp_path):
    model = frame_model.wrap(tiny("transformernade", seed=7))
    model.keras.save(tmp_path / "model.keras")
    test = tiny_data([12, 30], seed=8)
    write_archive(tmp_path / "train.npz", tiny_data([20], seed=9), onsets=True)
    write_archive(tmp_path / "test.npz", test, onsets=True)
    truth = sounding(test.frames)
    params = EvaluateParams(samples=6, seed=1, transpositions=1)
    scores = evaluate.run(params, tmp_path / "model.keras", tmp_path, tmp_path / "eval.json")
    mixture = TranspositionMixture(frame_model.load(tmp_path / "model.keras"), 1).predict(test, samples=6, seed=1)
    assert scores["model"] == pytest.approx(frame_scores(mixture.probabilities, truth, mixture.predicted))
    alone = model.predict(test)
    assert scores["network"]["nll"] == pytest.approx(frame_scores(alone.probabilities, truth)["nll"], rel=1e-5)
    struck, uncertain = onset_targets(test)  # the onsets are the network's alone: the ensemble mixes what sounds
    assert scores["network"]["onset_nll"] == pytest.approx(onset_nll(alone.onsets, struck, uncertain), rel=1e-5)
    assert "onset_nll" not in scores["model"]
    assert "shifts -1..1" in scores["decoding"]


def test_sampled_decoding_predicts_the_pitches_whose_marginal_probability_exceeds_a_half():
    model = frame_model.wrap(tiny("nade", seed=5))
    windows = np.random.default_rng(1).random((8, 3, PITCHES)).astype(np.float32) * 4  # varied, confident models
    frames = every_frame()
    marginals = np.zeros((8, PITCHES))
    for row, window in enumerate(windows):
        conditionals = np.asarray(model.keras([np.repeat(window[None], len(frames), axis=0), frames]))
        marginals[row] = joint(conditionals, frames) @ frames  # exact P(pitch sounds), summed over all 2**6 frames
    decode = Decoder(model.head)
    decoded = decode(model.encoder(windows), 1000, np.random.default_rng(0))
    clear = np.abs(marginals - 0.5) > 0.05  # within 3 standard deviations of 1000 draws
    assert clear.sum() > 20 and 0 < (marginals[clear] > 0.5).sum() < clear.sum()  # some on, some off
    np.testing.assert_array_equal(decoded[clear], marginals[clear] > 0.5)
    again = decode(model.encoder(windows), 1000, np.random.default_rng(0))
    np.testing.assert_array_equal(decoded, again)  # seeded
