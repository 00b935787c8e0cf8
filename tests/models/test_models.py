"""The models by name: the article's network rebuilt exactly, NADE heads that define distributions over whole
frames, and safe saving and loading of every model."""

import keras
import numpy as np
import pytest

from rollgen.models import frame_model
from rollgen.models.builders import MODELS, build_article, build_convlstm, build_convnade, entry, load_model
from rollgen.models.nade import NadeHead
from rollgen.models.sequence_model import SequenceModel
from rollgen.models.window_model import WindowModel
from rollgen.music import meter
from rollgen.params import ConvLstmParams, ConvNadeParams, TrainParams
from tests.defaults import STEPS_PER_QUARTER
from tests.tiny import PITCHES, SEQUENCE_NADES, WINDOW, WINDOW_NADES, every_frame, joint, tiny


def test_the_articles_network_has_its_251370_parameters():
    model = build_article(context=9)
    assert model.count_params() == 251_370
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    assert trainable == 251_242  # the article's summary: 128 non-trainable (BatchNorm moving stats)
    assert model.output_shape == (None, 106)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("LSTM") == 2 and kinds[-2:] == ["BatchNormalization", "Dense"]


def test_unknown_model_names_are_a_clear_error():
    with pytest.raises(ValueError, match="'transformer-xl' is unknown; choose one of"):
        entry("transformer-xl")


def test_build_gives_each_family_its_interface_and_size():
    for name, model_entry in MODELS.items():
        model = frame_model.build(TrainParams(model=name, sequence_steps=24), context=16)
        assert model.keras.name == name  # a loaded model finds its MODELS entry by its name
        assert model.family == model_entry.family
        if model.family == "window":
            assert isinstance(model, WindowModel) and model.context == 16
            assert model.keras.output_shape == (None, 106)
        else:
            assert isinstance(model, SequenceModel) and model.head is not None
            assert model.keras.output_shape == [(None, None, 106)] * 2  # sounding, struck
    attending = frame_model.build(TrainParams(model="transformernade", sequence_steps=24), context=16)
    assert attending.encoder.window == 24  # its attention span
    assert {name for name, found in MODELS.items() if found.family == "window"} == {
        "article", "convlstm", "lstm", "nade", "convnade"
    }  # fmt: skip


def model_inputs(model: keras.Model, rng: np.random.Generator, batch: int = 2, steps: int = 12):
    """Random inputs for a model of either family (a NADE's true frame included)."""
    pitches = model.inputs[-1].shape[-1]
    if entry(model.name).family == "window":
        window = rng.random((batch, model.inputs[0].shape[1], pitches)).astype(np.float32)
        frame = (rng.random((batch, pitches)) < 0.2).astype(np.float32)
        return [window, frame] if len(model.inputs) == 2 else window
    previous = (rng.random((batch, steps, 2 * pitches)) < 0.2).astype(np.float32)  # sounding, then struck
    positions = np.repeat(meter.default_positions(steps, STEPS_PER_QUARTER)[None], batch, axis=0).astype(np.int32)
    return [previous, positions, (rng.random((batch, steps, pitches)) < 0.2).astype(np.float32)]


@pytest.mark.parametrize("name", sorted(MODELS))  # every model, at full size
def test_every_model_reloads_in_safe_mode_with_the_same_outputs(tmp_path, name):
    keras.utils.set_random_seed(1)
    model = frame_model.build(TrainParams(model=name, sequence_steps=8), context=9)
    model.keras.save(tmp_path / f"{name}.keras")
    again = frame_model.load(tmp_path / f"{name}.keras")
    assert type(again) is type(model) and again.keras.count_params() == model.keras.count_params()
    inputs = model_inputs(model.keras, np.random.default_rng(0))
    expected = np.asarray(model.keras(inputs))
    np.testing.assert_allclose(np.asarray(again.keras(inputs)), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(load_model(tmp_path / f"{name}.keras")(inputs)), expected, atol=1e-7)


