"""Generation with real (untrained) Keras models: every piece advances together, seeded; the article's loop;
generate_pieces, the one way rollgen generates; the generate stage's pieces, page and quality report."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from rollgen.data.archive import load_sequences, sounding
from rollgen.errors import RollgenError
from rollgen.evaluation.quality import GATES, quality_report
from rollgen.evaluation.stats import roll_stats
from rollgen.generation import generate
from rollgen.generation.primers import make_primers
from rollgen.models import frame_model
from rollgen.models.onsets import as_levels
from rollgen.music import meter
from rollgen.music.midi import read_midi
from rollgen.music.roll import HELD, ONSET, roll_to_notes, strike_runs
from rollgen.params import TrainParams, TransformerNadeParams, validate
from tests.archives import random_pieces, sequences, write_archive
from tests.defaults import STEPS_PER_QUARTER, sampler_with
from tests.generation.test_primers import primer_midi
from tests.tiny import CONTEXT, PITCHES, tiny


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return frame_model.build(TrainParams(model="article"), context=9)


def four_four(pieces: int, steps: int) -> np.ndarray:
    """Positions (pieces, steps, 4) of 4/4 from a bar line."""
    return np.repeat(meter.default_positions(steps, STEPS_PER_QUARTER)[None], pieces, axis=0).astype(np.int32)


def test_all_pieces_advance_together_and_the_seed_fixes_the_music(model):
    primers = np.random.default_rng(1).random((3, 9, 106)).astype(np.float32)
    runs = [
        generate.sample_frames(
            model, primers, four_four(3, 10), 12, sampler_with("bernoulli"), np.random.default_rng(9), progress=False
        )  # fmt: skip
        for _ in range(2)
    ]
    assert runs[0].shape == (3, 12, 106) and runs[0].dtype == np.uint8
    assert (runs[0] == runs[1]).all() and runs[0].sum() > 0
    assert set(np.unique(runs[0])) <= {0, HELD, ONSET}  # levels: a window model strikes where a pitch starts
    threshold = sampler_with("threshold", threshold=0.3)
    together = generate.sample_frames(model, primers, four_four(3, 10), 6, threshold, None, progress=False)
    for piece in range(3):  # a piece in a batch is the piece alone
        alone = generate.sample_frames(model, primers[piece : piece + 1], four_four(1, 10), 6, threshold, None,
                                       progress=False)  # fmt: skip
        np.testing.assert_array_equal(together[piece], alone[0])


def test_vanish_proof_generation_is_the_articles_loop(model):
    """The article's loop over the Keras model by hand: add the growing offset, cast, slide the window."""
    primers = strike_runs(np.random.default_rng(3).random((2, 9, 106)) < 0.5, time_axis=1)
    frames = generate.sample_frames(model, primers, four_four(2, 10), 20, sampler_with("vanish_proof"),
                                    np.random.default_rng(0), progress=False)  # fmt: skip
    keras_model, window, offset = model.keras, sounding(primers).astype(np.float32), 0.65
    for step in range(20):
        pred = np.asarray(keras_model(window)) + np.float32(offset)
        offset *= 1.001
        notes = pred.astype(np.uint8) > 0
        np.testing.assert_array_equal(sounding(frames[:, step]), notes)
        window = np.concatenate([window[:, 1:], notes[:, None].astype(np.float32)], axis=1)
    assert frames.sum() > 0


def test_roll_stats_count_silence_onsets_and_polyphony():
    roll = np.zeros((106, 4), dtype=bool)
    roll[0, 0:2] = roll[1, 0:2] = roll[2, 3] = True  # frames: 2 notes, 2 notes, silent, 1 note
    stats = roll_stats([roll])
    assert stats == {"frames": 4, "silent_fraction": 0.25, "notes_per_step": 0.75, "mean_polyphony": 5 / 3}


