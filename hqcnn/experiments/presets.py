"""What an experiment runs: the ablation variants, the size presets and the configuration.

`Preset` says how big each experiment is (seeds, step budget, the grids of sizes and noise
levels); `ExperimentConfig` says what it runs on (dataset, base hybrid, seeds). Both round-trip
through JSON, so a saved result records exactly what produced it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hqcnn.config import ModelConfig
from hqcnn.config import from_dict as config_from_dict
from hqcnn.config import to_dict as config_to_dict
from hqcnn.errors import ConfigError

# ---------------------------------------------------------------------------------------------
# Ablations: named variants of the base hybrid (a preset lists the ones it runs).
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ablation:
    """One variant: a label, a group for the charts, and how to derive its ModelConfig."""

    label: str
    group: str
    derive: Callable[[ModelConfig], ModelConfig]


def _depth(d: int) -> Callable[[ModelConfig], ModelConfig]:
    return lambda m: replace(m, depth=d)


ABLATIONS: dict[str, Ablation] = {
    "baseline": Ablation("baseline (as configured)", "baseline", lambda m: m),
    "entangler_none": Ablation("entangler: none", "entangler", lambda m: replace(m, entangler="none")),
    "entangler_chain": Ablation("entangler: chain", "entangler", lambda m: replace(m, entangler="chain")),
    "entangler_ring": Ablation("entangler: ring", "entangler", lambda m: replace(m, entangler="ring")),
    "no_circuit": Ablation("no circuit (backbone only)", "depth", lambda m: replace(m, kind="backbone")),
    **{f"depth_{d}": Ablation(f"depth {d}", "depth", _depth(d)) for d in range(1, 5)},
    "encoding_layered": Ablation("encoding: layered", "encoding", lambda m: replace(m, encoding="layered")),
    "encoding_ry": Ablation("encoding: ry", "encoding", lambda m: replace(m, encoding="ry")),
    "encoding_reupload": Ablation("encoding: reupload", "encoding", lambda m: replace(m, encoding="reupload")),
    "twin": Ablation("classical twin (reference)", "reference", lambda m: replace(m, kind="classical")),
}


# ---------------------------------------------------------------------------------------------
# Presets and configuration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """How big each experiment is. `quick` is for a classroom; `full` for a report."""

    name: str
    seeds: int  # seeds per condition (the paired experiment uses `paired_seeds`)
    paired_seeds: int
    step_budget: int | None  # cap on optimiser steps per training run; None = the recipe's
    min_epochs: int = 3
    max_epochs: int | None = None  # hard cap (tests use 1)
    train_per_class: int | None = None  # training subset of input_noise, hardware_noise, paired; None = all
    sweep_train_per_class: int | None = None  # training subset of the many-run param_efficiency and ablations
    low_data_sizes: tuple[int | None, ...] = (10, 25, 50, 100, 250, None)  # None = all images
    gaussian_sigmas: tuple[float, ...] = (0.0, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5)
    salt_pepper_amounts: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
    depolarizing: tuple[float, ...] = (0.0, 0.001, 0.01, 0.05)
    shots: tuple[int | None, ...] = (None, 1000, 100)  # None = exact expectation values
    hardware_images: int = 1000  # test images evaluated on the noisy simulator
    circuit_sizes: tuple[tuple[int, int], ...] = ((2, 1), (2, 2), (4, 1), (4, 2), (4, 4), (6, 2), (8, 2))
    widths: tuple[tuple[int, int], ...] = ((4, 8), (8, 16), (16, 32))
    ablations: tuple[str, ...] = (
        "baseline",
        "entangler_none",
        "entangler_chain",
        "no_circuit",
        "depth_1",
        "depth_3",
        "depth_4",
        "encoding_ry",
        "encoding_reupload",
        "twin",
    )
    description: str = ""

    def __post_init__(self) -> None:
        for name in ("seeds", "paired_seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
                raise ConfigError(f"Preset {name} must be a whole number from 1 to 100, got {value!r}.")
        unknown = [a for a in self.ablations if a not in ABLATIONS]
        if unknown:
            raise ConfigError(f"Unknown ablation(s) {', '.join(unknown)}; choose from {', '.join(ABLATIONS)}.")
        for p in self.depolarizing:
            if not 0 <= p <= 1:
                raise ConfigError(f"Depolarising probabilities must lie in [0, 1], got {p}.")
        # JSON gives lists; the frozen dataclass keeps tuples so that presets compare and hash.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
                object.__setattr__(self, f.name, value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: Any) -> Preset:
        """Inverse of `to_dict`; unknown keys are a ConfigError."""
        return config_from_dict(cls, values, what="preset")


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        name="quick",
        seeds=3,
        paired_seeds=5,
        step_budget=150,
        min_epochs=3,
        train_per_class=None,
        sweep_train_per_class=250,
        low_data_sizes=(10, 50, None),
        gaussian_sigmas=(0.0, 0.025, 0.05, 0.1, 0.2, 0.5),
        salt_pepper_amounts=(0.0, 0.01, 0.02, 0.05, 0.1, 0.2),
        depolarizing=(0.0, 0.001, 0.01, 0.05),
        shots=(None, 1000, 100),
        hardware_images=300,
        circuit_sizes=((2, 1), (4, 2), (6, 3)),
        widths=((4, 8), (16, 32)),
        ablations=(
            "baseline",
            "entangler_none",
            "no_circuit",
            "depth_1",
            "depth_4",
            "encoding_ry",
            "encoding_reupload",
            "twin",
        ),
        description="classroom size: about a minute per experiment on 2 CPU cores; at most ~150 optimiser "
        "steps per model, 3 seeds (5 for paired), 250 images per class for the size and ablation sweeps",
    ),
    "full": Preset(
        name="full",
        seeds=5,
        paired_seeds=10,
        step_budget=None,
        train_per_class=None,
        sweep_train_per_class=None,
        description="report size: the recommended recipe on every training image, 5 seeds (10 for paired); "
        "tens of minutes per experiment",
    ),
}


@dataclass(frozen=True)
class ExperimentConfig:
    """What to run the experiments on: dataset, base hybrid model, seeds."""

    dataset: str = "pneumoniamnist"
    seeds: int | None = None  # None: the preset's number of seeds
    base_seed: int = 0  # seeds used: base_seed, base_seed + 1, ...
    model: ModelConfig = field(default_factory=ModelConfig)  # the hybrid; its twin is derived
    # torch threads. 1 by default: these models are small, and on a shared 2-core machine two
    # threads made runs up to 10× slower (measured: low_data quick 283 s with 2, 55 s with 1).
    threads: int | None = 1
    device: str = "cpu"  # the experiments are meant for, and timed on, CPUs

    def __post_init__(self) -> None:
        if self.seeds is not None and (isinstance(self.seeds, bool) or not isinstance(self.seeds, int)):
            raise ConfigError(f"seeds must be a whole number, got {self.seeds!r}.")
        if self.seeds is not None and not 1 <= self.seeds <= 100:
            raise ConfigError(f"seeds must be between 1 and 100, got {self.seeds}.")
        if (
            isinstance(self.base_seed, bool)
            or not isinstance(self.base_seed, int)
            or not 0 <= self.base_seed < 2**31 - 200
        ):
            raise ConfigError(f"The base seed must be a whole number from 0 to 2^31 - 200, got {self.base_seed!r}.")
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", config_from_dict(ModelConfig, self.model))
        if self.model.kind != "hybrid":
            object.__setattr__(self, "model", replace(self.model, kind="hybrid"))

    def seed_list(self, preset: Preset, paired: bool = False) -> list[int]:
        """The seeds an experiment uses."""
        k = self.seeds if self.seeds is not None else (preset.paired_seeds if paired else preset.seeds)
        return list(range(self.base_seed, self.base_seed + k))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "dataset": self.dataset,
            "seeds": self.seeds,
            "base_seed": self.base_seed,
            "model": config_to_dict(self.model),
            "threads": self.threads,
            "device": self.device,
        }

    @classmethod
    def from_dict(cls, values: Any) -> ExperimentConfig:
        """Inverse of `to_dict`; unknown keys are a ConfigError."""
        if isinstance(values, dict) and "model" in values:
            values = {**values, "model": config_from_dict(ModelConfig, values["model"])}
        return config_from_dict(cls, values, what="experiment")
