"""Plain-language warnings about runs that cannot teach anything, before and after training.

A model that answers one class for every image shows a respectable accuracy on an unbalanced
set (0.731 on BreastMNIST, 0.435 on RetinaMNIST) and looks like a working model; a test split
with a handful of images of a class gives figures that one image moves by ten points. These
functions say so in words a non-programmer understands. They return messages, never raise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MIN_TEST_PER_CLASS = 20  # below this, one image moves a class's recall by more than 5 points


def before_training(
    n_train: int, batch_size: int, test_counts: Sequence[int], label_names: Sequence[str]
) -> list[str]:
    """Warnings about the data and settings of a run that has not started."""
    messages = []
    if n_train < batch_size:
        messages.append(
            f"There are only {n_train:,} training images, fewer than one batch of {batch_size}: each epoch is "
            "a single step, too few for the model to learn. Choose a smaller batch size (or the recommended "
            "recipe), or add images."
        )
    few = [(name, count) for name, count in zip(label_names, test_counts, strict=False) if count < MIN_TEST_PER_CLASS]
    if few:
        listed = ", ".join(f"{count} of '{name}'" for name, count in few)
        messages.append(
            f"The test split has only {listed} (fewer than {MIN_TEST_PER_CLASS} images of a class): a single image "
            "changes that class's recall by "
            f"{100 / max(1, min(count for _, count in few)):.0f} percentage points, so the test figures will be rough. "
            "Use more images per class for results you can compare."
        )
    return messages


def after_training(test: dict[str, Any], label_names: Sequence[str]) -> str | None:
    """A warning when a trained model predicts one class for everything or no better than the baseline."""
    confusion = test.get("confusion")
    if not confusion:
        return None
    predicted = [sum(row[j] for row in confusion) for j in range(len(confusion))]
    used = [j for j, count in enumerate(predicted) if count]
    advice = (
        "Try the recommended recipe (Train page), more epochs, or a higher learning rate; on a small dataset, "
        "more images per class."
    )
    if len(used) == 1:
        name = label_names[used[0]] if used[0] < len(label_names) else str(used[0])
        return (
            f"This model says '{name}' for every test image: it has not learned to tell the classes apart, "
            f"whatever its accuracy ({test['accuracy']:.3f}, the share of '{name}' images). {advice}"
        )
    if test["accuracy"] <= test["majority_accuracy"]:
        return (
            f"This model's test accuracy ({test['accuracy']:.3f}) is no better than always answering the most common "
            f"class ({test['majority_accuracy']:.3f}). {advice}"
        )
    return None
