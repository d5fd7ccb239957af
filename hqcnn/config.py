"""The three explicit configurations of a run: data, model and training.

Each is a frozen dataclass validated on construction, so an object that exists is a valid one.
They travel as plain dicts (`to_dict` / `from_dict`) in checkpoints, the CLI and the app's URL.

Every field is declared once with `option(...)`: its default, allowed values (bounds or choices),
its name in messages, and the label, help text and command-line flag it has wherever it is
offered. The validation here, the app's settings (ui/state.py) and the command line
(hqcnn/cli_options.py) all read these declarations through `options(cls)`.

Heavy libraries are not imported here: the app builds configs on every rerun.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hqcnn.errors import ConfigError

# Names offered by the registries in circuit.py and model.py; kept here so that validating a
# config does not need to import PennyLane or torch. A test checks both sides agree.
ENTANGLERS = ("ring", "chain", "none")
ENCODINGS = ("layered", "ry", "reupload")
READOUTS = ("z", "zz")
MODEL_KINDS = ("hybrid", "classical", "backbone")
IMAGE_SIZES = (28, 32, 64, 128)
SOURCE_SIZES = (28, 64, 128, 224)  # the resolutions MedMNIST publishes
DEVICES = ("auto", "cpu", "cuda")
SCHEDULES = ("cosine", "constant")

QUBITS_RANGE = (2, 8)
DEPTH_RANGE = (1, 8)
FEATURES_PER_QUBIT = (1, 3)  # one rotation per axis at most
SEED_RANGE = (0, 2**31 - 1)


def features_range(n_qubits: int) -> tuple[int, int]:
    """The feature counts a circuit of `n_qubits` qubits accepts (inclusive)."""
    return FEATURES_PER_QUBIT[0] * n_qubits, FEATURES_PER_QUBIT[1] * n_qubits


# --- declaring a field once -------------------------------------------------------------------

OPTION_KEY = "option"  # the key of a field's dataclasses metadata that holds its Option


@dataclass(frozen=True)
class Option:
    """What one config field accepts and how it is presented; read through `options(cls)`."""

    name: str  # the field's name (also the dest of its command-line flag)
    default: Any
    type: type  # int, float, bool or str (tuple for the convolution widths)
    what: str  # its name in error messages ("learning rate")
    label: str = ""  # the label of its control in the app
    help: str = ""  # what it does, in a sentence or two (the app's tooltip and the CLI's help)
    bounds: tuple[Any, Any] | None = None  # inclusive range of a number
    choices: tuple | None = None  # the allowed values, if a fixed list
    flag: str | None = None  # its command-line flag; None: not offered on the command line
    unset: str = ""  # what None means, for a field whose default is None ("every image")
    # A rule that bounds and choices cannot state (it may read fields declared before this one).
    check: Callable[[Any, Option], None] | None = None
    # Its value when it is not given on the command line, computed from the other fields.
    default_from: Callable[[dict[str, Any]], Any] | None = None

    @property
    def optional(self) -> bool:
        """None is a valid value (it means "not set", e.g. every training image)."""
        return self.default is None


def option(
    default: Any, *, type: type | None = None, what: str = "", cli: bool = True, flag: str = "", **details: Any
) -> Any:
    """A dataclass field with default `default`, declared with its Option (see Option for `details`).

    `type` is needed only when the default is None; `what` defaults to the field's name and
    `flag` to `--field-name`; `cli=False` keeps the field off the command line.
    """
    value_type = type if type is not None else default.__class__
    if value_type in (int, float) and "bounds" not in details and "choices" not in details:
        raise TypeError("a number field needs bounds or choices")
    partial = {"type": value_type, "what": what, "flag": flag if cli else None, **details}
    return field(default=default, metadata={OPTION_KEY: partial})


@functools.cache
def options(cls: type) -> dict[str, Option]:
    """The Option of every declared field of config class `cls`, in field order."""
    out = {}
    for f in dataclasses.fields(cls):
        if OPTION_KEY not in f.metadata:
            continue
        partial = dict(f.metadata[OPTION_KEY])
        partial["what"] = partial["what"] or f.name
        if partial["flag"] == "":
            partial["flag"] = "--" + f.name.replace("_", "-")
        out[f.name] = Option(name=f.name, default=f.default, **partial)
    return out


def field_option(cls: type, name: str) -> Option:
    """The Option of field `name` of config class `cls`."""
    return options(cls)[name]


# --- checking values against their Option -----------------------------------------------------


def _check_int(name: str, value: Any, low: int, high: int, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, got {value!r}.")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}.{hint}")


def _check_float(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a number, got {value!r}.")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {value:g}.")


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        listed = ", ".join(str(c) for c in choices)
        raise ConfigError(f"{name} must be one of {listed}; got {value!r}.")


def check_value(opt: Option, value: Any) -> None:
    """ConfigError unless `value` is of `opt`'s type and within its bounds or choices."""
    if value is None and opt.optional:
        return
    if opt.choices is not None:
        _check_choice(opt.what, value, opt.choices)
    elif opt.type is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{opt.what} must be true or false, got {value!r}.")
    elif opt.type is int:
        _check_int(opt.what, value, *opt.bounds)
    elif opt.type is float:
        _check_float(opt.what, value, *opt.bounds)
    else:
        raise TypeError(f"{opt.name}: no rule checks a {opt.type.__name__}; give the option a check")