def test_note_caps_hold_in_every_generated_frame(model):
    primers = np.random.default_rng(1).random((4, 9, 106)).astype(np.float32)
    sampler = sampler_with("bernoulli", temperature=1.5, min_notes=2, max_notes=3)
    frames = generate.sample_frames(model, primers, four_four(4, 10), 10, sampler, np.random.default_rng(0),
                                    progress=False)  # fmt: skip
    counts = sounding(frames).sum(axis=2)
    assert counts.min() >= 2 and counts.max() <= 3


def test_generate_pieces_draws_the_primers_then_the_frames_from_the_params_seed(model, tmp_path):
    """One random generator, seeded from params.seed, draws the excerpts and then every frame: the order
    rollgen has always used, so a seed gives the same music from the stage, the CLI and the served model."""
    model.keras.save(tmp_path / "model.keras")
    model = frame_model.load(tmp_path / "model.keras")  # loaded: it knows its grid, as a trained model does
    data = sequences(random_pieces(3, [30, 25, 40], seed=5))
    params = validate("generate", {"pieces": 3, "steps": 10, "primer_steps": 9, "seed": 4, "temperature": 1.2})
    pieces = generate.generate_pieces(model, params, data, progress=False)
    rolls = [piece.roll for piece in pieces]
    assert len(rolls) == 3 and all(roll.shape == (106, 10) and roll.dtype == np.uint8 for roll in rolls)  # levels

    rng = np.random.default_rng(4)
    primers, positions = make_primers(data, 3, 9, rng, model.steps_per_quarter, model.grid)
    sampler = generate.sampler_from_params(params)
    by_hand = generate.sample_frames(model, primers, positions, 10, sampler, rng, progress=False)
    np.testing.assert_array_equal(np.stack(rolls), by_hand.transpose(0, 2, 1))
    for piece, primer, where in zip(pieces, as_levels(primers, 1), positions):  # its primer, every position
        np.testing.assert_array_equal(piece.primer, primer.T)
        assert piece.positions.shape == (19, 4) and (piece.positions[:10] == where).all()
        np.testing.assert_array_equal(piece.positions[10:], meter.next_position(piece.positions[9:-1]))
    other = generate.generate_pieces(model, params.model_copy(update={"seed": 5}), data, progress=False)
    assert not np.array_equal(np.stack([piece.roll for piece in other]), np.stack(rolls))


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
    write_archive(windows / "val.npz", sequences([frames[20:]]))
    write_archive(windows / "train.npz", sequences([frames[:20]]))
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
    # The generated steps are compared with the validation pieces, gate by gate; the primers count nowhere.
    assert metrics["val"]["frames"] == 20 and metrics["val"]["mean_polyphony"] == 2
    assert metrics["gates"]["mean_polyphony"]["val"] == 2 and metrics["primer_steps"] == 8
    assert metrics["gates_passed"] == sum(gate["pass"] for gate in metrics["gates"].values())
    # The data's own pieces meet the same gates: the one training piece holds one note where val holds two.
    assert metrics["train"]["pieces"] == 1 and metrics["train"]["mean_polyphony"] == 1
    own = metrics["data_gates"]["train"]
    assert {"mean_polyphony", "notes_per_step"} <= set(own["failed"])
    assert own["gates_passed"] == len(GATES) - len(own["failed"])
    assert set(metrics["data_gates"]) == {"train", "test"}
    assert "temperature" not in metrics  # threshold sampling has none
    written = read_midi((out / "000.mid").read_bytes())
    assert written.length_quarters > 12 / 4  # the primer's 8 steps before the 12 generated ones


@pytest.mark.parametrize(("name", "primer"), [("article", "none"), ("rnnnade", "val")])
def test_run_generates_from_nothing_or_the_validation_pieces(tmp_path, name, primer):
    keras.utils.set_random_seed(2)
    frame_model.build(TrainParams(model=name), context=9).keras.save(tmp_path / "model.keras")
    windows = tmp_path / "windows"
    write_archive(windows / "test.npz", sequences(random_pieces(2, 30, seed=1)))
    write_archive(windows / "val.npz", sequences(random_pieces(1, 30, seed=2)))
    write_archive(windows / "train.npz", sequences(random_pieces(2, 30, seed=3)))
    params = validate("generate", {"pieces": 1, "steps": 20, "temperature": 1.0, "primer": primer, "seed": 3})
    metrics = generate.run(params, tmp_path / "model.keras", windows, tmp_path / "out", tmp_path / "generate.json")
    assert metrics["primer"] == primer and metrics["generated"]["frames"] == 20
    assert metrics["temperature"] == {"value": 1.0, "auto": False}
    assert (tmp_path / "out" / "000.mid").is_file()


