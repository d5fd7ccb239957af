"""The split rules: the fixed-seed stratified split, or the split folders as given."""

from __future__ import annotations

import hashlib

import numpy as np

from hqcnn.datasets_base import SPLITS
from hqcnn.errors import DataError
from hqcnn.folder_data.limits import MIN_PER_CLASS, SPLIT_SEED, TEST_FRACTION, VAL_FRACTION
from hqcnn.folder_data.scan import _File


def _class_rng(label: str, purpose: str) -> np.random.Generator:
    """A generator fixed by SPLIT_SEED and the class name, so adding a class reshuffles no other."""
    seed = hashlib.sha256(f"{SPLIT_SEED}\0{purpose}\0{label}".encode()).digest()[:8]
    return np.random.default_rng(int.from_bytes(seed, "little"))


def _share(fraction: float, n: int) -> int:
    """How many of `n` images make `fraction` of them: at least one."""
    return max(1, round(fraction * n))


def _carve(members: list[int], n_take: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """(kept, taken): `n_take` of `members`, chosen by `rng`."""
    order = rng.permutation(len(members))
    taken = sorted(members[i] for i in order[:n_take])
    kept = sorted(members[i] for i in order[n_take:])
    return kept, taken


def _split(files: list[_File], labels: list[str], explicit: dict[str, str]) -> tuple[dict[str, list[int]], str]:
    """Indices into `files` per split, and a sentence saying how they were made."""
    by_class: dict[tuple[str | None, str], list[int]] = {}
    for i, f in enumerate(files):
        by_class.setdefault((f.split, f.label), []).append(i)
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    if not explicit:
        for label in labels:
            members = by_class.get((None, label), [])
            if len(members) < MIN_PER_CLASS:
                raise DataError(
                    f"Class '{label}' has {len(members)} readable image(s); each class needs at least "
                    f"{MIN_PER_CLASS} (one each for training, validation and test). Add images or remove the folder."
                )
            rng = _class_rng(label, "split")
            rest, test = _carve(members, _share(TEST_FRACTION, len(members)), rng)
            train, val = _carve(rest, _share(VAL_FRACTION, len(members)), rng)
            out["train"] += train
            out["val"] += val
            out["test"] += test
        rule = (
            f"Split per class (stratified) into {1 - VAL_FRACTION - TEST_FRACTION:.0%} training, "
            f"{VAL_FRACTION:.0%} validation and {TEST_FRACTION:.0%} test images with the fixed split seed "
            f"{SPLIT_SEED} (the same every run, whatever the training seed)"
        )
        return {s: sorted(v) for s, v in out.items()}, rule
    carved = [s for s in ("val", "test") if s not in explicit]
    for label in labels:
        train = list(by_class.get(("train", label), []))
        if not train:
            raise DataError(
                f"Class '{label}' has no readable images in {explicit['train']}/. Every class needs training images."
            )
        n_given = len(train)
        for split in carved:
            if len(train) < 2:
                raise DataError(
                    f"Class '{label}' has {len(train)} readable image(s) left in {explicit['train']}/, too few to set "
                    f"some aside for {'validation' if split == 'val' else 'test'} (each class needs at least "
                    f"{MIN_PER_CLASS}). Add images, or add a {split}/ folder."
                )
            fraction = VAL_FRACTION if split == "val" else TEST_FRACTION
            train, taken = _carve(train, _share(fraction, n_given), _class_rng(label, split))
            out[split] += taken
        out["train"] += train
        for split in ("val", "test"):
            if split in explicit:
                members = by_class.get((split, label), [])
                if not members:
                    raise DataError(
                        f"Class '{label}' has no readable images in {explicit[split]}/. Every class needs images "
                        "in every split folder."
                    )
                out[split] += members
    given = ", ".join(f"{name}/" for name in explicit.values())
    rule = f"Split as given by the folders {given}"
    if carved:
        words = " and ".join("validation" if s == "val" else "test" for s in carved)
        rule += (
            f"; {words} images taken out of {explicit['train']}/ ({VAL_FRACTION:.0%} of each class each, "
            f"fixed split seed {SPLIT_SEED})"
        )
    return {s: sorted(v) for s, v in out.items()}, rule
