"""Warnings about runs that cannot teach anything, on metrics computed by hqcnn.metrics."""

from __future__ import annotations

import numpy as np

from hqcnn.advice import MIN_TEST_PER_CLASS, after_training, before_training
from hqcnn.metrics import classification_metrics

NAMES = ["malignant", "normal, benign"]


def _metrics(y: np.ndarray, predicted: np.ndarray) -> dict:
    probabilities = np.full((len(y), 2), 0.2)
    probabilities[np.arange(len(y)), predicted] = 0.8
    return classification_metrics(y, probabilities)


def test_a_model_that_says_one_class_for_every_image_is_named():
    y = np.array([0] * 42 + [1] * 114)  # BreastMNIST's test split
    test = _metrics(y, np.ones_like(y))
    assert test["accuracy"] == test["majority_accuracy"] > 0.7  # looks respectable
    message = after_training(test, NAMES)
    assert "says 'normal, benign' for every test image" in message and "recipe" in message


def test_a_model_no_better_than_the_majority_baseline_is_named():
    y = np.array([0] * 40 + [1] * 60)
    predicted = np.array([1] * 30 + [0] * 10 + [1] * 20 + [0] * 40)  # 30 + 20 right: 0.5 < 0.6
    message = after_training(_metrics(y, predicted), NAMES)
    assert "no better than always answering the most common class (0.600)" in message


def test_a_model_that_learned_gets_no_warning():
    y = np.array([0] * 40 + [1] * 60)
    predicted = y.copy()
    predicted[:5] = 1
    assert after_training(_metrics(y, predicted), NAMES) is None


def test_before_training_names_too_few_images_for_a_batch_and_too_few_test_images():
    assert before_training(4708, 128, [234, 390], ["normal", "pneumonia"]) == []
    assert before_training(40, 32, [234, 390], ["normal", "pneumonia"]) == []  # a batch and a bit
    messages = before_training(32, 128, [4, 1], ["cats", "dogs"])
    assert len(messages) == 2
    assert "only 32 training images, fewer than one batch of 128" in messages[0]
    assert "only 4 of 'cats', 1 of 'dogs'" in messages[1] and f"fewer than {MIN_TEST_PER_CLASS}" in messages[1]
    assert "by 100 percentage points" in messages[1]  # one image of 'dogs' is all of its recall