def test_a_window_nade_draws_each_pitch_from_its_conditional_given_the_pitches_below():
    nade = frame_model.wrap(tiny("convnade", seed=4))
    biases = np.random.default_rng(0).normal(-1.0, 2.0, PITCHES).astype(np.float32)
    nade.head.visible_bias.assign(biases)  # some pitches likely, others not: frames with notes to check
    primers = (np.random.default_rng(2).random((5, CONTEXT, PITCHES)) < 0.3).astype(np.float32)
    positions = four_four(5, CONTEXT + 1)
    runs = [
        generate.sample_frames(
            nade, primers, positions, 6, sampler_with("bernoulli"), np.random.default_rng(8), progress=False
        )  # fmt: skip
        for _ in range(2)
    ]
    assert runs[0].shape == (5, 6, PITCHES) and (runs[0] == runs[1]).all() and runs[0].sum() > 0
    greedy = generate.sample_frames(nade, primers, positions, 8, sampler_with("threshold", threshold=0.5), None,
                                    progress=False)  # fmt: skip
    heard = np.concatenate([primers, sounding(greedy).astype(np.float32)], axis=1)
    for step in range(8):
        frame = sounding(greedy[:, step]).astype(np.float32)
        conditionals = np.asarray(nade.keras([heard[:, step : step + CONTEXT], frame]))  # teacher-forced on the draw
        np.testing.assert_array_equal(frame, conditionals > 0.5)  # each pitch given the pitches drawn below it
    assert 0 < sounding(greedy).sum() < greedy.size  # notes, and silence: both sides checked


@pytest.mark.parametrize("name", ["nade", "rnnnade"])
def test_note_caps_are_refused_for_a_nade_model(name):
    nade = frame_model.build(TrainParams(model=name), context=9)
    primers = np.zeros((1, 4, 106), np.float32)
    with pytest.raises(ValueError, match="nade"):
        capped = sampler_with("bernoulli", max_notes=3)
        generate.sample_frames(nade, primers, four_four(1, 5), 2, capped, np.random.default_rng(0), progress=False)
    capped_params = validate("generate", {"pieces": 1, "steps": 2, "max_notes": 3, "temperature": 1.0})
    with pytest.raises(RollgenError, match=r"generate.max_notes/min_notes apply to factorised models.*set both to 0"):
        generate.generate_pieces(nade, capped_params, None, progress=False)  # the stage's and the CLI's words


def in_three_four(data):
    """The same Sequences, every piece in 3/4 from a bar line."""
    positions = [
        meter.frame_positions(meter.Meter.from_steps([(0, 3, 4)], STEPS_PER_QUARTER), length)
        for length in np.diff(data.offsets)
    ]
    return dataclasses.replace(data, positions=np.concatenate(positions).astype(np.int16))


