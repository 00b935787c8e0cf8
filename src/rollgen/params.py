"""params.yaml, checked: one typed model per section (one section per stage), every default in them, and an
unknown key or a value of the wrong type an error that names the file, the key and what would do.

    params = load_params()                    # the whole file; every section is checked, whichever is asked for
    params.train.epochs                       # 90
    load_params("generate").sampling          # 'bernoulli'
    validate("train", {"model": "article"})   # a dict checked and completed with the defaults: a TrainParams

Each model's sizes are params too, under its name in `train:` (`train.transformernade.width`): a block per
model, so each key has one default (the sizes the model was chosen with) whichever model is trained.

params.yaml says what each key means and lists every key with its default (tests/test_params.py checks it). Choices
(`Literal`) repeat names defined where they are used (`rollgen.models.builders.MODELS`, ...), so reading params imports
no TensorFlow nor any module a stage does not run; the same test checks each list against its module.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from rollgen import paths
from rollgen.errors import RollgenError


class Section(BaseModel):
    """One stage's params. Strict: a YAML value of the wrong type is an error, not converted ('10' is no int)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class IngestParams(Section):
    source: str = Field("music21:bach", min_length=1)
    limit: NonNegativeInt = 0
    workers: NonNegativeInt = 0
    max_quarters: PositiveFloat = 20_000.0
    max_seconds: PositiveFloat = 7_200.0
    include_drums: bool = False
    parser: Literal["fast", "py_midicsv"] = "fast"  # rollgen.music.midi.PARSERS
    timeout_s: PositiveFloat = 600.0  # processor seconds: rollgen.data.limits
    memory_mb: PositiveInt = 2_048


class ImagesParams(Section):
    mode: Literal["lossless", "article"] = "lossless"  # rollgen.data.images.MODES
    chunk_steps: PositiveInt = 106
    steps_per_quarter: PositiveInt = 4
    grid: Literal["nearest", "sample", "floor"] = "nearest"  # rollgen.music.roll.GRIDS

    @model_validator(mode="after")
    def article_mode_floors(self) -> ImagesParams:
        if self.mode == "article" and self.grid != "floor":
            raise ValueError("images.mode article draws the article's grid: set images.grid to floor")
        return self


class WindowsParams(Section):
    steps: PositiveInt = 9
    mode: Literal["next", "article"] = "next"  # rollgen.data.windows.MODES
    split: Literal["auto", "folders", "groups"] = "auto"  # rollgen.data.splits.MODES
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _leaves_pieces_to_train_on(self) -> WindowsParams:
        if (total := self.val_fraction + self.test_fraction) >= 1:
            raise ValueError(f"val_fraction + test_fraction must be below 1, not {total:g}")
        return self


ModelName = Literal["article", "convlstm", "lstm", "nade", "convnade", "rnnnade", "pitchnade", "transformernade"]
RENAMED_MODELS = {"seed": "article"}  # train.model names of old params and saved models -> their names now
Dropout = Annotated[float, Field(ge=0, lt=1)]
MAX_TEMPERATURE = 10.0  # a trained model's probabilities are near a coin toss there: past it, inf, nan are mistakes
Temperature = Annotated[float, Field(gt=0, le=MAX_TEMPERATURE, allow_inf_nan=False)]


class ModelSizes(Section):
    """The sizes of one model, under its name in `train:`; the model train.model names reads its own."""


class TransformerNadeParams(ModelSizes):
    """transformernade: a causal Transformer (rollgen.models.encoders.TransformerEncoder) under a NADE head."""

    width: PositiveInt = 128
    heads: PositiveInt = 4
    layers: PositiveInt = 2
    expansion: PositiveInt = 4  # the feed-forward network's width, in multiples of `width`
    activation: Literal["relu", "gelu"] = "relu"  # rollgen.models.encoders.ACTIVATIONS
    dropout: Dropout = 0.1
    attention_dropout: Dropout = 0.0
    relative: bool = True  # a learnt bias per head and distance on the attention scores
    noise: Dropout = 0.0  # spurious notes in the frames attention reads, in training: TransformerEncoder
    key_summary: bool = True  # read the pitch classes heard since the piece began: rollgen.models.key_summary
    nade_units: PositiveInt = 128

    @model_validator(mode="after")
    def _heads_share_the_width(self) -> TransformerNadeParams:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be a multiple of heads {self.heads}")
        return self


class RnnNadeParams(ModelSizes):
    """rnnnade: LSTM layers over the sequence (rollgen.models.encoders.LstmEncoder) under a NADE head."""

    units: PositiveInt = 256
    layers: PositiveInt = 1
    dropout: Dropout = 0.1
    nade_units: PositiveInt = 64