def validate(config: Any) -> None:
    """Check every declared field of `config`, in field order: the first problem is the one reported."""
    for opt in options(type(config)).values():
        if opt.check is not None:
            opt.check(config, opt)
        else:
            check_value(opt, getattr(config, opt.name))


def _check_dataset(config: Any, opt: Option) -> None:
    if not isinstance(config.dataset, str) or not config.dataset:
        raise ConfigError(f"dataset must be a dataset name, got {config.dataset!r}.")


def _check_features(config: Any, opt: Option) -> None:
    # The range depends on the qubits (checked before, being declared first).
    n = config.n_qubits
    low, high = features_range(n)
    hint = f" With {n} qubits each qubit takes one to three features (one rotation per axis), so use {low} to {high} features."
    _check_int(opt.what, config.n_features, low, high, hint)


def _two_per_qubit(values: dict[str, Any]) -> int:
    return 2 * values["n_qubits"]


def _check_channels(config: Any, opt: Option) -> None:
    try:
        channels = tuple(config.channels)
    except TypeError:
        channels = ()
    if len(channels) != 2:
        raise ConfigError(f"channels must be two widths, got {config.channels!r}.")
    for width in channels:
        _check_int(opt.what, width, *opt.bounds)
    object.__setattr__(config, "channels", channels)  # lists from JSON become tuples


# --- the configurations -------------------------------------------------------------------------


