"""Shared fixtures: small real datasets and quick models, prepared once per session."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

import hqcnn  # noqa: F401  (pins torch's CPU kernels before any test runs one: hqcnn/determinism.py)
from hqcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from hqcnn.data import PreparedData, prepare
from hqcnn.train import RunOutcome, run


@pytest.fixture(scope="session")
def small_pneumonia() -> PreparedData:
    """PneumoniaMNIST with 40 training images per class (the real bundled file)."""
    return prepare(DataConfig(dataset="pneumoniamnist", train_per_class=40))


@pytest.fixture(scope="session")
def small_retina() -> PreparedData:
    """RetinaMNIST (5 classes, RGB) with 10 training images per class."""
    return prepare(DataConfig(dataset="retinamnist", train_per_class=10))


@pytest.fixture(scope="session")
def quick_run(small_pneumonia: PreparedData) -> Callable[..., RunOutcome]:
    """`quick_run(kind)`: the `quick_config(kind=kind)` run on `small_pneumonia`, trained once per session.

    Tests that need *a* trained model share these few runs instead of training their own. Each call
    returns the run with a private deep copy of its model, so a test that switches the model's mode
    or changes its weights cannot touch another test's model. Trained on one torch thread, as most
    modules run: the weights do not depend on which module asked first.
    """
    trained: dict[str, RunOutcome] = {}

    def get(kind: str = "hybrid") -> RunOutcome:
        if kind not in trained:
            previous = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                trained[kind] = run(quick_config(kind=kind), data=small_pneumonia)
            finally:
                torch.set_num_threads(previous)
        outcome = trained[kind]
        result = dataclasses.replace(outcome.result, model=copy.deepcopy(outcome.result.model))
        return dataclasses.replace(outcome, result=result)

    return get


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
