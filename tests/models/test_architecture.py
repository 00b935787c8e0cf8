"""Model sizes are params (train.<model>): the defaults build the models chosen on validation, every size
reaches its model, a saved model records what built it, and files saved before keep loading as trained."""

import json
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from rollgen.models import frame_model
from rollgen.models.builders import MODELS, build_article, build_transformer_nade, save_model
from rollgen.models.encoders import POSITION_FEATURES
from rollgen.models.nade import NadeHead
from rollgen.music import meter
from rollgen.music.roll import HELD, sounding, strike_runs
from rollgen.params import PitchNadeParams, TrainParams, TransformerNadeParams
from tests.defaults import STEPS_PER_QUARTER, sampler_with
from tests.tiny import PITCHES, WINDOW, tiny, tiny_data

SIZED = [name for name in MODELS if TrainParams(model=name).architecture is not None]


def transformer_nade_parameters(sizes: TransformerNadeParams, window: int = 64, pitches: int = 106) -> int:
    """A Transformer NADE's parameter count, by hand from its sizes and its attention span."""
    width, inner, hidden = sizes.width, sizes.expansion * sizes.width, sizes.nade_units
    key = 12 * sizes.key_summary  # the pitch classes heard so far
    embed = (
        2 * pitches + POSITION_FEATURES + key
    ) * width + width  # a step's frame before (sounding, struck), its position
    block = (
        2 * 2 * width  # two layer norms
        + 4 * (width * width + width)  # query, key, value and output projections, all heads together
        + (width * inner + inner)
        + (inner * width + width)  # the feed-forward network
        + sizes.relative * sizes.heads * window  # a bias per head and distance
    )
    features = width + POSITION_FEATURES + 2 * pitches  # what the NADE head and the onset head read
    head = features * (pitches + hidden) + pitches + hidden + 2 * pitches * hidden
    onset_head = features * pitches + pitches * pitches + pitches  # from the features and the frame's notes
    return embed + sizes.layers * block + 2 * width + head + onset_head


def test_the_default_params_build_the_transformer_nade_chosen_on_validation():
    params = TrainParams()
    model = frame_model.build(params, context=9)
    assert model.name == params.model == "transformernade"
    assert params.transformernade.relative and params.sequence_steps == 128
    assert model.keras.count_params() == transformer_nade_parameters(params.transformernade, window=128)  # 594,976
    encoder = model.encoder.get_config()
    assert (encoder["activation"], encoder["attention_dropout"], model.head.hidden) == ("relu", 0.0, 128)
    assert model.encoder.window == params.sequence_steps  # it attends as far back as it trains on
    other = TransformerNadeParams(width=48, heads=3, layers=1, expansion=2, nade_units=16, relative=True)
    smaller = frame_model.build(TrainParams(transformernade=other), context=9)
    assert smaller.keras.count_params() == transformer_nade_parameters(other, window=128)


def changed(value):
    """Another valid value for a size: twice a count (a multiple of the heads still), a higher rate, the other
    activation."""
    if isinstance(value, str):
        return "gelu" if value == "relu" else "relu"
    if isinstance(value, bool):
        return not value
    return value + 0.2 if isinstance(value, float) else 2 * value


def layer_configs(model: keras.Model) -> list[dict]:
    """Each layer's configuration, without the names Keras numbers as it goes."""
    return [{key: value for key, value in layer.get_config().items() if key != "name"} for layer in model.layers]


@pytest.mark.parametrize("name", SIZED)
def test_every_size_reaches_its_model(name):
    params = TrainParams(model=name, sequence_steps=8)
    built = layer_configs(frame_model.build(params, context=4).keras)
    for key, value in params.architecture.model_dump().items():
        sizes = params.architecture.model_copy(update={key: changed(value)})
        other = frame_model.build(params.model_copy(update={name: sizes}), context=4)
        assert layer_configs(other.keras) != built, f"train.{name}.{key} changes nothing"


def test_a_saved_model_records_its_name_and_sizes(tmp_path):
    params = TrainParams(model="pitchnade", pitchnade=PitchNadeParams(units=8, filters=4, nade_units=16))
    path = tmp_path / "model.keras"
    save_model(frame_model.build(params, context=9).keras, path, {"grid": "sample", "steps_per_quarter": 2})
    loaded = frame_model.load(path)
    assert loaded.info["model"] == "pitchnade" and (loaded.grid, loaded.steps_per_quarter) == ("sample", 2)
    assert PitchNadeParams(**loaded.info["architecture"]) == params.pitchnade  # enough to build it again


def test_a_file_without_rollgen_info_loads_as_trained_before_models_carried_it(tmp_path):
    frame_model.build(TrainParams(model="lstm"), context=9).keras.save(tmp_path / "model.keras")
    loaded = frame_model.load(tmp_path / "model.keras")
    assert (loaded.grid, loaded.steps_per_quarter, loaded.info["architecture"]) == ("nearest", 4, None)
    untrained = frame_model.build(TrainParams(model="lstm"), context=9)
    with pytest.raises(ValueError, match="lstm: no grid in its info"):
        print(untrained.grid)  # a model not yet trained was trained on no grid