class PitchNadeParams(ModelSizes):
    """pitchnade: one LSTM shared by every pitch (rollgen.models.encoders.PitchEncoder) under a NADE head."""

    units: PositiveInt = 32
    filters: PositiveInt = 16
    dropout: Dropout = 0.1
    nade_units: PositiveInt = 64


class ConvNadeParams(ModelSizes):
    """convnade: a ConvLSTM over the window (rollgen.models.builders.convlstm_features) under a NADE head."""

    filters: PositiveInt = 16
    kernel: PositiveInt = 7
    nade_units: PositiveInt = 64


class NadeParams(ModelSizes):
    """nade: an LSTM over the window under a NADE head."""

    units: PositiveInt = 128
    nade_units: PositiveInt = 64


class ConvLstmParams(ModelSizes):
    """convlstm: a ConvLSTM over the window, one sigmoid per pitch."""

    filters: PositiveInt = 16
    kernel: PositiveInt = 7


class LstmParams(ModelSizes):
    """lstm: an LSTM over the window, one sigmoid per pitch."""

    units: PositiveInt = 128


class TrainParams(Section):
    model: ModelName = "transformernade"  # rollgen.models.builders.MODELS
    loss: Literal["bce", "mse"] = "bce"  # rollgen.training.trainer.LOSSES
    epochs: PositiveInt = 90
    batch_size: PositiveInt = 8
    sequence_steps: PositiveInt = 128
    learning_rate: PositiveFloat = 0.004
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    patience: NonNegativeInt = 8
    validation_freq: PositiveInt = 2  # rollgen.training.train.validation_due
    transpose: NonNegativeInt = 2
    average_epochs: float = Field(0.0, ge=0)  # rollgen.training.trainer.averaging (0: the weights as trained)
    init_from: str = ""  # a model in pretrained/ to start from: rollgen.training.pretrained
    seed: NonNegativeInt = 42
    distribute: Literal["none", "mirrored", "multi_worker"] = "none"  # rollgen.training.distribute.STRATEGIES
    slices: PositiveInt | Literal["auto"] = "auto"  # rollgen.training.distribute.batch_slices
    transformernade: TransformerNadeParams = TransformerNadeParams()
    rnnnade: RnnNadeParams = RnnNadeParams()
    pitchnade: PitchNadeParams = PitchNadeParams()
    convnade: ConvNadeParams = ConvNadeParams()
    nade: NadeParams = NadeParams()
    convlstm: ConvLstmParams = ConvLstmParams()
    lstm: LstmParams = LstmParams()

    @field_validator("model", mode="before")
    @classmethod
    def _not_an_old_name(cls, value: Any) -> Any:
        if isinstance(value, str) and value in RENAMED_MODELS:
            raise ValueError(f"{value} is now called {RENAMED_MODELS[value]}")
        return value

    @property
    def architecture(self) -> ModelSizes | None:
        """The sizes of the model `model` names (None for the article's network, which has none to set)."""
        return getattr(self, self.model) if self.model in type(self).model_fields else None


class EvaluateParams(Section):
    highest_pitch: int = Field(126, ge=21, le=126)  # rollgen.music.roll's pitches: 21..126
    samples: NonNegativeInt = 128
    seed: NonNegativeInt = 0
    transpositions: int = Field(2, ge=0, le=12)  # evaluation.mixture: shifts -N..N averaged (0: network alone)


class GenerateParams(Section):
    pieces: PositiveInt = 16
    steps: PositiveInt = 256
    sampling: Literal["bernoulli", "threshold", "vanish_proof"] = "bernoulli"  # rollgen.models.sampling.MODES
    temperature: Temperature | Literal["auto"] = "auto"  # auto: chosen among `temperatures` on the validation pieces
    onset_temperature: Temperature | Literal["auto"] = "auto"  # auto: `temperature`'s, or fitted where it fails a gate
    temperatures: list[Temperature] = Field([0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2], min_length=1)
    threshold: float = Field(0.5, ge=0, le=1)
    min_notes: NonNegativeInt = 0
    max_notes: NonNegativeInt = 0
    primer: str = Field("val", min_length=1)
    primer_steps: NonNegativeInt = 16
    vanish_proof: float = 0.65
    vanish_inc: PositiveFloat = 1.001
    tempo: PositiveFloat = 100.0
    soundfont: str = Field("auto", min_length=1)
    seed: NonNegativeInt = 7
    include_primer: bool = True  # the primer's steps start the written pieces (marked in the pictures)

    @field_validator("temperature", "onset_temperature", mode="before")
    @classmethod
    def _auto_or_a_number(cls, value: Any) -> Any:  # one message, not one per member of the union
        if value == "auto" or (type(value) in (int, float) and 0 < value <= MAX_TEMPERATURE):  # nan is not
            return value
        raise ValueError(f"must be auto or a number above 0 and at most {MAX_TEMPERATURE:g}, not {value!r}")


