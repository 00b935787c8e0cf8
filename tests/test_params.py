"""params.yaml and the typed models that check it (rollgen.params): the same keys, one set of defaults, and
mistakes that stop a stage at its start with a message naming the file, the key and what would do."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml

from rollgen.params import (
    SECTIONS,
    GenerateParams,
    ModelSizes,
    Params,
    ParamsError,
    TrainParams,
    TransformerNadeParams,
    load_params,
    validate,
)

REPO = Path(__file__).resolve().parents[1]


def write_params(folder: Path, **sections: dict) -> Path:
    """params.yaml in `folder`: the repository's, with `sections`' keys set."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in sections.items():
        params.setdefault(section, {}).update(values)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def message(path: Path, section: str | None = None) -> str:
    """The message `load_params` stops with."""
    with pytest.raises(ParamsError) as raised:
        load_params(section, path=path)
    return str(raised.value)


def test_params_yaml_lists_every_key_with_its_default():
    """params.yaml documents the models: every section and key (each model's sizes too), each with the model's
    default."""
    written = yaml.safe_load((REPO / "params.yaml").read_text())
    assert list(written) == list(SECTIONS)
    for section, model in SECTIONS.items():
        assert set(written[section]) == set(model.model_fields), section
    for name, field in TrainParams.model_fields.items():
        if isinstance(field.default, ModelSizes):
            assert set(written["train"][name]) == set(type(field.default).model_fields), f"train.{name}"
    assert load_params(path=REPO / "params.yaml") == Params()  # the values validate, and are the defaults


def test_a_section_comes_back_typed_and_the_whole_file_as_params(tmp_path):
    path = write_params(tmp_path, train={"epochs": 3, "model": "nade"})
    train = load_params("train", path=path)
    assert isinstance(train, TrainParams) and (train.epochs, train.model, train.batch_size) == (
        3,
        "nade",
        TrainParams().batch_size,
    )
    assert load_params(path=path).train == train
    assert load_params(path=path).model_dump()["train"]["epochs"] == 3  # a dict for code that wants one


def test_a_misspelled_key_names_the_file_the_section_and_the_valid_keys(tmp_path):
    path = write_params(tmp_path, train={"epoch": 10})
    assert message(path, "train") == (
        f"{path}: train.epoch is not a train parameter; valid: average_epochs, batch_size, convlstm, convnade, "
        "distribute, epochs, init_from, learning_rate, loss, lr_schedule, lstm, model, nade, patience, pitchnade, "
        "rnnnade, seed, sequence_steps, slices, transformernade, transpose, validation_freq"
    )
    path.write_text(path.read_text() + "trian:\n  epochs: 3\n")
    assert f"{path}: trian is not a section; valid: ingest, images, windows, train, evaluate, generate" in message(path)


TEMPERATURE = "must be auto or a number above 0 and at most 10"  # generate.temperature