def rewrite_config(path: Path, change) -> None:
    """The .keras file at `path` with its config.json changed by `change`: a file as an older rollgen saved it."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(entries["config.json"])
    change(config)
    entries["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def layer_config(config: dict, class_name: str) -> dict:
    return next(layer["config"] for layer in config["config"]["layers"] if layer["class_name"] == class_name)


def sequence_inputs(steps: int = 2 * WINDOW) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    previous = (rng.random((2, steps, 2 * PITCHES)) < 0.3).astype(np.float32)  # sounding, then struck
    positions = np.repeat(meter.default_positions(steps, STEPS_PER_QUARTER)[None], 2, axis=0).astype(np.int32)
    return [previous, positions, (rng.random((2, steps, PITCHES)) < 0.3).astype(np.float32)]


def test_a_transformer_saved_before_its_options_loads_as_it_was_trained(tmp_path):
    """Before `expansion`, `activation` and `attention_dropout` (and the head's `initial_bias`) were saved, the
    feed-forward network was 4 x width of GELU and the attention weights dropped at the `dropout` rate."""
    relu = tiny("transformernade", seed=1)
    relu.save(tmp_path / "old.keras")

    def older(config: dict) -> None:
        for key in ("expansion", "activation", "attention_dropout"):
            del layer_config(config, "TransformerEncoder")[key]
        del layer_config(config, "NadeHead")["initial_bias"]

    rewrite_config(tmp_path / "old.keras", older)
    loaded = frame_model.load(tmp_path / "old.keras")
    encoder = loaded.encoder
    assert (encoder.expansion, encoder.activation, encoder.attention_dropout, loaded.head.initial_bias) == (
        4, "gelu", encoder.dropout_rate, 0.0
    )  # fmt: skip
    sizes = TransformerNadeParams(
        width=8,
        nade_units=5,
        activation="gelu",
        attention_dropout=encoder.dropout_rate,
        relative=True,
        key_summary=False,
    )  # as tests.tiny builds it
    gelu = build_transformer_nade(sizes, WINDOW, PITCHES)
    gelu.set_weights(relu.get_weights())
    inputs = sequence_inputs()
    np.testing.assert_allclose(np.asarray(loaded.keras(inputs)[0]), np.asarray(gelu(inputs)[0]), atol=1e-6)
    assert not np.allclose(np.asarray(loaded.keras(inputs)[0]), np.asarray(relu(inputs)[0]), atol=1e-4)


def test_a_model_saved_as_seed_loads_as_the_articles_network(tmp_path):
    """`train.model: seed` is now `article`; a model trained under the old name still loads, as what it is."""
    keras.utils.set_random_seed(0)
    article = build_article(context=9)
    article.save(tmp_path / "seed.keras")
    rewrite_config(tmp_path / "seed.keras", lambda config: config["config"].update(name="seed"))
    loaded = frame_model.load(tmp_path / "seed.keras")
    assert loaded.keras.name == "seed" and (loaded.name, loaded.family) == ("article", "window")
    window = np.random.default_rng(1).random((2, 9, 106)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(loaded.keras(window)), np.asarray(article(window)))


@pytest.mark.parametrize("name", ["rnnnade", "pitchnade"])
def test_a_sequence_model_saved_before_onsets_scores_and_generates_striking_where_a_pitch_starts(tmp_path, name):
    """A model saved before onsets read the sounding notes alone and had no onset head: it loads in safe mode,
    scores as it did (nll from what sounds), and generates levels that strike a note only where its pitch starts
    to sound (rollgen.music.roll.strike_runs), never again while it sounds."""
    keras.utils.set_random_seed(3)
    current = tiny(name).get_layer("encoder")
    encoder = type(current).from_config(current.get_config())  # the same encoder, built for sounding notes alone
    previous = keras.Input(shape=(None, PITCHES), name="previous")
    position = keras.Input(shape=(None, 4), dtype="int32", name="position")
    frame = keras.Input(shape=(None, PITCHES), name="frame")
    head = NadeHead(5, initial_bias=0.0, name="nade")
    old = keras.Model([previous, position, frame], head([encoder([previous, position]), frame]), name=name)
    head.visible_bias.assign(np.full(PITCHES, 2.0, np.float32))  # loud: pitches sound on and on
    save_model(old, tmp_path / "old.keras", {"steps_per_quarter": 4, "grid": "nearest"})

    loaded = frame_model.load(tmp_path / "old.keras")
    assert loaded.onset_head is None and loaded.input_width == PITCHES
    data = tiny_data()
    prediction = loaded.predict(data)
    sounds = sounding(data.frames)
    heard = np.concatenate([np.zeros((1, PITCHES), bool), sounds[:-1]])[None].astype(np.float32)
    where = data.positions[None].astype(np.int32)
    first = slice(0, data.offsets[1])  # the first piece, read from silence as the old model read it
    expected = np.asarray(old([heard[:, first], where[:, first], sounds[None, first].astype(np.float32)]))[0]
    np.testing.assert_allclose(prediction.probabilities[first], expected, atol=1e-5)
    before = sounding(data.previous_frames())
    np.testing.assert_array_equal(prediction.onsets, sounds & ~before)  # certain onsets only: no re-strike

    positions = meter.default_positions(4, STEPS_PER_QUARTER)[None].repeat(2, axis=0).astype(np.int32)
    state = loaded.start(data.sequence(0)[None, :3].repeat(2, axis=0), positions)
    frames, _ = loaded.generate(state, sampler_with("bernoulli", temperature=1.0), 20, np.random.default_rng(0))
    assert (frames == HELD).any()
    levels = strike_runs(np.concatenate([sounding(data.sequence(0)[None, 2:3].repeat(2, 0)), sounding(frames)], 1), 1)
    np.testing.assert_array_equal(frames, levels[:, 1:])