@dataclass(frozen=True)
class DataConfig:
    """Which images to load and how to prepare them."""

    dataset: str = option(
        "pneumoniamnist",
        check=_check_dataset,
        label="Dataset",
        help="A MedMNIST name (see `python -m hqcnn datasets`) or a folder of your own images, one sub-folder "
        "per class.",
    )
    source_size: int = option(
        28, choices=SOURCE_SIZES, label="Source size", help="Resolution of the MedMNIST file to read (pixels per side)."
    )
    image_size: int = option(
        28,
        choices=IMAGE_SIZES,
        label="Image size (pixels per side)",
        help="Resolution the model sees: images are resized to it; larger sizes train more slowly.",
    )
    grayscale: bool = option(
        False,
        label="Convert colour images to grayscale",
        help="Convert colour images to one channel. Only for colour datasets such as RetinaMNIST.",
    )
    normalize: bool = option(
        True,
        label="Normalise",
        help="Shift and scale each channel to mean 0 and standard deviation 1, using the training images.",
    )
    train_per_class: int | None = option(
        None,
        type=int,
        bounds=(1, 1_000_000),
        label="Training images per class",
        unset="every image",
        help="Train on this many images per class only: fewer images show how the model copes with little data "
        "(a claim of the paper).",
    )
    noise_std: float = option(
        0.0,
        bounds=(0.0, 1.0),
        flag="--noise",
        label="Gaussian noise added to the images (σ, in units of full brightness)",
        help="Standard deviation of Gaussian noise added to the training and test images alike (pixels run from 0 "
        "to 1), to test robustness.",
    )
    seed: int = option(0, bounds=SEED_RANGE, label="Seed", help="Seeds the low-data subset and the noise.")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class ModelConfig:
    """The hybrid network: backbone widths, circuit shape and head."""

    kind: str = option(
        "hybrid",
        choices=MODEL_KINDS,
        what="model kind",
        flag="--model",
        label="Model",
        help="hybrid (with the circuit), classical (its parameter-matched twin: the circuit replaced by a classical "
        "layer of the same size) or backbone (no middle layer).",
    )
    n_qubits: int = option(
        4,
        bounds=QUBITS_RANGE,
        what="qubits",
        flag="--qubits",
        label="Qubits",
        help="Each qubit carries part of the image summary; the simulation cost doubles with every qubit.",
    )
    depth: int = option(
        2,
        bounds=DEPTH_RANGE,
        label="Circuit depth (layers)",
        help="Number of trainable rotation + entangling layers.",
    )
    # Its range depends on the qubits (checked by _check_features); the bounds are the widest,
    # over every qubit count, for a control or a link.
    n_features: int = option(
        8,
        bounds=(features_range(QUBITS_RANGE[0])[0], features_range(QUBITS_RANGE[1])[1]),
        check=_check_features,
        default_from=_two_per_qubit,
        what="features",
        flag="--features",
        label="Features from the backbone",
        help="Backbone outputs angle-encoded into the qubits: one to three per qubit (two per qubit when not set).",
    )
    entangler: str = option(
        "ring",
        choices=ENTANGLERS,
        label="Entangler",
        help="Two-qubit gates of each layer: ring (CNOT from each qubit to the next, the last back to the first), "
        "chain (without closing the ring) or none.",
    )
    encoding: str = option(
        "layered",
        choices=ENCODINGS,
        label="Encoding",
        help="How features become rotations: layered (about Y, then Z, then X), ry (about Y only) or reupload "
        "(layered, repeated before every layer).",
    )
    readout: str = option(
        "z",
        choices=READOUTS,
        what="read-out",
        label="Read-out",
        help="What the head sees: z (⟨Z⟩ of each qubit) or zz (also ⟨Z_i Z_j⟩ of every pair of qubits, from the "
        "same measurements: n + n(n−1)/2 numbers). The classical twin then adds the pairwise products of its outputs.",
    )
    channels: tuple[int, int] = option(
        (8, 16),
        bounds=(1, 256),
        check=_check_channels,
        what="convolution width",
        cli=False,
        help="Widths of the two convolution blocks.",
    )
    hidden: int = option(16, bounds=(1, 1024), help="Width of the head's hidden layer.")
    batch_norm: bool = option(True, help="Batch normalisation in the convolution blocks.")
    dropout: float = option(0.0, bounds=(0.0, 0.9), help="Dropout before the projection to n_features.")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class TrainConfig:
    """How to train: Adam with a cosine schedule, light augmentation, best epoch on val AUC or an average."""

    epochs: int = option(10, bounds=(1, 1000), label="Epochs", help="Passes over the training images.")
    lr: float = option(
        3e-3, bounds=(1e-6, 1.0), what="learning rate", label="Learning rate", help="Step size of the Adam optimiser."
    )
    batch_size: int = option(128, bounds=(1, 4096), what="batch size", label="Batch size", help="Images per step.")
    seed: int = option(0, bounds=SEED_RANGE, label="Seed", help="Same seed, same result.")
    weight_decay: float = option(1e-4, bounds=(0.0, 1.0), what="weight decay", help="Adam's weight decay.")
    class_weights: bool = option(False, help="Weight the loss by inverse class frequency.")
    augment: bool = option(True, help="Random flips and small shifts of the training images.")
    schedule: str = option("cosine", choices=SCHEDULES, help="Learning-rate schedule.")
    # Fraction of the last epochs whose weights are averaged into the returned model (stochastic
    # weight averaging); 0 returns the epoch with the best validation AUC instead. See train.py.
    average_last: float = option(
        0.0,
        bounds=(0.0, 0.9),
        help="Keep the average of the weights of this fraction of the last epochs (e.g. 0.5) instead of the best "
        "epoch on validation AUC (0: off).",
    )
    device: str = option("auto", choices=DEVICES, help="auto picks CUDA when present.")
    # None: the process's count, which the app's workers, `python -m hqcnn train` and the experiment
    # engine all set to 1 under the pinned kernels (hqcnn/determinism.py), so that a seed gives the
    # same model on any machine; another count gives other (equally good) weights.
    threads: int | None = option(
        None,
        type=int,
        bounds=(1, 256),
        unset="1, or torch's own with HQCNN_KERNELS=native",
        help="Torch intra-op threads; a seed gives the same model only at the same count.",
    )

    def __post_init__(self) -> None:
        validate(self)


D = TypeVar("D")  # a config dataclass


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config (tuples become lists)."""
    out = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def from_dict(cls: type[D], values: Any, what: str | None = None) -> D:
    """Build a dataclass `cls` from a dict, rejecting unknown keys and wrong types with a ConfigError.

    `what` names the settings in messages ("preset"); the class name by default.
    """
    what = what or cls.__name__
    if not isinstance(values, dict):
        raise ConfigError(f"{what} must be a mapping of settings, got {type(values).__name__}.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"Unknown {what} setting(s): {', '.join(unknown)}.")
    try:
        return cls(**values)
    except TypeError as err:  # e.g. a list where a number belongs, caught before validation
        raise ConfigError(f"Invalid {what}: {err}.") from err


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict."""
        return {"data": to_dict(self.data), "model": to_dict(self.model), "train": to_dict(self.train)}

    @classmethod
    def from_dict(cls, values: Any) -> RunConfig:
        """Inverse of `to_dict`, validating every part."""
        if not isinstance(values, dict):
            raise ConfigError("A run configuration must be a mapping with data, model and train.")
        return cls(
            data=from_dict(DataConfig, values.get("data", {})),
            model=from_dict(ModelConfig, values.get("model", {})),
            train=from_dict(TrainConfig, values.get("train", {})),
        )
