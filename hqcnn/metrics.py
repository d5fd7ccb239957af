"""Classification metrics of a model on one data split, as a JSON-ready dict.

The numbers derived from the confusion matrix (accuracy, precision, recall, specificity, F1) are
computed here with numpy, so the tests can use scikit-learn as an independent reference; only the
ROC parts (curves and AUC) come from `sklearn.metrics`. Everything returned is a plain Python
float, int, list, dict or None, and `json.dumps(result, allow_nan=False)` succeeds on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve

from hqcnn.errors import HQCNNError

# Softmax outputs in float32 sum to 1 only up to rounding; this is far looser than that yet still
# catches logits or unnormalised scores passed by mistake.
_PROB_SUM_TOL = 1e-3


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Element-wise num / den with 0.0 where den == 0 (the zero-division convention used here)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.zeros(np.broadcast(num, den).shape, dtype=float)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _validate(y_true: Any, probs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check the inputs and return them as (int64 labels of shape (N,), float64 probs (N, K))."""
    y = np.asarray(y_true)
    p = np.asarray(probs)
    # MedMNIST stores labels as (N, 1); accepting that shape saves every caller a ravel().
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise HQCNNError(f"Labels must be a 1-D array of class numbers, got shape {y.shape}.")
    if p.ndim != 2:
        raise HQCNNError(f"Class probabilities must be a 2-D array (samples x classes), got shape {p.shape}.")
    n, k = p.shape
    if k < 2:
        raise HQCNNError(f"Class probabilities need at least 2 classes (columns), got {k}.")
    if y.shape[0] != n:
        raise HQCNNError(f"Labels and probabilities have different lengths: {y.shape[0]} labels, {n} probability rows.")
    if n == 0:
        raise HQCNNError("Cannot compute metrics on an empty set of samples.")
    if y.dtype == bool:
        y = y.astype(np.int64)
    elif np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise HQCNNError("Labels must be whole class numbers (0, 1, 2, ...).")
        y = y.astype(np.int64)
    elif not np.issubdtype(y.dtype, np.integer):
        raise HQCNNError(f"Labels must be whole class numbers, got values of type {y.dtype}.")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= k:
        raise HQCNNError(f"Labels must lie in 0..{k - 1} for {k} classes, found labels from {y.min()} to {y.max()}.")
    if not np.issubdtype(p.dtype, np.number) or np.issubdtype(p.dtype, np.complexfloating):
        raise HQCNNError(f"Class probabilities must be real numbers, got type {p.dtype}.")
    p = p.astype(np.float64)
    if not np.all(np.isfinite(p)):
        raise HQCNNError("Class probabilities contain NaN or infinite values.")
    if p.min() < -_PROB_SUM_TOL or p.max() > 1 + _PROB_SUM_TOL:
        raise HQCNNError("Class probabilities must lie between 0 and 1 (apply softmax first).")
    if np.max(np.abs(p.sum(axis=1) - 1.0)) > _PROB_SUM_TOL:
        raise HQCNNError("Each row of class probabilities must sum to 1 (apply softmax first).")
    return y, p