class Params(BaseModel):
    """The whole of params.yaml: a section left out takes every default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ingest: IngestParams = IngestParams()
    images: ImagesParams = ImagesParams()
    windows: WindowsParams = WindowsParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    generate: GenerateParams = GenerateParams()


SECTIONS: dict[str, type[Section]] = {name: field.annotation for name, field in Params.model_fields.items()}


class ParamsError(RollgenError):
    """Params that cannot be used: a stage stops at its start with the message alone (rollgen.errors)."""


def load_params(section: str | None = None, path: Path = paths.PARAMS) -> Params | Section:
    """The whole params.yaml as `Params`, or one section of it; the whole file is checked either way, so a
    mistake in any section stops every stage."""
    with open(path, encoding="utf-8") as handle:
        values = yaml.safe_load(handle)
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ParamsError(f"{path}: must be a mapping of sections (ingest:, images:, ...), not {values!r}")
    try:
        params = Params.model_validate(values)
    except ValidationError as error:
        raise ParamsError(describe(error, source=str(path))) from None
    return params if section is None else getattr(params, _section_name(section, str(path)))


def validate(section: str, values: Mapping[str, Any]) -> Section:
    """The `section` params `values` give, defaults filled in; ParamsError names what is wrong."""
    model = SECTIONS[_section_name(section, None)]
    try:
        return model.model_validate(dict(values))
    except ValidationError as error:
        raise ParamsError(describe(error, section=section)) from None


def _section_name(section: str, source: str | None) -> str:
    if section not in SECTIONS:
        raise ParamsError(f"{f'{source}: ' if source else ''}no '{section}:' section; sections: {', '.join(SECTIONS)}")
    return section


def describe(error: ValidationError, source: str | None = None, section: str | None = None) -> str:
    """One line per mistake: `params.yaml: train.epochs must be an integer, not 'ten'`. `error` comes from
    validating the whole file (its locations start with the section) or, with `section`, one section."""
    lines = []
    for problem in error.errors():
        location = ((section,) if section else ()) + tuple(str(part) for part in problem["loc"])
        lines.append(f"{source}: {_reason(problem, location)}" if source else _reason(problem, location))
    return "\n".join(lines)


_TYPES = {
    "int_type": "an integer",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "string_type": "a string",
    "model_type": "a mapping of keys to values",
    "dict_type": "a mapping of keys to values",
}
_BOUNDS = {"greater_than": "greater than", "greater_than_equal": "at least", "less_than": "less than",
           "less_than_equal": "at most"}  # fmt: skip


def _model_at(location: tuple[str, ...]) -> type[BaseModel]:
    """The typed model of the mapping at `location`: ("train",) -> TrainParams, ("train", "lstm") -> LstmParams."""
    model: type[BaseModel] = SECTIONS[location[0]]
    for key in location[1:]:
        model = model.model_fields[key].annotation
    return model


def _reason(problem: dict, location: tuple[str, ...]) -> str:
    """What is wrong at `location` (section, key), in words."""
    kind, value, context = problem["type"], problem.get("input"), problem.get("ctx") or {}
    name = ".".join(location)
    if kind == "extra_forbidden" and len(location) == 1:
        return f"{name} is not a section; valid: {', '.join(SECTIONS)}"
    if kind == "extra_forbidden":
        within = ".".join(location[:-1])
        article = "an" if within[0] in "aeiou" else "a"
        valid = ", ".join(sorted(_model_at(location[:-1]).model_fields))
        return f"{name} is not {article} {within} parameter; valid: {valid}"
    if kind in _TYPES:
        return f"{name} must be {_TYPES[kind]}, not {value!r}"
    if kind == "literal_error":
        return f"{name} must be {context['expected']}, not {value!r}"
    if kind in _BOUNDS:
        bound = next(iter(context.values()))
        return f"{name} must be {_BOUNDS[kind]} {bound:g}, not {value!r}"
    if kind == "string_too_short":
        return f"{name} must not be empty"
    if kind == "value_error":  # a check across keys, e.g. windows' fractions
        return f"{name}: {context.get('error', problem['msg'])}"
    return f"{name}: {problem['msg']}, not {value!r}"


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'train': {'epochs': 3}} -> {'train.epochs': 3}, the form MLflow and `dvc exp -S` use."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat
