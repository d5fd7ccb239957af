"""Tests of hqcnn.metrics, with scikit-learn and scipy as independent references."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from hqcnn.errors import HQCNNError
from hqcnn.metrics import classification_metrics, mean_ci

CASES = [(k, seed) for k in (2, 5) for seed in (0, 1, 2)]


def _random_case(k: int, seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Labels and softmax probabilities mildly correlated with them, so metrics are not trivial."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def _specificity_by_hand(y: np.ndarray, pred: np.ndarray, cls: int) -> float:
    tn = int(np.sum((y != cls) & (pred != cls)))
    fp = int(np.sum((y != cls) & (pred == cls)))
    return tn / (tn + fp) if tn + fp else 0.0


def _assert_plain(obj: object) -> None:
    """No numpy scalars or arrays anywhere in the result."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            assert isinstance(key, str)
            _assert_plain(value)
    elif isinstance(obj, list):
        for value in obj:
            _assert_plain(value)
    else:
        assert obj is None or type(obj) in (int, float), type(obj)


@pytest.mark.parametrize(("k", "seed"), CASES)
def test_matches_sklearn(k: int, seed: int) -> None:
    y, probs = _random_case(k, seed)
    pred = probs.argmax(axis=1)
    m = classification_metrics(y, probs)

    assert m["n"] == len(y)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["confusion"] == confusion_matrix(y, pred, labels=list(range(k))).tolist()
    if k == 2:
        kw: dict = {"pos_label": 1, "average": "binary", "zero_division": 0}
        auc = roc_auc_score(y, probs[:, 1])
        spec = _specificity_by_hand(y, pred, 1)
    else:
        kw = {"average": "macro", "zero_division": 0}
        auc = roc_auc_score(y, probs, multi_class="ovr", average="macro")
        spec = float(np.mean([_specificity_by_hand(y, pred, c) for c in range(k)]))
    assert m["precision"] == pytest.approx(precision_score(y, pred, **kw))
    assert m["recall"] == pytest.approx(recall_score(y, pred, **kw))
    assert m["f1"] == pytest.approx(f1_score(y, pred, **kw))
    assert m["specificity"] == pytest.approx(spec)
    assert m["auc"] == pytest.approx(auc)

    labels = list(range(k))
    assert m["per_class"]["precision"] == pytest.approx(
        precision_score(y, pred, labels=labels, average=None, zero_division=0).tolist()
    )
    assert m["per_class"]["recall"] == pytest.approx(
        recall_score(y, pred, labels=labels, average=None, zero_division=0).tolist()
    )
    assert m["per_class"]["support"] == np.bincount(y, minlength=k).tolist()
    assert m["majority_accuracy"] == pytest.approx(np.bincount(y).max() / len(y))


@pytest.mark.parametrize(("k", "seed"), CASES)
def test_result_is_strict_json(k: int, seed: int) -> None:
    y, probs = _random_case(k, seed)
    m = classification_metrics(y, probs)
    _assert_plain(m)
    json.dumps(m, allow_nan=False)


@pytest.mark.parametrize(("k", "seed"), CASES)
def test_roc_curves(k: int, seed: int) -> None:
    y, probs = _random_case(k, seed)
    m = classification_metrics(y, probs)
    curves = {"1": m["roc"]} if k == 2 else m["roc"]
    if k > 2:
        assert sorted(curves) == [str(c) for c in range(k)]
    for name, curve in curves.items():
        cls = int(name)
        assert len(curve["fpr"]) == len(curve["tpr"]) == len(curve["thresholds"])
        assert curve["fpr"][0] == 0.0 and curve["tpr"][0] == 0.0
        assert curve["fpr"][-1] == 1.0 and curve["tpr"][-1] == 1.0
        thr = curve["thresholds"]
        # The replaced +inf must still sit above every score, keeping the curve's meaning.
        assert all(math.isfinite(t) for t in thr)
        assert thr[0] > probs[:, cls].max()
        assert np.all(np.diff(thr) < 0)
        assert np.trapezoid(curve["tpr"], curve["fpr"]) == pytest.approx(roc_auc_score(y == cls, probs[:, cls]))