@pytest.mark.parametrize(
    ("section", "values", "expected"),
    [
        ("train", {"epochs": "ten"}, "train.epochs must be an integer, not 'ten'"),
        ("train", {"epochs": 2.5}, "train.epochs must be an integer, not 2.5"),
        ("train", {"epochs": 0}, "train.epochs must be greater than 0, not 0"),
        ("train", {"learning_rate": "fast"}, "train.learning_rate must be a number, not 'fast'"),
        (
            "train",
            {"model": "gpt"},
            "train.model must be 'article', 'convlstm', 'lstm', 'nade', 'convnade', 'rnnnade', "
            "'pitchnade' or 'transformernade', not 'gpt'",
        ),  # fmt: skip
        ("train", {"model": "seed"}, "train.model: seed is now called article"),  # its name before
        ("train", {"transformernade": {"heads": 0}}, "train.transformernade.heads must be greater than 0, not 0"),
        (
            "train",
            {"transformernade": {"width": 100, "heads": 3}},
            "train.transformernade: width 100 must be a multiple of heads 3",
        ),  # fmt: skip
        (
            "train",
            {"transformernade": {"activation": "tanh"}},
            "train.transformernade.activation must be 'relu' or 'gelu', not 'tanh'",
        ),  # fmt: skip
        ("train", {"rnnnade": {"dropout": 1.0}}, "train.rnnnade.dropout must be less than 1, not 1.0"),
        ("train", {"lstm": {"units": "many"}}, "train.lstm.units must be an integer, not 'many'"),
        ("train", {"nade": 64}, "train.nade must be a mapping of keys to values, not 64"),
        (
            "train",
            {"pitchnade": {"unit": 16}},
            "train.pitchnade.unit is not a train.pitchnade parameter; valid: dropout, filters, nade_units, units",
        ),  # fmt: skip
        ("ingest", {"include_drums": "yes"}, "ingest.include_drums must be true or false, not 'yes'"),
        ("ingest", {"timeout_s": "60"}, "ingest.timeout_s must be a number, not '60'"),  # quoted: no guessing
        ("ingest", {"source": ""}, "ingest.source must not be empty"),
        ("windows", {"split": "random"}, "windows.split must be 'auto', 'folders' or 'groups', not 'random'"),
        (
            "windows",
            {"val_fraction": 0.5, "test_fraction": 0.5},
            "windows: val_fraction + test_fraction must be below 1, not 1",
        ),  # fmt: skip
        ("evaluate", {"highest_pitch": 127}, "evaluate.highest_pitch must be at most 126, not 127"),
        (
            "generate",
            {"sampling": "greedy"},
            "generate.sampling must be 'bernoulli', 'threshold' or 'vanish_proof', not 'greedy'",
        ),  # fmt: skip
        ("generate", {"soundfont": None}, "generate.soundfont must be a string, not None"),
        ("generate", {"temperature": "hot"}, f"generate.temperature: {TEMPERATURE}, not 'hot'"),
        ("generate", {"temperature": 0}, f"generate.temperature: {TEMPERATURE}, not 0"),
        # .inf and .nan in YAML: a temperature that samples noise (or nothing) is a mistake
        ("generate", {"temperature": float("inf")}, f"generate.temperature: {TEMPERATURE}, not inf"),
        ("generate", {"temperature": float("nan")}, f"generate.temperature: {TEMPERATURE}, not nan"),
        ("generate", {"temperature": 1e9}, f"generate.temperature: {TEMPERATURE}, not 1000000000.0"),
        ("generate", {"temperatures": [0.9, -1]}, "generate.temperatures.1 must be greater than 0, not -1"),
        ("generate", {"temperatures": [float("inf")]}, "generate.temperatures.0 must be a finite number, not inf"),
        ("generate", {"temperatures": [11.0]}, "generate.temperatures.0 must be at most 10, not 11.0"),
    ],
)
def test_a_wrong_value_names_the_key_what_it_must_be_and_what_it_is(tmp_path, section, values, expected):
    path = write_params(tmp_path, **{section: values})
    assert message(path) == f"{path}: {expected}"


def test_every_section_is_checked_whichever_a_stage_asks_for(tmp_path):
    """A typo in generate stops ingest too: found at the first stage, not after hours of training."""
    path = write_params(tmp_path, generate={"temprature": 0.5}, train={"epochs": "ten"})
    assert message(path, "ingest").splitlines() == [
        f"{path}: train.epochs must be an integer, not 'ten'",
        f"{path}: generate.temprature is not a generate parameter; valid: include_primer, max_notes, min_notes, "
        "onset_temperature, pieces, primer, primer_steps, sampling, seed, soundfont, steps, temperature, temperatures, "
        "tempo, threshold, vanish_inc, vanish_proof",
    ]


def test_a_section_left_out_takes_the_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochs: 2\n")
    assert load_params(path=path) == Params(train=TrainParams(epochs=2))
    path.write_text("")
    assert load_params(path=path) == Params()


def test_a_stage_stops_at_its_start_with_the_message_alone(tmp_path):
    write_params(tmp_path, images={"chunk_step": 100})
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    result = subprocess.run([sys.executable, str(REPO / "stages/images.py")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "images: params.yaml: images.chunk_step is not an images parameter;"
        " valid: chunk_steps, grid, mode, steps_per_quarter"
    )
    assert "Traceback" not in result.stderr and not (tmp_path / "data").exists()


def test_a_dict_is_checked_and_completed_with_the_defaults():
    """What a caller with a dict does before it calls a stage's function (generate.run, the generator pyfunc)."""
    assert validate("train", {"model": "article", "epochs": 2}) == TrainParams(model="article", epochs=2)
    narrow = validate("train", {"transformernade": {"width": 64}})  # a size given alone: the others' defaults
    assert narrow.architecture == TransformerNadeParams(width=64) and narrow.architecture.heads == 4
    assert validate("generate", {}).model_dump() == GenerateParams().model_dump()
    with pytest.raises(ParamsError, match=r"^train\.epoch is not a train parameter; valid: average_epochs, "):
        validate("train", {"epoch": 2})
    with pytest.raises(ParamsError, match=r"^no 'tran:' section; sections: ingest, images, "):
        validate("tran", {})


def choices(model, key: str) -> set:
    return set(typing.get_args(model.model_fields[key].annotation))


def test_the_choices_are_the_names_their_modules_define():
    """The models repeat these names so that reading params imports no TensorFlow; here they must agree."""
    from rollgen.data import images, splits, windows
    from rollgen.models import builders as models
    from rollgen.models import encoders, sampling
    from rollgen.music import midi, roll
    from rollgen.training import distribute, trainer

    assert choices(TrainParams, "model") == set(models.MODELS)
    assert choices(TransformerNadeParams, "activation") == set(encoders.ACTIVATIONS)
    sized = {name for name, field in TrainParams.model_fields.items() if isinstance(field.default, ModelSizes)}
    assert sized == set(models.MODELS) - {"article"}  # every model has its sizes but the article's network
    assert choices(TrainParams, "loss") == set(trainer.LOSSES)
    assert choices(TrainParams, "distribute") == set(distribute.STRATEGIES)
    assert choices(SECTIONS["ingest"], "parser") == set(midi.PARSERS)
    assert choices(SECTIONS["images"], "mode") == set(images.MODES)
    assert choices(SECTIONS["images"], "grid") == set(roll.GRIDS)
    assert choices(SECTIONS["windows"], "mode") == set(windows.MODES)
    assert choices(SECTIONS["windows"], "split") == set(splits.MODES)
    assert choices(GenerateParams, "sampling") == set(sampling.MODES)
    pitches = {bound.__class__.__name__: getattr(bound, "ge", getattr(bound, "le", None))
               for bound in SECTIONS["evaluate"].model_fields["highest_pitch"].metadata}  # fmt: skip
    assert pitches == {"Ge": roll.LOWEST_PITCH, "Le": roll.LOWEST_PITCH + roll.NUM_PITCHES - 1}


def test_stage_functions_take_typed_sections_and_keep_no_default_of_a_param():
    """Defaults live in the models alone: the data and evaluate stages' functions take their typed sections
    (rollgen.params), a default in their signatures is a path (rollgen.paths), and `rollgen check` offers the
    models' defaults."""
    from rollgen import cli
    from rollgen.data import images, ingest, windows
    from rollgen.evaluation import evaluate

    for function in (ingest.run, ingest.examine, ingest.examine_all, images.run, windows.run, evaluate.run):
        hints = typing.get_type_hints(function)
        taken = {name for name, hint in hints.items() if hint in SECTIONS.values()}
        assert taken, f"{function.__module__}.{function.__name__} takes no params section"
        for name, parameter in inspect.signature(function).parameters.items():
            if parameter.default is not parameter.empty:
                assert isinstance(parameter.default, Path), f"{function.__module__}.{function.__name__}: {name}"
    params = Params()
    check = {name: value.default.default for name, value in inspect.signature(cli.check).parameters.items()}
    assert (check["workers"], check["include_drums"], check["timeout"]) == (
        params.ingest.workers, params.ingest.include_drums, params.ingest.timeout_s,
    )  # fmt: skip
    assert (check["steps_per_quarter"], check["grid"]) == (params.images.steps_per_quarter, params.images.grid)


def test_the_generate_command_checks_its_options_as_the_stage_checks_params(tmp_path):
    from typer.testing import CliRunner

    from rollgen.cli import app

    (tmp_path / "model.keras").write_bytes(b"")  # the options are checked before the model is read
    result = CliRunner().invoke(app, ["generate", "--model", str(tmp_path / "model.keras"), "--sampling", "greedy"])
    assert result.exit_code == 2
    shown = " ".join(result.output.replace("│", " ").split())  # as one line, without Rich's box
    assert "generate.sampling must be 'bernoulli', 'threshold' or 'vanish_proof', not 'greedy'" in shown
