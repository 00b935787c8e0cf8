"""Generation with real (untrained) Keras models: every piece advances together, seeded; the article's loop;
generate_pieces, the one way rollgen generates; the generate stage's pieces, page and quality report."""

import json

import keras
import numpy as np
import pytest

from rollgen.errors import RollgenError
from rollgen.evaluation.stats import roll_stats
from rollgen.generation import generate
from rollgen.generation.primers import make_primers
from rollgen.models import frame_model
from rollgen.models.sampling import make_sampler
from rollgen.music import meter
from rollgen.params import TrainParams, validate
from tests.archives import random_pieces, sequences, write_archive
from tests.tiny import CONTEXT, PITCHES, tiny


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return frame_model.build(TrainParams(model="article"), context=9)


def four_four(pieces: int, steps: int) -> np.ndarray:
    """Positions (pieces, steps, 4) of 4/4 from a bar line."""
    return np.repeat(meter.default_positions(steps)[None], pieces, axis=0).astype(np.int32)


def test_all_pieces_advance_together_and_the_seed_fixes_the_music(model):
    primers = np.random.default_rng(1).random((3, 9, 106)).astype(np.float32)
    runs = [
        generate.sample_frames(
            model, primers, four_four(3, 10), 12, make_sampler("bernoulli"), np.random.default_rng(9), progress=False
        )  # fmt: skip
        for _ in range(2)
    ]
    assert runs[0].shape == (3, 12, 106) and runs[0].dtype == np.uint8
    assert (runs[0] == runs[1]).all() and runs[0].sum() > 0
    assert set(np.unique(runs[0])) <= {0, 1}
    threshold = make_sampler("threshold", threshold=0.3)
    together = generate.sample_frames(model, primers, four_four(3, 10), 6, threshold, None, progress=False)
    for piece in range(3):  # a piece in a batch is the piece alone
        alone = generate.sample_frames(model, primers[piece : piece + 1], four_four(1, 10), 6, threshold, None,
                                       progress=False)  # fmt: skip
        np.testing.assert_array_equal(together[piece], alone[0])


def test_vanish_proof_generation_is_the_articles_loop(model):
    """The article's loop over the Keras model by hand: add the growing offset, cast, slide the window."""
    primers = np.random.default_rng(3).random((2, 9, 106)).astype(np.float32)
    frames = generate.sample_frames(model, primers, four_four(2, 10), 20, make_sampler("vanish_proof"),
                                    np.random.default_rng(0), progress=False)  # fmt: skip
    keras_model, window, offset = model.keras, primers, 0.65
    for step in range(20):
        pred = np.asarray(keras_model(window)) + np.float32(offset)
        offset *= 1.001
        notes = pred.astype(np.uint8)
        np.testing.assert_array_equal(frames[:, step], notes)
        window = np.concatenate([window[:, 1:], notes[:, None].astype(np.float32)], axis=1)
    assert frames.sum() > 0


def test_roll_stats_count_silence_onsets_and_polyphony():
    roll = np.zeros((106, 4), dtype=bool)
    roll[0, 0:2] = roll[1, 0:2] = roll[2, 3] = True  # frames: 2 notes, 2 notes, silent, 1 note
    stats = roll_stats([roll])
    assert stats == {"frames": 4, "silent_fraction": 0.25, "notes_per_step": 0.75, "mean_polyphony": 5 / 3}


def test_note_caps_hold_in_every_generated_frame(model):
    primers = np.random.default_rng(1).random((4, 9, 106)).astype(np.float32)
    sampler = make_sampler("bernoulli", temperature=1.5, min_notes=2, max_notes=3)
    frames = generate.sample_frames(model, primers, four_four(4, 10), 10, sampler, np.random.default_rng(0),
                                    progress=False)  # fmt: skip
    counts = frames.sum(axis=2)
    assert counts.min() >= 2 and counts.max() <= 3


def test_generate_pieces_draws_the_primers_then_the_frames_from_the_params_seed(model, tmp_path):
    """One random generator, seeded from params.seed, draws the excerpts and then every frame: the order
    rollgen has always used, so a seed gives the same music from the stage, the CLI and the served model."""
    model.keras.save(tmp_path / "model.keras")
    model = frame_model.load(tmp_path / "model.keras")  # loaded: it knows its grid, as a trained model does
    data = sequences(random_pieces(3, [30, 25, 40], seed=5))
    params = validate("generate", {"pieces": 3, "steps": 10, "primer_steps": 9, "seed": 4, "temperature": 1.2})
    rolls = generate.generate_pieces(model, params, data, progress=False)
    assert len(rolls) == 3 and all(roll.shape == (106, 10) and roll.dtype == bool for roll in rolls)

    rng = np.random.default_rng(4)
    primers, positions = make_primers(data, 3, 9, rng, model.steps_per_quarter, model.grid)
    sampler = generate.sampler_from_params(params)
    by_hand = generate.sample_frames(model, primers, positions, 10, sampler, rng, progress=False)
    np.testing.assert_array_equal(np.stack(rolls), by_hand.transpose(0, 2, 1).astype(bool))
    other = generate.generate_pieces(model, params.model_copy(update={"seed": 5}), data, progress=False)
    assert not np.array_equal(np.stack(other), np.stack(rolls))