@pytest.mark.parametrize("k", [2, 5])
def test_perfect_classifier(k: int) -> None:
    y = np.tile(np.arange(k), 10)
    probs = np.full((len(y), k), 0.1 / (k - 1))
    probs[np.arange(len(y)), y] = 0.9
    m = classification_metrics(y, probs)
    for key in ("accuracy", "precision", "recall", "specificity", "f1", "auc"):
        assert m[key] == 1.0, key
    assert m["per_class"]["precision"] == [1.0] * k
    assert m["per_class"]["recall"] == [1.0] * k
    assert m["confusion"] == np.diag([10] * k).tolist()
    assert m["majority_accuracy"] == pytest.approx(1 / k)


def test_majority_accuracy_is_of_this_split() -> None:
    y = np.array([0, 1, 1, 1, 2, 2, 0, 1])
    probs = np.full((8, 3), 1 / 3)
    m = classification_metrics(y, probs)
    assert m["majority_accuracy"] == pytest.approx(4 / 8)
    # Uniform probabilities: argmax is always class 0 (ties go to the lower class).
    assert m["accuracy"] == pytest.approx(2 / 8)


@pytest.mark.parametrize(("k", "label"), [(2, 0), (2, 1), (5, 3)])
def test_auc_none_with_one_class(k: int, label: int) -> None:
    y = np.full(20, label)
    probs = np.random.default_rng(0).dirichlet(np.ones(k), size=20)
    m = classification_metrics(y, probs)
    assert m["auc"] is None
    if k == 2:
        assert m["roc"] is None
    else:
        assert all(curve is None for curve in m["roc"].values())
    json.dumps(m, allow_nan=False)


def test_zero_division_gives_zero() -> None:
    # Binary, the model never predicts class 1 and class 1 is absent: P, R, F1 of class 1 are 0/0.
    y = np.zeros(6, dtype=int)
    probs = np.tile([0.8, 0.2], (6, 1))
    with np.errstate(all="raise"):
        m = classification_metrics(y, probs)
    assert m["precision"] == m["recall"] == m["f1"] == 0.0
    assert m["specificity"] == 1.0
    assert m["accuracy"] == 1.0


def test_multiclass_with_absent_class() -> None:
    # Class 3 of 4 never occurs in y_true nor in the predictions.
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, size=120)
    probs = rng.dirichlet(np.ones(4), size=120)
    probs[:, 3] = 0.0
    probs /= probs.sum(axis=1, keepdims=True)
    pred = probs.argmax(axis=1)
    m = classification_metrics(y, probs)
    # Macro over classes seen in y_true or predictions: sklearn's default label set.
    for ours, ref in (
        ("precision", precision_score),
        ("recall", recall_score),
        ("f1", f1_score),
    ):
        assert m[ours] == pytest.approx(ref(y, pred, average="macro", zero_division=0))
    spec = np.mean([_specificity_by_hand(y, pred, c) for c in range(3)])
    assert m["specificity"] == pytest.approx(spec)
    # AUC over the present classes equals sklearn's ovr on those columns, renormalised.
    sub = probs[:, :3] / probs[:, :3].sum(axis=1, keepdims=True)
    expected = np.mean([roc_auc_score(y == c, probs[:, c]) for c in range(3)])
    assert m["auc"] == pytest.approx(expected)
    assert roc_auc_score(y, sub, multi_class="ovr") == pytest.approx(expected)
    assert m["roc"]["3"] is None
    assert len(m["confusion"]) == 4
    json.dumps(m, allow_nan=False)


def test_accepts_medmnist_label_shape() -> None:
    y, probs = _random_case(2, 0)
    assert classification_metrics(y[:, None], probs) == classification_metrics(y, probs)


