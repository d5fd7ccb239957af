"""What every kind of dataset shares: the splits, the catalogue entry, the data folder, the entry of a
dataset source, and what a trained model keeps of its data.

MedMNIST sets (hqcnn.data) and the user's own image folders (hqcnn.folder_data) both build on this
module, and it imports neither, so the two never need each other's internals.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SPLITS = ("train", "val", "test")

Progress = Callable[[int, int], None]  # progress(done, total); total is 0 when unknown

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (uint8 images, int64 labels), read-only

DATA_DIR_NAME = "the data folder ($HQCNN_DATA_DIR, by default ~/.cache/hqcnn/medmnist)"


def data_dir() -> Path:
    """The data folder: $HQCNN_DATA_DIR if set, else ~/.cache/hqcnn/medmnist (not created here).

    Downloaded MedMNIST files lie in it, uploads and folder caches in its folders/ sub-folder.
    """
    custom = os.environ.get("HQCNN_DATA_DIR")
    if custom:
        return Path(custom).expanduser()
    return Path.home() / ".cache" / "hqcnn" / "medmnist"


# The class a binary task screens for, where it is not class 1 (MedMNIST's BreastMNIST: 0 = malignant).
POSITIVE_CLASS = {"breastmnist": 0}


def positive_class(dataset: str, n_classes: int) -> int | None:
    """The class a binary task screens for (sensitivity is its recall; 1 unless listed); None if K > 2."""
    return POSITIVE_CLASS.get(dataset, 1) if n_classes == 2 else None


@dataclass(frozen=True)
class DatasetInfo:
    """The catalogue entry of one dataset (a MedMNIST set or a folder of the user's images), typed."""

    key: str
    title: str
    task: str
    label_names: tuple[str, ...]
    n_channels: int
    n_samples: dict[str, int]
    description: str
    license: str

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.label_names)

    @property
    def positive(self) -> int | None:
        """The class a binary task screens for (see `positive_class`); None for more classes."""
        return positive_class(self.key, self.n_classes)

    def training_images(self, per_class: int | None = None) -> int:
        """How many images a run trains on: the whole train split, or at most `per_class` per class."""
        n = self.n_samples["train"]
        return min(n, per_class * self.n_classes) if per_class else n


@dataclass(frozen=True)
class DataSource:
    """One kind of dataset: which keys it answers for and how it reads them (see hqcnn.data.source_of).

    The public functions of hqcnn.data look a key's source up and call these, so no function there
    needs to know which kind of dataset it was given.
    """

    claims: Callable[[object], bool]  # True for the keys of this kind
    info: Callable[[str], DatasetInfo]  # (key)
    status: Callable[[str, int], str]  # (key, size) -> "bundled", "cached", "downloadable" or "folder"
    file: Callable[[str, int, Progress | None, float], Path]  # (key, size, progress, timeout)
    arrays: Callable[[str, int, Progress | None], Arrays]  # (key, size, progress)


@dataclass(frozen=True)
class ModelMeta:
    """What a saved model needs besides its weights to classify a new image."""

    dataset: str
    label_names: tuple[str, ...]
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def n_classes(self) -> int:
        """Number of output classes."""
        return len(self.label_names)

    @classmethod
    def from_data(cls, data: Any) -> ModelMeta:
        """The meta of a hqcnn.data.PreparedData."""
        return cls(
            dataset=data.info.key,
            label_names=tuple(data.info.label_names),
            in_channels=data.in_channels,
            image_size=data.image_size,
            mean=tuple(float(m) for m in data.mean),
            std=tuple(float(s) for s in data.std),
        )
