"""One interface to every model (rollgen.models.frame_model), checked against the Keras models it wraps: scoring
every frame, training batches that score what scoring scores, and generation with carried state."""

from __future__ import annotations

import numpy as np
import pytest

from rollgen.data.archive import Sequences
from rollgen.evaluation.scores import frame_scores
from rollgen.models import batches, frame_model
from rollgen.models.builders import build_lstm
from rollgen.models.frame_model import Batching
from rollgen.models.sequence_model import STEPS_PER_CALL
from rollgen.music import meter
from rollgen.music.roll import HELD, ONSET, onsets, sounding, strike_runs
from rollgen.params import LstmParams
from tests.archives import with_restrikes
from tests.defaults import STEPS_PER_QUARTER, sampler_with
from tests.tiny import CONTEXT, LENGTHS, PITCHES, SEQUENCE_NADES, WINDOW, heard_before, prefix_by_hand, tiny, tiny_data


def nll_by_hand(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """Nats per frame: the Bernoulli NLL of every pitch, summed over the frame, averaged over every frame."""
    per_pitch = np.where(truth, np.log(probabilities.astype(np.float64)), np.log(1 - probabilities.astype(np.float64)))
    return float(-per_pitch.sum() / len(truth))


def windows_by_hand(data: Sequences) -> np.ndarray:
    """For every frame, the `context` frames before it (`target_gap` more back in article mode), silent
    before the piece's start: what a window model reads to predict it."""
    windows = []
    for number in range(len(data)):
        frames = sounding(data.sequence(number)).astype(np.float32)
        back = data.context + data.target_gap
        padded = np.concatenate([np.zeros((back, frames.shape[1])), frames])
        windows += [padded[t : t + data.context] for t in range(len(frames))]
    return np.asarray(windows, np.float32)


@pytest.mark.parametrize("target_gap", [0, 1])  # next mode, and article mode's frame after the next
@pytest.mark.parametrize("name", ["lstm", "nade"])
def test_a_window_model_scores_every_frame_as_the_keras_model_does_on_its_window(name, target_gap):
    keras_model = build_lstm(LstmParams(units=4), CONTEXT, PITCHES) if name == "lstm" else tiny("nade", seed=1)
    model = frame_model.wrap(keras_model)
    data = tiny_data(target_gap=target_gap)
    truth = data.frames > 127
    windows = windows_by_hand(data)
    inputs = windows if name == "lstm" else [windows, truth.astype(np.float32)]
    expected = np.asarray(keras_model(inputs))

    prediction = model.predict(data)
    assert prediction.probabilities.shape == prediction.predicted.shape == (sum(LENGTHS), PITCHES)
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-6)
    firsts = data.offsets[:-1]
    silence = np.zeros((len(firsts), CONTEXT, PITCHES), np.float32)  # each piece's first frame: from silence
    silent_inputs = silence if name == "lstm" else [silence, truth[firsts].astype(np.float32)]
    np.testing.assert_allclose(prediction.probabilities[firsts], np.asarray(keras_model(silent_inputs)), atol=1e-6)
    assert frame_scores(prediction.probabilities, truth)["nll"] == pytest.approx(nll_by_hand(expected, truth), rel=1e-5)
    if name == "lstm":
        np.testing.assert_array_equal(prediction.predicted, expected > 0.5)
    else:  # greedy decoding never sees the true notes
        greedy, _ = model.head.sample(model.encoder(windows), np.full(truth.shape, 0.5, np.float32))
        np.testing.assert_array_equal(prediction.predicted, np.asarray(greedy) > 0)


@pytest.mark.parametrize("name", SEQUENCE_NADES)
def test_a_sequence_model_scores_every_frame_as_the_keras_model_does_on_the_piece_so_far(name, monkeypatch):
    monkeypatch.setattr(frame_model, "PREDICT_FRAMES", 20)  # pieces of unequal length padded together, in groups
    keras_model = tiny(name, seed=1)
    model = frame_model.wrap(keras_model)
    data = tiny_data()
    truth = data.frames > 127
    expected, struck = prefix_by_hand(keras_model, data)

    prediction = model.predict(data)
    assert prediction.probabilities.shape == prediction.onsets.shape == (sum(LENGTHS), PITCHES)
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-5)
    np.testing.assert_allclose(prediction.onsets, struck, atol=1e-5)
    assert frame_scores(prediction.probabilities, truth)["nll"] == pytest.approx(nll_by_hand(expected, truth), rel=1e-5)
    firsts = data.offsets[:-1]  # the first frame of each piece, from the initial state after silence
    initial = model.encoder.initial_state(len(firsts))
    silence = np.zeros((len(firsts), 1, 2 * PITCHES), np.float32)  # sounding, then struck
    features, _ = model.encoder.advance(silence, data.positions[firsts][:, None].astype(np.int32), initial)
    at_start = np.asarray(model.head([features[:, 0], truth[firsts].astype(np.float32)]))
    np.testing.assert_allclose(prediction.probabilities[firsts], at_start, atol=1e-5)


