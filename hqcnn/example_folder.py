"""A small example folder dataset written from a MedMNIST set: a way to try the user's-own-images path.

It reads a MedMNIST set (hqcnn.data) and writes the layout that hqcnn.folder_data reads, so it sits
above both rather than inside either.
"""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from hqcnn.data import get_info, load_arrays, low_data_indices
from hqcnn.errors import DataError
from hqcnn.folder_data import is_folder_key
from hqcnn.folder_data.paths import make_dir


def export_example(dataset: str, per_class: int, out: str | Path, seed: int = 0) -> Path:
    """Write `per_class` images of every class of a MedMNIST set as PNG files in class folders.

    The images come from the training split (28 px; bundled sets work offline). Returns the
    folder, which can then be given as `--dataset` or zipped and uploaded in the app.
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int) or not 1 <= per_class <= 1000:
        raise DataError(f"Images per class must be a whole number from 1 to 1000, got {per_class!r}.")
    if is_folder_key(dataset):
        raise DataError("Give a MedMNIST dataset name to export from, not a folder.")
    info = get_info(dataset)
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} already exists and is not an empty folder; choose a new folder.")
    images, labels = load_arrays(dataset, 28)["train"]
    chosen = low_data_indices(labels, per_class, seed)
    names = [
        re.sub(r"[^A-Za-z0-9 _.,()+-]", "_", n).strip(" .") or f"class_{i}" for i, n in enumerate(info.label_names)
    ]
    for i, name in enumerate(names):
        make_dir(out / f"{i}_{name}" if names.count(name) > 1 else out / name)
    for index in chosen:
        label = int(labels[index])
        folder = out / (f"{label}_{names[label]}" if names.count(names[label]) > 1 else names[label])
        image = images[index]
        Image.fromarray(image, "L" if image.ndim == 2 else "RGB").save(folder / f"{dataset}_{index:05d}.png")
    return out
