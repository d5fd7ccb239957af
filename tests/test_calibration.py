"""Calibration metrics against hand computations and scikit-learn; temperature scaling against a grid search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import brier_score_loss, log_loss

from hqcnn import calibration as cal


def test_ece_matches_a_hand_computation():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 0])
    # Bins (k/10, (k+1)/10]: 0.9 right (bin 8), 0.7 right (bin 6), 0.6 wrong (bin 5), 0.55 wrong (bin 5).
    by_hand = (abs(0.9 - 1) + abs(0.7 - 1) + 2 * abs((0.6 + 0.55) / 2 - 0)) / 4
    assert cal.ece(probs, labels) == pytest.approx(by_hand)


def test_reliability_bins_add_up_to_the_ece():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet([1, 1, 1], 500)
    labels = rng.integers(0, 3, 500)
    bins = cal.reliability(probs, labels)
    assert sum(bins.count) == 500
    gap = sum(n * abs(c - a) for c, a, n in zip(bins.confidence, bins.accuracy, bins.count, strict=True) if n)
    assert gap / 500 == pytest.approx(cal.ece(probs, labels), abs=1e-6)  # torchmetrics bins in float32
    low, high = cal.ece_interval(probs, labels, seed=0, n_boot=50)
    assert low <= cal.ece(probs, labels) <= high


def test_brier_and_nll_match_scikit_learn():
    rng = np.random.default_rng(2)
    p1 = rng.uniform(size=300)
    probs = np.stack([1 - p1, p1], axis=1)
    labels = rng.integers(0, 2, 300)
    assert cal.brier(probs, labels) == pytest.approx(2 * brier_score_loss(labels, p1))  # Σ over both classes
    assert cal.nll(probs, labels) == pytest.approx(log_loss(labels, probs))


def test_temperature_scaling_finds_the_best_temperature_and_keeps_predictions():
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (400,))
    logits = torch.randn(400, 3, dtype=torch.float64) + 3.0 * torch.nn.functional.one_hot(labels, 3)
    logits = logits * 2.5  # over-confident: the best temperature is above 1
    t = cal.fit_temperature(logits, labels)
    grid = np.linspace(0.5, 6, 551)
    losses = [torch.nn.functional.cross_entropy(logits / g, labels).item() for g in grid]
    assert t == pytest.approx(grid[int(np.argmin(losses))], abs=0.02) and t > 1
    assert (cal.softmax(logits, t).argmax(1) == cal.softmax(logits).argmax(1)).all()
