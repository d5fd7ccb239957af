"""Shared fixtures: small real datasets prepared once per session."""

from __future__ import annotations

import pytest

from hqcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from hqcnn.data import PreparedData, prepare


@pytest.fixture(scope="session")
def small_pneumonia() -> PreparedData:
    """PneumoniaMNIST with 40 training images per class (the real bundled file)."""
    return prepare(DataConfig(dataset="pneumoniamnist", train_per_class=40))


@pytest.fixture(scope="session")
def small_retina() -> PreparedData:
    """RetinaMNIST (5 classes, RGB) with 10 training images per class."""
    return prepare(DataConfig(dataset="retinamnist", train_per_class=10))


def quick_config(dataset: str = "pneumoniamnist", kind: str = "hybrid", epochs: int = 2, **train) -> RunConfig:
    """A run config that trains in a second or two on a small subset."""
    return RunConfig(
        data=DataConfig(dataset=dataset, train_per_class=40),
        model=ModelConfig(kind=kind),
        train=TrainConfig(epochs=epochs, batch_size=32, **train),
    )