def test_a_waltz_primer_gives_a_waltz_with_its_primer_first_or_left_out(model, tmp_path):
    model.keras.save(tmp_path / "model.keras")
    model = frame_model.load(tmp_path / "model.keras")
    song = tmp_path / "waltz.mid"
    song.write_bytes(primer_midi(4, three_four=True))  # C4 D4 E4 F4 in 3/4: 16 steps
    params = validate("generate", {"pieces": 1, "steps": 16, "primer_steps": 8, "temperature": 1.0, "seed": 1})
    [piece] = generate.generate_pieces(model, params, song, progress=False)
    assert piece.primer_steps == 8 and piece.positions[:, meter.STEPS_PER_BAR].tolist() == [12] * 24
    whole = read_midi(piece.midi(4, 100, include_primer=True))
    assert whole.time_signatures == ((0, 3, 4),)
    assert whole.pitches[:2].tolist() == [60, 62] and whole.starts[1] == whole.ticks_per_quarter  # the primer first
    alone = read_midi(piece.midi(4, 100, include_primer=False))
    quarter = alone.ticks_per_quarter  # the new steps start 8 steps into a bar of 12: a one-beat pickup, then 3/4
    assert alone.time_signatures == ((0, 1, 4), (quarter, 3, 4))
    assert len(alone.pitches) == len(roll_to_notes(piece.roll).pitches)  # the generated notes alone


def test_from_nothing_a_piece_starts_in_the_training_pieces_commonest_meter(model, tmp_path):
    model.keras.save(tmp_path / "model.keras")
    windows = tmp_path / "windows"
    for split, seed in (("train", 1), ("val", 2), ("test", 3)):
        write_archive(windows / f"{split}.npz", in_three_four(sequences(random_pieces(2, 40, seed=seed))))
    params = validate("generate", {"pieces": 1, "steps": 20, "primer": "none", "temperature": 1.0, "seed": 3})
    generate.run(params, tmp_path / "model.keras", windows, tmp_path / "out", tmp_path / "generate.json")
    assert read_midi((tmp_path / "out" / "000.mid").read_bytes()).time_signatures == ((0, 3, 4),)


def fitting_setup(tmp_path, model):
    """A saved model, a params with auto temperature over three temperatures, and a windows folder of val.npz."""
    model.keras.save(tmp_path / "model.keras")
    windows = tmp_path / "windows"
    write_archive(windows / "val.npz", sequences(random_pieces(3, 60, seed=2)))
    params = validate("generate", {"pieces": 1, "steps": 8, "temperatures": [0.5, 1.0, 2.0], "seed": 3})
    return frame_model.load(tmp_path / "model.keras"), params, windows


def test_an_auto_temperature_is_chosen_on_the_validation_pieces_by_the_gates(model, tmp_path):
    model, params, windows = fitting_setup(tmp_path, model)
    assert params.temperature == "auto"
    with pytest.raises(RollgenError, match="generate.temperature is auto"):
        generate.generate_pieces(model, params, None, progress=False)  # never a silent default
    fitted, record = generate.with_temperature(model, params, windows)
    assert record["auto"] and fitted.temperature == record["value"] in (0.5, 1.0, 2.0)
    assert list(record["curve"]) == ["0.5", "1.0", "2.0"]
    # Each point of the curve is the quality report of FIT_PIECES pieces as long as those asked for.
    val = load_sequences("val", windows)
    assert generate.fit_shape(params) == (generate.FIT_PIECES, params.steps)
    longest = (generate.FIT_PIECES, generate.FIT_MAX_STEPS)
    assert generate.fit_shape(params.model_copy(update={"steps": 10**6})) == longest
    trial = params.model_copy(update={"pieces": generate.FIT_PIECES, "steps": params.steps, "temperature": 2.0})
    rolls = [piece.roll for piece in generate.generate_pieces(model, trial, val, progress=False)]
    val_rolls = [val.sequence(number).T for number in range(len(val))]  # levels
    report = quality_report(rolls, val_rolls, model.steps_per_quarter, "val")
    point = record["curve"]["2.0"]
    assert point["gates_passed"] == report["gates_passed"] and point["gates_distance"] == report["gates_distance"]
    assert point["silent_fraction"] == report["generated"]["silent_fraction"]
    # The choice: the most gates passed, then the nearest.
    best = max(point["gates_passed"] for point in record["curve"].values())
    nearest = min(p["gates_distance"] for p in record["curve"].values() if p["gates_passed"] == best)
    assert record["curve"][str(fitted.temperature)]["gates_distance"] == nearest


