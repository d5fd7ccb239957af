"""The three explicit configurations of a run: data, model and training.

Each is a frozen dataclass validated on construction, so an object that exists is a valid one.
They travel as plain dicts (`to_dict` / `from_dict`) in checkpoints, the CLI and the app's URL.
Heavy libraries are not imported here: the app builds configs on every rerun.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hqcnn.errors import ConfigError

# Names offered by the registries in circuit.py and model.py; kept here so that validating a
# config does not need to import PennyLane or torch. A test checks both sides agree.
ENTANGLERS = ("ring", "chain", "none")
ENCODINGS = ("layered", "ry", "reupload")
MODEL_KINDS = ("hybrid", "classical", "backbone")
IMAGE_SIZES = (28, 32, 64, 128)
SOURCE_SIZES = (28, 64, 128, 224)  # the resolutions MedMNIST publishes
DEVICES = ("auto", "cpu", "cuda")

QUBITS_RANGE = (2, 8)
DEPTH_RANGE = (1, 8)


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


@dataclass(frozen=True)
class DataConfig:
    """Which images to load and how to prepare them."""

    dataset: str = "pneumoniamnist"  # a key of hqcnn.data.DATASETS
    source_size: int = 28  # resolution of the MedMNIST file to read
    image_size: int = 28  # resolution the model sees (resized if different)
    grayscale: bool = False  # convert RGB sets to one channel
    normalize: bool = True  # subtract mean, divide by std of the training split
    train_per_class: int | None = None  # low-data option: N training images per class
    noise_std: float = 0.0  # Gaussian noise added to the (0..1) training and test inputs
    seed: int = 0  # seeds the low-data subset and the noise

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ConfigError(f"dataset must be a dataset name, got {self.dataset!r}.")
        _check_choice("source_size", self.source_size, SOURCE_SIZES)
        _check_choice("image_size", self.image_size, IMAGE_SIZES)
        if self.train_per_class is not None:
            _check_int("train_per_class", self.train_per_class, 1, 1_000_000)
        _check_float("noise_std", self.noise_std, 0.0, 1.0)
        _check_int("seed", self.seed, 0, 2**31 - 1)


@dataclass(frozen=True)
class ModelConfig:
    """The hybrid network: backbone widths, circuit shape and head."""

    kind: str = "hybrid"  # hybrid | classical (parameter-matched twin) | backbone (no middle)
    n_qubits: int = 4
    depth: int = 2  # variational layers
    n_features: int = 8  # backbone output, angle-encoded into the qubits
    entangler: str = "ring"
    encoding: str = "layered"
    channels: tuple[int, int] = (8, 16)  # widths of the two convolution blocks
    hidden: int = 16  # width of the head's hidden layer
    batch_norm: bool = True
    dropout: float = 0.0  # dropout before the projection to n_features

    def __post_init__(self) -> None:
        _check_choice("model kind", self.kind, MODEL_KINDS)
        _check_int("qubits", self.n_qubits, *QUBITS_RANGE)
        _check_int("depth", self.depth, *DEPTH_RANGE)
        n = self.n_qubits
        _check_int(
            "features",
            self.n_features,
            n,
            3 * n,
            f" With {n} qubits each qubit takes one to three features"
            f" (one rotation per axis), so use {n} to {3 * n} features.",
        )
        _check_choice("entangler", self.entangler, ENTANGLERS)
        _check_choice("encoding", self.encoding, ENCODINGS)
        channels = tuple(self.channels)
        if len(channels) != 2:
            raise ConfigError(f"channels must be two widths, got {self.channels!r}.")
        for width in channels:
            _check_int("convolution width", width, 1, 256)
        object.__setattr__(self, "channels", channels)  # lists from JSON become tuples
        _check_int("hidden", self.hidden, 1, 1024)
        if not isinstance(self.batch_norm, bool):
            raise ConfigError(f"batch_norm must be true or false, got {self.batch_norm!r}.")
        _check_float("dropout", self.dropout, 0.0, 0.9)


@dataclass(frozen=True)
class TrainConfig:
    """How to train: Adam with a cosine schedule, light augmentation, best epoch on val AUC or an average."""

    epochs: int = 10
    lr: float = 3e-3
    batch_size: int = 128
    seed: int = 0
    weight_decay: float = 1e-4
    class_weights: bool = False  # weight the loss by inverse class frequency
    augment: bool = True  # random flips and small shifts of training images
    schedule: str = "cosine"  # cosine | constant
    # Fraction of the last epochs whose weights are averaged into the returned model (stochastic
    # weight averaging); 0 returns the epoch with the best validation AUC instead. See train.py.
    average_last: float = 0.0
    device: str = "auto"  # auto picks CUDA when present
    threads: int | None = None  # torch intra-op threads; None leaves torch's default

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, 1, 1000)
        _check_float("learning rate", self.lr, 1e-6, 1.0)
        _check_int("batch size", self.batch_size, 1, 4096)
        _check_int("seed", self.seed, 0, 2**31 - 1)
        _check_float("weight decay", self.weight_decay, 0.0, 1.0)
        _check_choice("schedule", self.schedule, ("cosine", "constant"))
        _check_float("average_last", self.average_last, 0.0, 0.9)
        _check_choice("device", self.device, DEVICES)
        if self.threads is not None:
            _check_int("threads", self.threads, 1, 256)


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
