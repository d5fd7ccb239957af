"""What a study runs: the size presets and the configuration.

`Preset` says how big each study is (seeds, step budget, overrides of the studies' grids);
`ExperimentConfig` says what it runs on (dataset, base hybrid, seeds). Both round-trip through
JSON, so a saved result records exactly what produced it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hqcnn.config import ModelConfig
from hqcnn.config import from_dict as config_from_dict
from hqcnn.config import to_dict as config_to_dict
from hqcnn.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """How big each study is: seeds, the step budget per training, and each study's grid.

    A study declares its grid (sizes, noise levels, ...) for the named presets "quick" and
    "full"; `grids` overrides values per study (e.g. a tiny preset for tests), on top of the
    grids of the preset named `base` (default: this preset's name, else "full").
    """

    name: str
    seeds: int  # seeds per condition, unless a study's grid says otherwise
    step_budget: int | None  # cap on optimiser steps per training run; None = the recipe's
    min_epochs: int = 3
    max_epochs: int | None = None  # hard cap (tests use 1)
    base: str | None = None
    grids: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # study → {grid key: value}
    description: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or not 1 <= self.seeds <= 100:
            raise ConfigError(f"Preset seeds must be a whole number from 1 to 100, got {self.seeds!r}.")
        if not isinstance(self.grids, Mapping) or not all(isinstance(g, Mapping) for g in self.grids.values()):
            raise ConfigError("A preset's grids must map study names to their settings.")
        # JSON gives lists; keep tuples so that grids compare equal to the declared ones.
        object.__setattr__(self, "grids", {k: {n: _tuples(v) for n, v in g.items()} for k, g in self.grids.items()})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: Any) -> Preset:
        """Inverse of `to_dict`; unknown keys are a ConfigError."""
        return config_from_dict(cls, values, what="preset")


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        name="quick",
        seeds=3,
        step_budget=150,
        min_epochs=3,
        description="classroom size: about a minute per study on 2 CPU cores; at most ~150 optimiser "
        "steps per model, 3 seeds (5 for paired), 250 images per class for the size and ablation sweeps",
    ),
    "full": Preset(
        name="full",
        seeds=5,
        step_budget=None,
        description="report size: the recommended recipe on every training image, 5 seeds (10 for paired); "
        "tens of minutes per study on one core",
    ),
}


# The fields of the base hybrid that the experiment command line sets (`--qubits`, ...).
MODEL_FLAGS = ("n_qubits", "depth", "n_features", "entangler", "encoding", "readout")


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

    def seed_list(self, default: int) -> list[int]:
        """The seeds a study uses: `seeds` of them (else `default`) from `base_seed` on."""
        k = self.seeds if self.seeds is not None else default
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
