"""The study registry: `Study`, the `Task`s it needs, and `@register`.

A study is one file under `hqcnn/experiments/studies/` holding a `Study` subclass decorated with
`@register`. It declares what it asks and costs, and implements four steps:

- `tasks(config, preset)`: the independent training runs it needs (each a `Task`: data, model,
  seed and the condition it measures). An executor runs them in any order, anywhere.
- `evaluate(task, outcome)`: in the worker, the rows of one trained model (its test metrics, or
  its metrics on noisy inputs, ...).
- `compare(table)`: its paired comparisons (`hqcnn.experiments.table.Comparison`).
- `figures(result)`: its plotly figures, by name.

The command line's choices, the app's menu and time estimates, and Table 2 read `STUDIES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from hqcnn.config import DataConfig, ModelConfig
from hqcnn.errors import ConfigError
from hqcnn.experiments.presets import ExperimentConfig, Preset

if TYPE_CHECKING:
    import pandas as pd

    from hqcnn.experiments.results import ExperimentResult
    from hqcnn.experiments.table import Comparison


@dataclass(frozen=True)
class Budget:
    """How long each training of a task may be: the recipe, trimmed to the preset's step budget."""

    step_budget: int | None = None
    min_epochs: int = 3
    max_epochs: int | None = None
    device: str = "cpu"

    @classmethod
    def of(cls, config: ExperimentConfig, preset: Preset) -> Budget:
        return cls(preset.step_budget, preset.min_epochs, preset.max_epochs, config.device)


@dataclass(frozen=True)
class Task:
    """One independent training run of a study, and what to record about it.

    `key` names it uniquely within its study (a resumed run skips the keys it has); `columns`
    are the condition's values written into each of its rows; `options` tell `evaluate` what else
    to measure (noise levels, simulator settings, ...).
    """

    study: str
    key: str
    data: DataConfig
    model: ModelConfig
    seed: int
    budget: Budget
    columns: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


class Study:
    """Base class of a study; see the module docstring."""

    name: ClassVar[str]
    title: ClassVar[str]
    question: ClassVar[str]
    order: ClassVar[int] = 100  # place in menus and in "all"
    claims: ClassVar[tuple[str, ...]] = ()  # keys of hqcnn.experiments.claims.CLAIMS it tests
    # For each of those claims, the key of its figure (in `figures`) that shows the deciding comparison.
    claim_figures: ClassVar[dict[str, str]] = {}
    # Wall time of the quick preset on PneumoniaMNIST with the default model on one core of a
    # shared 2-core CPU (`python -m hqcnn experiment NAME --preset quick`), for the app's estimate.
    quick_seconds: ClassVar[int | None] = None
    # Its own measurements beyond the test metrics, summarised per model × condition (and which lie in [0, 1]).
    metrics: ClassVar[tuple[str, ...]] = ()
    bounded: ClassVar[tuple[str, ...]] = ()
    # The grid of each named preset; `Preset.grids` overrides single values.
    grids: ClassVar[dict[str, dict[str, Any]]] = {"quick": {}, "full": {}}

    def grid(self, preset: Preset) -> dict[str, Any]:
        """This study's settings under `preset`."""
        base = preset.base or preset.name
        return {**self.grids.get(base, self.grids["full"]), **preset.grids.get(self.name, {})}

    def default_seeds(self, preset: Preset) -> int:
        """How many seeds it runs under `preset` unless told otherwise."""
        return self.grid(preset).get("seeds", preset.seeds)

    def seeds(self, config: ExperimentConfig, preset: Preset) -> list[int]:
        return config.seed_list(self.default_seeds(preset))

    def unavailable(self, config: ExperimentConfig) -> str | None:
        """Why this study cannot run with `config` on this machine, in words (None: it can)."""
        return None

    def tasks(self, config: ExperimentConfig, preset: Preset) -> list[Task]:
        raise NotImplementedError

    def evaluate(self, task: Task, outcome: Any) -> list[dict[str, Any]]:
        """The rows of one trained model; by default its test metrics."""
        from hqcnn.experiments.tasks import base_row

        return [base_row(task, outcome)]

    def compare(self, table: pd.DataFrame) -> list[Comparison]:
        from hqcnn.experiments.table import hybrid_vs_twin

        return hybrid_vs_twin(table)

    def figures(self, result: ExperimentResult) -> dict[str, Any]:
        return {}

    def notes(self, result: ExperimentResult) -> list[str]:
        """Sentences shown under the figures: how the study measured what it shows."""
        return []


STUDIES: dict[str, Study] = {}


def register(cls: type[Study]) -> type[Study]:
    """Class decorator: add one instance of a study to `STUDIES` under its name."""
    if cls.name in STUDIES:
        raise ValueError(f"Two studies are named {cls.name!r}.")
    STUDIES[cls.name] = cls()
    return cls


def get_study(name: str) -> Study:
    """The registered study `name` (a ConfigError naming the choices otherwise)."""
    if name not in STUDIES:
        raise ConfigError(f"Unknown study {name!r}; choose one of: {', '.join(STUDIES)}.")
    return STUDIES[name]
