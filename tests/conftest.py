"""Shared fixtures: small real datasets prepared once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import hqcnn  # noqa: F401  (pins torch's CPU kernels before any test runs one: hqcnn/determinism.py)
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


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module: on a busy 2-core machine two threads make small ops erratic."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def folder_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private data cache folder, and nothing held in memory from another test."""
    from hqcnn import folder_data

    folder = tmp_path / "cache"
    monkeypatch.setenv("HQCNN_DATA_DIR", str(folder))
    folder_data.clear_memory()
    yield folder
    folder_data.clear_memory()


def quick_config(dataset: str = "pneumoniamnist", kind: str = "hybrid", epochs: int = 2, **train) -> RunConfig:
    """A run config that trains in a second or two on a small subset."""
    return RunConfig(
        data=DataConfig(dataset=dataset, train_per_class=40),
        model=ModelConfig(kind=kind),
        train=TrainConfig(epochs=epochs, batch_size=32, **train),
    )