@pytest.mark.parametrize(
    ("y", "probs", "match"),
    [
        (np.array([0, 1, 1]), np.full((2, 2), 0.5), "different lengths"),
        (np.array([0, 1]), np.array([0.5, 0.5]), "2-D"),
        (np.array([0, 1]), np.full((2, 2, 1), 0.5), "2-D"),
        (np.array([0, 2]), np.full((2, 2), 0.5), "0..1"),
        (np.array([-1, 1]), np.full((2, 2), 0.5), "0..1"),
        (np.array([0, 1]), np.array([[np.nan, 1.0], [0.5, 0.5]]), "NaN"),
        (np.array([0, 1]), np.array([[2.0, 3.0], [0.5, 0.5]]), "between 0 and 1"),
        (np.array([0, 1]), np.array([[0.2, 0.2], [0.5, 0.5]]), "sum to 1"),
        (np.array([0, 0]), np.ones((2, 1)), "at least 2 classes"),
        (np.array([[0, 1], [1, 0]]), np.full((2, 2), 0.5), "1-D"),
        (np.array([0.0, 0.5]), np.full((2, 2), 0.5), "whole class numbers"),
        (np.array(["a", "b"]), np.full((2, 2), 0.5), "whole class numbers"),
        (np.zeros(0, dtype=int), np.zeros((0, 2)), "empty"),
    ],
)
def test_bad_inputs_raise(y: np.ndarray, probs: np.ndarray, match: str) -> None:
    with pytest.raises(HQCNNError, match=match):
        classification_metrics(y, probs)


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
@pytest.mark.parametrize("values", [[0.71, 0.74, 0.69], [0.5, 0.9], [1.0, 2.0, 3.0, 4.0, 10.0]])
def test_mean_ci_matches_scipy(values: list[float], confidence: float) -> None:
    mean, low, high = mean_ci(values, confidence)
    ref_low, ref_high = stats.t.interval(confidence, df=len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert mean == pytest.approx(np.mean(values))
    assert (low, high) == pytest.approx((ref_low, ref_high))
    assert all(type(v) is float for v in (mean, low, high))


def test_mean_ci_degenerate() -> None:
    assert mean_ci([0.8]) == (0.8, 0.8, 0.8)
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)


@pytest.mark.parametrize(
    ("values", "confidence", "match"),
    [
        ([], 0.95, "no values"),
        ([0.1, float("nan")], 0.95, "NaN"),
        ([0.1, 0.2], 1.0, "between 0 and 1"),
        ([0.1, 0.2], 0.0, "between 0 and 1"),
        (["x", "y"], 0.95, "must be numbers"),
    ],
)
def test_mean_ci_bad_inputs(values: list, confidence: float, match: str) -> None:
    with pytest.raises(HQCNNError, match=match):
        mean_ci(values, confidence)


def test_binary_metrics_of_the_class_screened_for_equal_sklearn_pos_label():
    from sklearn.metrics import f1_score, precision_score, recall_score

    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 120)
    p1 = np.clip(0.4 * y + rng.random(120) * 0.6, 0, 1)
    probs = np.stack([1 - p1, p1], axis=1)
    pred = probs.argmax(1)
    for positive in (0, 1):
        m = classification_metrics(y, probs, positive)
        assert m["positive"] == positive
        assert m["precision"] == pytest.approx(precision_score(y, pred, pos_label=positive))
        assert m["recall"] == pytest.approx(recall_score(y, pred, pos_label=positive))
        assert m["specificity"] == pytest.approx(recall_score(y, pred, pos_label=1 - positive))
        assert m["f1"] == pytest.approx(f1_score(y, pred, pos_label=positive))
    # The AUC does not depend on which class is called positive.
    assert classification_metrics(y, probs, 0)["auc"] == pytest.approx(classification_metrics(y, probs, 1)["auc"])
    with pytest.raises(HQCNNError, match="0 or 1"):
        classification_metrics(y, probs, 2)