@pytest.fixture(scope="module")
def onset_model():
    """A small Transformer NADE with its onset head, untrained: its pieces fail gates on random pieces."""
    keras.utils.set_random_seed(0)
    sizes = TransformerNadeParams(width=8, heads=2, layers=1, expansion=1, nade_units=4)
    return frame_model.build(TrainParams(transformernade=sizes), context=9)


def test_an_onset_temperature_is_fitted_at_the_chosen_temperature_where_a_gate_fails(onset_model, tmp_path):
    model, params, windows = fitting_setup(tmp_path, onset_model)
    fitted, record = generate.with_temperature(model, params, windows)
    chosen = record["curve"][str(fitted.temperature)]
    assert model.draws_onsets and chosen["gates_passed"] < len(GATES)
    onset = record["onset"]
    assert fitted.onset_temperature == onset["value"] in (0.5, 1.0, 2.0) and list(onset["curve"]) == [
        "0.5",
        "1.0",
        "2.0",
    ]
    # The onset temperature equal to the temperature draws what the temperature alone drew; another moves it.
    assert onset["curve"][str(fitted.temperature)] == chosen
    assert any(point != chosen for point in onset["curve"].values())
    assert onset["curve"][str(fitted.onset_temperature)]["gates_passed"] >= chosen["gates_passed"]
    # A fixed onset temperature is kept; the sampler reads it.
    fixed = params.model_copy(update={"onset_temperature": 1.5})
    kept, record = generate.with_temperature(model, fixed, windows)
    assert "onset" not in record and kept.onset_temperature == 1.5
    assert generate.sampler_from_params(kept).onset_temperature == 1.5


def test_pieces_that_pass_every_gate_at_the_temperature_leave_the_onsets_to_it(onset_model, tmp_path, monkeypatch):
    model, params, windows = fitting_setup(tmp_path, onset_model)
    measured = generate.sampling_quality

    def passing(*args):
        return {**measured(*args), "gates_passed": len(GATES)}

    monkeypatch.setattr(generate, "sampling_quality", passing)
    fitted, record = generate.with_temperature(model, params, windows)
    assert "onset" not in record and fitted.onset_temperature == "auto"
    assert generate.sampler_from_params(fitted).onset_temperature == fitted.temperature


def test_the_test_pieces_never_choose_the_temperature(model, tmp_path):
    """Whatever test.npz holds, or if there is none, the same choice: only val.npz is read."""
    model, params, windows = fitting_setup(tmp_path, model)
    without_test = generate.with_temperature(model, params, windows)
    write_archive(windows / "test.npz", sequences([np.full((60, 106), 255, np.uint8)]))  # every pitch, always
    with_garbage = generate.with_temperature(model, params, windows)
    assert with_garbage == without_test
    # Naming the test archive itself reads the val.npz beside it, never the file named.
    assert generate.with_temperature(model, params, windows / "test.npz") == without_test
    (windows / "val.npz").unlink()
    with pytest.raises(RollgenError, match=r"validation pieces, .*val.npz, which does not exist"):
        generate.with_temperature(model, params, windows)


def test_a_fixed_temperature_or_another_sampling_chooses_nothing(model, tmp_path):
    model, params, windows = fitting_setup(tmp_path, model)
    (windows / "val.npz").unlink()  # not read
    fixed = params.model_copy(update={"temperature": 0.9})
    assert generate.with_temperature(model, fixed, windows) == (fixed, {"value": 0.9, "auto": False})
    threshold = params.model_copy(update={"sampling": "threshold"})
    assert generate.with_temperature(model, threshold, windows) == (threshold, {})


def test_the_best_temperature_passes_the_most_gates_then_lies_nearest_then_comes_first():
    points = [("0.7", 5, 0.2), ("0.9", 6, 0.9), ("1.0", 6, 0.4), ("1.1", 6, 0.4)]
    curve = {name: {"gates_passed": passed, "gates_distance": distance} for name, passed, distance in points}
    assert generate.best_temperature(curve) == 1.0
    assert generate.best_temperature({"0.8": {"gates_passed": 0, "gates_distance": None}}) == 0.8