def _roc(positive: np.ndarray, score: np.ndarray) -> dict[str, list[float]] | None:
    """One ROC curve as JSON-safe lists, or None when it is undefined (one class only)."""
    if positive.all() or not positive.any():
        return None
    fpr, tpr, thr = roc_curve(positive, score)
    thr = np.asarray(thr, dtype=float)
    finite = np.isfinite(thr)
    # sklearn's first threshold is +inf ("nothing is positive"). Strict JSON cannot hold inf, so
    # write it as the next float above every score, which keeps both its meaning and the order.
    top = max(float(thr[finite].max()) if finite.any() else 1.0, 1.0)
    thr[~finite] = np.nextafter(top, math.inf)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thr.tolist()}


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, positive: int | None = 1) -> dict[str, Any]:
    """Metrics of predicted class probabilities against true labels, as a JSON-ready dict.

    Args:
        y_true: (N,) integer labels in 0..K-1 (an (N, 1) array, as MedMNIST stores them, is
            accepted too).
        probs: (N, K) class probabilities, K >= 2, each row summing to 1. The prediction is the
            argmax (ties go to the lower class number).

    Returns:
        A dict of plain Python values:
        - "accuracy", "majority_accuracy" (always predicting the most frequent class of
          `y_true`, the baseline to show beside the results), "n" (number of samples).
        - "precision", "recall" (sensitivity), "specificity", "f1": for K == 2 those of the
          class `positive` (the finding screened for: 1 in most MedMNIST binary tasks, 0 =
          malignant in BreastMNIST; see `datasets_base.positive_class`), also returned as
          "positive" (None for K > 2). For K > 2 the macro average
          (one-vs-rest per class) over the classes that occur in `y_true` or in the predictions,
          as scikit-learn does: a class absent from both says nothing about this split.
          Zero division gives 0.0.
        - "auc": ROC-AUC; binary from probs[:, positive] (the same for either class), multi-class the macro one-vs-rest mean over
          the classes that have both positives and negatives in `y_true` (equal to sklearn's
          `roc_auc_score(multi_class="ovr")` when every class occurs). None when undefined
          (fewer than two classes in `y_true`).
        - "confusion": K x K list of lists, rows = true class, columns = predicted class.
        - "roc": binary: {"fpr", "tpr", "thresholds"} of class `positive`, or None when undefined;
          multi-class: {"0": {...}, "1": {...}, ...} one-vs-rest curves, None for a class whose
          curve is undefined. sklearn's leading +inf threshold is replaced by the next float
          above the highest score so the result is strict JSON.
        - "per_class": {"precision": [...], "recall": [...], "support": [...]} for all K classes.

    Raises:
        HQCNNError: the inputs have the wrong shape, mismatched lengths, labels out of range,
            or probabilities that are NaN/infinite, outside [0, 1] or not summing to 1.
    """
    y, p = _validate(y_true, probs)
    n, k = p.shape
    positive = 1 if positive is None else positive  # None: a multi-class task's (unused) value
    if k == 2 and positive not in (0, 1):
        raise HQCNNError(f"The positive class of a binary task is 0 or 1, got {positive!r}.")
    pred = p.argmax(axis=1)

    confusion = np.bincount(k * y + pred, minlength=k * k).reshape(k, k)
    tp = np.diag(confusion).astype(float)
    support = confusion.sum(axis=1)  # true count per class
    predicted = confusion.sum(axis=0)
    fp = predicted - tp
    fn = support - tp
    tn = n - tp - fp - fn

    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    specificity = _safe_div(tn, tn + fp)
    # 2TP / (2TP + FP + FN) equals 2PR / (P + R) but stays defined when P is 0/0.
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)

    if k == 2:
        summary = {
            "precision": precision[positive],
            "recall": recall[positive],
            "specificity": specificity[positive],
            "f1": f1[positive],
        }
    else:
        seen = (support > 0) | (predicted > 0)
        summary = {
            "precision": precision[seen].mean(),
            "recall": recall[seen].mean(),
            "specificity": specificity[seen].mean(),
            "f1": f1[seen].mean(),
        }

    if k == 2:
        is_positive = y == positive
        auc = float(roc_auc_score(is_positive, p[:, positive])) if 0 < is_positive.sum() < n else None
        roc: Any = _roc(is_positive, p[:, positive])
    else:
        aucs = [float(roc_auc_score(y == c, p[:, c])) for c in range(k) if 0 < support[c] < n]
        auc = float(np.mean(aucs)) if aucs else None
        roc = {str(c): _roc(y == c, p[:, c]) for c in range(k)}

    return {
        "accuracy": float(tp.sum() / n),
        **{name: float(value) for name, value in summary.items()},
        "auc": auc,
        "confusion": confusion.tolist(),
        "roc": roc,
        "majority_accuracy": float(support.max() / n),
        "positive": positive if k == 2 else None,
        "n": int(n),
        "per_class": {
            "precision": precision.tolist(),
            "recall": recall.tolist(),
            "support": support.tolist(),
        },
    }


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval of repeated measurements (e.g. seeds).

    Args:
        values: the measurements, at least one, all finite.
        confidence: coverage of the interval, strictly between 0 and 1.

    Returns:
        (mean, low, high). With a single value, or values all equal, the interval collapses to
        (mean, mean, mean): there is no spread to estimate.

    Raises:
        HQCNNError: no values, non-finite values, or a confidence outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise HQCNNError(f"Confidence must be between 0 and 1 (e.g. 0.95), got {confidence}.")
    try:
        arr = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError) as err:
        raise HQCNNError("Values for a confidence interval must be numbers.") from err
    if arr.size == 0:
        raise HQCNNError("Cannot compute a mean and confidence interval of no values.")
    if not np.all(np.isfinite(arr)):
        raise HQCNNError("Values for a confidence interval contain NaN or infinite numbers.")
    mean = float(arr.mean())
    if arr.size == 1:
        return mean, mean, mean
    sem = float(arr.std(ddof=1) / math.sqrt(arr.size))
    if sem == 0.0:
        # scipy returns NaN bounds for a zero scale; an exact interval is the honest answer.
        return mean, mean, mean
    half = float(stats.t.ppf((1.0 + confidence) / 2.0, df=arr.size - 1)) * sem
    return mean, mean - half, mean + half