def test_the_sampler_is_the_params_one():
    capped = generate.sampler_from_params(validate("generate", {"temperature": 0.5, "max_notes": 3}))
    assert (type(capped).__name__, capped.temperature, capped.max_notes, capped.min_notes) == (
        "BernoulliSampler",
        0.5,
        3,
        0,
    )
    params = validate("generate", {"sampling": "vanish_proof", "vanish_proof": 0.5, "vanish_inc": 1.01})
    article = generate.sampler_from_params(params)
    assert (type(article).__name__, article.offset, article.growth) == ("VanishProofSampler", 0.5, 1.01)


def test_run_writes_pieces_page_and_quality_report(tmp_path, model):
    model.keras.save(tmp_path / "model.keras")
    frames = np.zeros((40, 106), np.uint8)
    frames[:, 60 - 21] = 255
    frames[20:, 64 - 21] = 255
    windows = tmp_path / "windows"
    write_archive(windows / "test.npz", sequences([frames[:20], frames[20:]]))
    params = validate("generate", {
        "pieces": 2, "steps": 12, "sampling": "threshold", "threshold": 0.5, "min_notes": 1, "max_notes": 2,
        "primer": "test", "primer_steps": 8, "seed": 3,
    })  # fmt: skip
    out = tmp_path / "generated"
    metrics = generate.run(params, tmp_path / "model.keras", windows, out, tmp_path / "generate.json")
    assert sorted(path.name for path in out.iterdir()) == [
        "000.mid", "000.png", "000.wav", "001.mid", "001.png", "001.wav", "index.html",
    ]  # fmt: skip
    assert metrics == json.loads((tmp_path / "generate.json").read_text())
    assert metrics["test"]["pieces"] == 2 and metrics["test"]["pitch_range"] == pytest.approx((0 + 4) / 2)
    assert metrics["test"]["frames"] == 40 and metrics["generated"]["frames"] == 2 * 12
    assert metrics["generated"]["silent_fraction"] == 0  # min_notes 1
    assert metrics["generated"]["mean_polyphony"] <= 2  # max_notes 2
    assert set(metrics["overlap"]) >= {"notes_per_step", "pitch_range"} and metrics["primer"] == "test"


@pytest.mark.parametrize(("name", "primer"), [("article", "none"), ("rnnnade", "val")])
def test_run_generates_from_nothing_or_the_validation_pieces(tmp_path, name, primer):
    keras.utils.set_random_seed(2)
    frame_model.build(TrainParams(model=name), context=9).keras.save(tmp_path / "model.keras")
    windows = tmp_path / "windows"
    write_archive(windows / "test.npz", sequences(random_pieces(2, 30, seed=1)))
    write_archive(windows / "val.npz", sequences(random_pieces(1, 30, seed=2)))
    params = validate("generate", {"pieces": 1, "steps": 20, "temperature": 1.0, "primer": primer, "seed": 3})
    metrics = generate.run(params, tmp_path / "model.keras", windows, tmp_path / "out", tmp_path / "generate.json")
    assert metrics["primer"] == primer and metrics["generated"]["frames"] == 20
    assert (tmp_path / "out" / "000.mid").is_file()


def test_a_window_nade_draws_each_pitch_from_its_conditional_given_the_pitches_below():
    nade = frame_model.wrap(tiny("convnade", seed=4))
    biases = np.random.default_rng(0).normal(-1.0, 2.0, PITCHES).astype(np.float32)
    nade.head.visible_bias.assign(biases)  # some pitches likely, others not: frames with notes to check
    primers = (np.random.default_rng(2).random((5, CONTEXT, PITCHES)) < 0.3).astype(np.float32)
    positions = four_four(5, CONTEXT + 1)
    runs = [
        generate.sample_frames(
            nade, primers, positions, 6, make_sampler("bernoulli"), np.random.default_rng(8), progress=False
        )  # fmt: skip
        for _ in range(2)
    ]
    assert runs[0].shape == (5, 6, PITCHES) and (runs[0] == runs[1]).all() and runs[0].sum() > 0
    greedy = generate.sample_frames(nade, primers, positions, 8, make_sampler("threshold", threshold=0.5), None,
                                    progress=False)  # fmt: skip
    heard = np.concatenate([primers, greedy.astype(np.float32)], axis=1)
    for step in range(8):
        frame = greedy[:, step].astype(np.float32)
        conditionals = np.asarray(nade.keras([heard[:, step : step + CONTEXT], frame]))  # teacher-forced on the draw
        np.testing.assert_array_equal(frame, conditionals > 0.5)  # each pitch given the pitches drawn below it
    assert 0 < greedy.sum() < greedy.size  # notes, and silence: both sides checked


@pytest.mark.parametrize("name", ["nade", "rnnnade"])
def test_note_caps_are_refused_for_a_nade_model(name):
    nade = frame_model.build(TrainParams(model=name), context=9)
    primers = np.zeros((1, 4, 106), np.float32)
    with pytest.raises(ValueError, match="nade"):
        capped = make_sampler("bernoulli", max_notes=3)
        generate.sample_frames(nade, primers, four_four(1, 5), 2, capped, np.random.default_rng(0), progress=False)
    capped_params = validate("generate", {"pieces": 1, "steps": 2, "max_notes": 3})
    with pytest.raises(RollgenError, match=r"generate.max_notes/min_notes apply to factorised models.*set both to 0"):
        generate.generate_pieces(nade, capped_params, None, progress=False)  # the stage's and the CLI's words