def nade_by_hand(head: NadeHead, features: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """P(pitch d | the frame's notes below d) from the head's weights, one pitch at a time, in NumPy."""
    weights = {weight.path.split("/")[-1]: np.asarray(weight, np.float64) for weight in head.weights}
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    visible = features @ weights["visible_kernel"] + weights["visible_bias"]
    hidden = features @ weights["hidden_kernel"] + weights["hidden_bias"]
    probabilities = np.zeros(frames.shape)
    for pitch in range(frames.shape[-1]):
        below = frames[..., :pitch] @ weights["input_weights"][:pitch]  # the notes below, summed through W
        activations = sigmoid(hidden + below)
        probabilities[..., pitch] = sigmoid(visible[..., pitch] + activations @ weights["output_weights"][pitch])
    return probabilities


def test_the_nade_head_gives_the_textbook_conditionals_for_any_leading_axes():
    keras.utils.set_random_seed(7)
    head = NadeHead(hidden=5, initial_bias=-1.0)
    rng = np.random.default_rng(3)
    frames = np.concatenate([every_frame(), np.ones((1, PITCHES), np.float32)])  # silence to all six sounding
    features = rng.normal(size=(len(frames), 4)).astype(np.float32)
    head([features, frames])  # builds the weights
    head.visible_bias.assign(rng.normal(size=PITCHES).astype(np.float32))
    np.testing.assert_allclose(np.asarray(head([features, frames])), nade_by_hand(head, features, frames), atol=1e-6)
    in_time = frames.reshape(5, 13, PITCHES), features.reshape(5, 13, 4)  # (batch, steps, ...) as sequence models
    np.testing.assert_allclose(np.asarray(head([in_time[1], in_time[0]])), nade_by_hand(head, in_time[1], in_time[0]),
                               atol=1e-6)  # fmt: skip


@pytest.mark.parametrize("name", WINDOW_NADES)
def test_a_window_nade_defines_a_distribution_over_whole_frames(name):
    model = tiny(name, seed=2)
    frames = every_frame()
    window = np.random.default_rng(0).random((1, 3, PITCHES)).astype(np.float32)
    conditionals = np.asarray(model([np.repeat(window, len(frames), axis=0), frames]))
    assert joint(conditionals, frames).sum() == pytest.approx(1.0, abs=1e-5)  # so the summed NLL is exact


@pytest.mark.parametrize("name", SEQUENCE_NADES)
def test_a_sequence_nade_defines_a_distribution_over_whole_frames_at_every_step(name):
    """Row r of the batch asks, at every step, for the probability of frame r (all 2**6 in turn) after the
    same music; each step's 64 probabilities must sum to 1, beyond the Transformer's window too."""
    model = tiny(name, seed=2)
    steps, frames = 3 * WINDOW, every_frame()
    rng = np.random.default_rng(1)
    heard = np.concatenate([np.zeros((1, 2 * PITCHES)), rng.random((steps - 1, 2 * PITCHES)) < 0.4]).astype(np.float32)
    previous = np.repeat(heard[None], len(frames), axis=0)
    positions = np.repeat(meter.default_positions(steps, STEPS_PER_QUARTER)[None], len(frames), axis=0).astype(np.int32)
    asked = np.repeat(frames[:, None], steps, axis=1)
    conditionals = np.asarray(model([previous, positions, asked])[0])  # (64, steps, 6)
    totals = joint(conditionals, asked).sum(axis=0)
    np.testing.assert_allclose(totals, np.ones(steps), atol=1e-5)
    assert np.ptp(joint(conditionals, asked), axis=1).max() > 1e-3  # and the distribution moves with the music


@pytest.mark.parametrize("name", WINDOW_NADES + SEQUENCE_NADES)
def test_nade_sampling_follows_its_own_conditionals(name):
    model = frame_model.wrap(tiny(name, seed=3))
    rng = np.random.default_rng(1)
    if model.family == "window":
        features = model.encoder(rng.random((5, 3, PITCHES)).astype(np.float32))
    else:
        previous = (rng.random((5, 7, 2 * PITCHES)) < 0.3).astype(np.float32)
        positions = np.repeat(meter.default_positions(7, STEPS_PER_QUARTER)[None], 5, axis=0).astype(np.int32)
        features = model.encoder([previous, positions])[:, -1]
    levels = rng.random((5, PITCHES)).astype(np.float32)
    frame, conditionals = (np.asarray(part) for part in model.head.sample(features, levels))
    np.testing.assert_allclose(conditionals, np.asarray(model.head([features, frame])), atol=1e-6)
    np.testing.assert_array_equal(frame, conditionals > levels)  # pitch d on exactly when p(d | below) > level
    cold, untempered = (np.asarray(part) for part in model.head.sample(features, levels, temperature=0.25))
    np.testing.assert_allclose(untempered, np.asarray(model.head([features, cold])), atol=1e-6)
    tempered = 1 / (1 + np.exp(-np.log(untempered / (1 - untempered)) / 0.25))
    np.testing.assert_array_equal(cold, tempered > levels)  # the temperature divides each conditional's logit


def test_convnade_shares_the_convlstm_features_and_adds_a_nade_head():
    """convnade differs from convlstm only in its output: the same ConvLSTM feature layers, then a NADE head."""
    factorised, joint_model = build_convlstm(ConvLstmParams(), 9), build_convnade(ConvNadeParams(), 9)
    kinds = lambda model: [type(layer).__name__ for layer in model.layers]  # noqa: E731
    assert kinds(factorised)[1:6] == kinds(joint_model)[1:6] == ["Reshape", "ConvLSTM1D", "Conv1D", "Conv1D", "Flatten"]
    assert kinds(joint_model)[-1] == "NadeHead"
    features, pitches, hidden = 4 * 106, 106, ConvNadeParams().nade_units
    dense = features * pitches + pitches
    head = features * (pitches + hidden) + pitches + hidden + 2 * pitches * hidden
    assert joint_model.count_params() == factorised.count_params() - dense + head
