"""What several studies share: their data configurations, the hybrid–twin pair, and task building."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hqcnn.config import DataConfig, ModelConfig
from hqcnn.experiments.presets import ExperimentConfig, Preset
from hqcnn.experiments.registry import Budget, Study, Task


def data_config(config: ExperimentConfig, train_per_class: int | None, seed: int) -> DataConfig:
    """The data of one seed: a low-data subset depends on the seed, the full training set does not."""
    return DataConfig(dataset=config.dataset, train_per_class=train_per_class, seed=seed if train_per_class else 0)


def twin_of(model: ModelConfig) -> ModelConfig:
    """The parameter-matched classical twin of a hybrid configuration."""
    return replace(model, kind="classical")


def pair(model: ModelConfig) -> tuple[ModelConfig, ModelConfig]:
    """The hybrid and its twin."""
    return replace(model, kind="hybrid"), twin_of(model)


def task(
    study: Study,
    config: ExperimentConfig,
    preset: Preset,
    data: DataConfig,
    model: ModelConfig,
    seed: int,
    options: dict[str, Any] | None = None,
    key: str = "",
    **columns: Any,
) -> Task:
    """A task of `study`, keyed by its condition, model and seed unless `key` is given."""
    key = key or "|".join(part for part in (columns.get("condition", ""), model.kind, f"seed {seed}") if part)
    return Task(study.name, key, data, model, seed, Budget.of(config, preset), columns, options or {})


def seed_pairs(study: Study, config: ExperimentConfig, preset: Preset, options: dict[str, Any] | None = None, **columns: Any) -> list[Task]:
    """The tasks of a study that trains the hybrid and its twin once per seed, on the grid's training subset."""
    per_class = study.grid(preset)["train_per_class"]
    return [
        task(study, config, preset, data_config(config, per_class, seed), model, seed, options, **columns)
        for seed in study.seeds(config, preset)
        for model in pair(config.model)
    ]