def operating_point(y_true: Any, probs: Any, positive: int, threshold: float) -> dict[str, Any]:
    """A binary test at one threshold: an image is called `positive` when P(positive) ≥ threshold.

    Returns the confusion counts (tp, fp, tn, fn), sensitivity (recall of the positive class),
    specificity, PPV (precision), NPV and accuracy; a ratio with an empty denominator is None.
    """
    y, p = _validate(y_true, probs)
    if p.shape[1] != 2 or positive not in (0, 1):
        raise HQCNNError("An operating point needs a binary task and a positive class of 0 or 1.")
    truth = y == positive
    called = p[:, positive] >= threshold
    tp, fp = int(np.sum(called & truth)), int(np.sum(called & ~truth))
    fn, tn = int(np.sum(~called & truth)), int(np.sum(~called & ~truth))

    def ratio(num: int, den: int) -> float | None:
        return num / den if den else None

    return {
        "threshold": float(threshold),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "ppv": ratio(tp, tp + fp),
        "npv": ratio(tn, tn + fn),
        "accuracy": (tp + tn) / len(y),
    }


def bootstrap_interval(
    y_true: Any,
    probs: Any,
    statistic: Any,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of `statistic(y, probs)` over resampled images (seeded).

    Resamples where the statistic is undefined (returns None, e.g. AUC with one class) are
    skipped; None if fewer than half are defined.
    """
    y, p = _validate(y_true, probs)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        rows = rng.integers(0, len(y), len(y))
        value = statistic(y[rows], p[rows])
        if value is not None:
            values.append(value)
    if len(values) < n_boot / 2:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(p.argmax(axis=1) == y))


def _rank_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC as the Mann–Whitney statistic (ties count half), equal to sklearn's roc_auc_score and
    ~20× faster, which a bootstrap of a thousand resamples needs."""
    ranks = stats.rankdata(score)
    n_pos = int(positive.sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (len(score) - n_pos)))


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC-AUC as `classification_metrics` computes it (macro one-vs-rest over classes present)."""
    columns = [1] if p.shape[1] == 2 else range(p.shape[1])
    aucs = [_rank_auc(y == c, p[:, c]) for c in columns if 0 < np.sum(y == c) < len(y)]
    return float(np.mean(aucs)) if aucs else None


def test_intervals(y_true: Any, probs: Any, seed: int = 0, n_boot: int = 1000) -> dict[str, list[float] | None]:
    """95% bootstrap intervals of test accuracy and ROC-AUC (the test sets here are small)."""
    out = {}
    for name, statistic in (("accuracy", _accuracy), ("auc", _auc)):
        interval = bootstrap_interval(y_true, probs, statistic, n_boot=n_boot, seed=seed)
        out[name] = list(interval) if interval else None
    return out