@pytest.mark.parametrize("name", SEQUENCE_NADES)
def test_a_long_piece_read_in_chunks_scores_as_one_pass(name):
    """`predict` reads pieces in chunks (the encoder's chunk_steps: the Transformer's window, 512 steps for the
    LSTMs) with the state carried: the same as one Keras call."""
    keras_model = tiny(name, seed=2)
    data = tiny_data([530, 40], seed=3)
    truth = sounding(data.sequence(0)).astype(np.float32)
    inputs = [heard_before(data.sequence(0))[None], data.positions[None, :530].astype(np.int32), truth[None]]
    conditionals, struck = (np.asarray(part)[0] for part in keras_model(inputs))
    prediction = frame_model.wrap(keras_model).predict(data)
    np.testing.assert_allclose(prediction.probabilities[:530], conditionals, atol=1e-5)
    np.testing.assert_allclose(prediction.onsets[:530], struck, atol=1e-5)


def test_window_training_batches_score_what_predict_scores():
    """Next mode trains on every frame, the first ones from silence, as they are scored."""
    keras_model = tiny("nade", seed=4)
    model = frame_model.wrap(keras_model)
    data = tiny_data()
    batching = Batching(batch_size=5, seed=None, transpose=0, sequence_steps=WINDOW)  # unshuffled
    taught = [model.teacher_forced(batch, training=False) for batch in model.training_batches(data, batching, 0)]
    assert len(taught) == model.batch_count(data, batching) == -(-sum(LENGTHS) // 5)
    assert all(part.onset_probabilities is None for part in taught)  # window models predict no onsets
    probabilities = np.concatenate([np.asarray(part.probabilities) for part in taught])
    targets = np.concatenate([np.asarray(part.targets) for part in taught])
    np.testing.assert_array_equal(targets, sounding(data.frames))  # unshuffled: every frame in archive order
    np.testing.assert_allclose(probabilities, model.predict(data).probabilities, atol=1e-6)


@pytest.mark.parametrize("name", SEQUENCE_NADES)
def test_a_stretch_from_a_pieces_first_frame_is_taught_what_predict_scores(name):
    """The training path (teacher_forced on a stretch batch, packed where the model packs) and the scoring path
    (predict) agree on every stretch that starts where its piece starts; padding is masked out."""
    model = frame_model.wrap(tiny(name, seed=5))
    data = tiny_data([10, 3, 40, 1, 2], seed=6)
    batching = Batching(batch_size=3, seed=2, transpose=0, sequence_steps=WINDOW)
    table, placed = batches.stretch_rows(data.offsets, WINDOW, 2, 1, model.encoder.packs)
    assert (placed[:, 1] > 0).any() == model.encoder.packs  # the Transformer packs short stretches together
    scored = model.predict(data)
    taught = []
    for batch in model.training_batches(data, batching, epoch=1):
        count, steps = batch[0].shape[:2]
        parts = (np.asarray(part).reshape(count, steps, -1) for part in model.teacher_forced(batch, training=False))
        taught += zip(*parts)
    assert len(taught) == batches.row_count(placed) and model.batch_count(data, batching) == -(-len(taught) // 3)
    compared = 0
    for (start, length, sequence_start), (row, column) in zip(table, placed):
        probabilities, targets, weights, onset_probabilities, struck, uncertain = taught[row]
        mine, frames = slice(column, column + length), data.frames[start : start + length]
        assert weights[mine, 0].tolist() == [1.0] * length
        np.testing.assert_array_equal(targets[mine], sounding(frames))
        np.testing.assert_array_equal(struck[mine], onsets(frames))
        before = data.frames[start - 1 : start + length - 1] if start > sequence_start else None
        if before is not None:  # the cells where the onset is a question: sounding now and in the frame before
            np.testing.assert_array_equal(uncertain[mine], sounding(frames) & sounding(before))
        if start == sequence_start:
            np.testing.assert_allclose(probabilities[mine], scored.probabilities[start : start + length], atol=1e-5)
            np.testing.assert_allclose(onset_probabilities[mine], scored.onsets[start : start + length], atol=1e-5)
            compared += 1
    assert compared == len(data)  # every piece's first stretch compared
    assert sum(part[2].sum() for part in taught) == len(data.frames)  # the rest is padding


def recomputed(keras_model, primers, positions, steps, sampler, rng):
    """Generation the slow way: before every new frame the encoder reads the whole piece so far again (uint8
    levels), from its initial state (the Transformer through its banded mask); the NADE head draws what sounds
    with the sampler's levels, and the onset head, tempered, which held pitches are struck again with its onset
    levels. Gives the frames (levels) and their conditionals."""
    encoder, head, onset = (keras_model.get_layer(name) for name in ("encoder", "nade", "onset"))
    heard = np.asarray(primers, np.uint8)
    frames, conditionals = [], []
    for step in range(steps):
        upcoming = np.zeros(
            (len(heard), 1, heard.shape[2]), np.uint8
        )  # the frame to draw: only what came before counts
        previous = np.stack([heard_before(piece) for piece in np.concatenate([heard, upcoming], axis=1)])
        features = np.asarray(encoder([previous, positions[:, : previous.shape[1]]]))[:, -1]
        levels = sampler.levels((len(heard), heard.shape[2]), step, rng)
        frame, probabilities = (np.asarray(part) for part in head.sample(features, levels, sampler.temperature))
        struck = np.asarray(onset([features, frame, previous[:, -1]], temperature=sampler.onset_temperature))
        struck = struck > sampler.onset_levels(frame.shape, step, rng)
        frame = np.where(frame > 0, np.where(struck, ONSET, HELD), 0).astype(np.uint8)
        heard = np.concatenate([heard, frame[:, None]], axis=1)
        frames.append(frame)
        conditionals.append(probabilities)
    return np.stack(frames, axis=1), np.stack(conditionals, axis=1)


def level_primers(pieces: int, steps: int, seed: int) -> np.ndarray:
    """uint8 levels (pieces, steps, PITCHES): random notes, some held ones struck again."""
    sounds = np.random.default_rng(seed).random((pieces, steps, PITCHES)) < 0.4
    return np.stack(with_restrikes(list(sounds), share=0.5, seed=seed))


@pytest.mark.parametrize("name", SEQUENCE_NADES)
def test_generating_with_carried_state_draws_what_recomputing_the_whole_piece_draws(name):
    from rollgen.generation.generate import sample_frames

    keras_model = tiny(name, seed=6)
    keras_model.get_layer("nade").visible_bias.assign(np.zeros(PITCHES, np.float32))  # lively: notes to compare
    model = frame_model.wrap(keras_model)
    primer_steps, steps = 5, 3 * WINDOW + 2  # on past the Transformer's window, so its cache rolls over
    three_four = meter.frame_positions(meter.Meter.from_steps([(0, 3, 4)], STEPS_PER_QUARTER), 40)
    positions = np.stack([three_four[7 : 7 + primer_steps + steps], three_four[: primer_steps + steps]])
    positions = positions.astype(np.int32)  # the first piece starts mid-bar
    primers = level_primers(2, primer_steps, seed=1)
    sampler = sampler_with("bernoulli", temperature=1.5, onset_temperature=0.8)  # each tempers its own draw

    state = model.start(primers, positions[:, : primer_steps + 1])
    rng = np.random.default_rng(8)
    frames, conditionals = [], []
    for step in range(steps):
        frame, probabilities, state = model.step(state, sampler, step, rng)
        frames.append(frame)
        conditionals.append(probabilities)
    carried, carried_conditionals = np.stack(frames, axis=1), np.stack(conditionals, axis=1)

    slow, slow_conditionals = recomputed(keras_model, primers, positions, steps, sampler, np.random.default_rng(8))
    assert carried.dtype == np.uint8 and set(np.unique(carried)) == {0, HELD, ONSET}
    restruck = (carried[:, 1:] == ONSET) & sounding(carried[:, :-1])
    assert restruck.any() and (carried[:, 1:] == HELD).any()  # notes struck again, and notes held on
    np.testing.assert_array_equal(carried, slow)
    np.testing.assert_allclose(carried_conditionals, slow_conditionals, atol=1e-5)
    again = sample_frames(model, primers, positions[:, : primer_steps + 1], steps, sampler, np.random.default_rng(8),
                          progress=False)  # fmt: skip
    np.testing.assert_array_equal(again, carried)


def test_generation_from_nothing_starts_from_silence_and_the_initial_state():
    keras_model = tiny("rnnnade", seed=7)
    keras_model.get_layer("nade").visible_bias.assign(np.zeros(PITCHES, np.float32))
    model = frame_model.wrap(keras_model)
    positions = meter.default_positions(8, STEPS_PER_QUARTER)[None].repeat(3, axis=0).astype(np.int32)
    state = model.start(np.zeros((3, 0, PITCHES), np.uint8), positions[:, :1])
    sampler = sampler_with("threshold", threshold=0.5)
    frames = []
    for step in range(8):
        frame, _, state = model.step(state, sampler, step, np.random.default_rng(0))
        frames.append(frame)
    slow, _ = recomputed(keras_model, np.zeros((3, 0, PITCHES), np.uint8), positions, 8, sampler, None)
    np.testing.assert_array_equal(np.stack(frames, axis=1), slow)


def test_a_window_model_generates_by_sliding_its_window_over_what_it_drew():
    keras_model = build_lstm(LstmParams(units=4), CONTEXT, PITCHES)
    model = frame_model.wrap(keras_model)
    primer = level_primers(2, 2, seed=2)  # shorter than the window
    sampler = sampler_with("threshold", threshold=0.45)
    state = model.start(primer, np.zeros((2, 3, 4), np.int32))
    heard = np.concatenate([np.zeros((2, CONTEXT, PITCHES), np.float32), sounding(primer)], axis=1)
    for step in range(6):
        frame, probabilities, state = model.step(state, sampler, step, np.random.default_rng(0))
        expected = np.asarray(keras_model(heard[:, -CONTEXT:]))
        np.testing.assert_allclose(probabilities, expected, atol=1e-6)
        np.testing.assert_array_equal(sounding(frame), expected > 0.45)
        # It reads no onsets: a note is struck where its pitch starts to sound and held while it sounds.
        np.testing.assert_array_equal(frame, strike_runs(np.stack([heard[:, -1] > 0.5, expected > 0.45], 1), 1)[:, 1])
        heard = np.concatenate([heard, sounding(frame)[:, None].astype(np.float32)], axis=1)


def test_note_caps_are_refused_for_a_nade_model_and_allowed_for_a_factorised_one():
    capped = sampler_with("bernoulli", max_notes=3)
    frame_model.wrap(build_lstm(LstmParams(units=4), CONTEXT, PITCHES)).check(capped)
    for name in ("nade", "rnnnade"):
        with pytest.raises(ValueError, match="max_notes/min_notes apply to factorised models"):
            frame_model.wrap(tiny(name)).check(capped)


@pytest.mark.parametrize("name", ["transformernade", "rnnnade"])
def test_generating_many_steps_at_once_draws_what_stepping_one_at_a_time_draws(name):
    """`generate` draws STEPS_PER_CALL steps per compiled call: over two calls, a part-filled one last,
    it gives the frames and the state that calling `step` once per frame gives, with the same random numbers."""
    keras_model = tiny(name, seed=9)
    keras_model.get_layer("nade").visible_bias.assign(np.zeros(PITCHES, np.float32))
    model = frame_model.wrap(keras_model)
    steps = STEPS_PER_CALL + 5
    positions = meter.default_positions(4, STEPS_PER_QUARTER)[None].repeat(2, axis=0).astype(np.int32)
    primers = level_primers(2, 3, seed=3)
    sampler = sampler_with("bernoulli", temperature=1.2, onset_temperature=2.0)

    state, rng = model.start(primers, positions), np.random.default_rng(5)
    stepped = []
    for step in range(steps):
        frame, _, state = model.step(state, sampler, step, rng)
        stepped.append(frame)
    at_once, after = model.generate(model.start(primers, positions), sampler, steps, np.random.default_rng(5))

    assert at_once.dtype == np.uint8 and set(np.unique(at_once)) == {0, HELD, ONSET}
    np.testing.assert_array_equal(at_once, np.stack(stepped, axis=1))
    np.testing.assert_array_equal(after.position, state.position)
    for carried, expected in zip(after.encoder, state.encoder):
        np.testing.assert_allclose(np.asarray(carried), np.asarray(expected), atol=1e-5)
