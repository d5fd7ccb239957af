"""The tidy rows every experiment writes (one per model × condition × seed), and their summary.

Summaries, comparisons, verdicts and figures are all computed from the rows, so a result loaded
from disk reads exactly as a fresh one. This module holds the rows' vocabulary (model names,
metrics, condition columns) and the functions that only read rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

HYBRID, TWIN, BACKBONE = "hybrid", "classical twin", "backbone only"
MODEL_NAMES = {"hybrid": HYBRID, "classical": TWIN, "backbone": BACKBONE}
METRICS = ("accuracy", "auc", "precision", "recall", "specificity", "f1")
TIMING_KEYS = ("seconds", "seconds_per_epoch")  # the only row values that differ between identical runs
NOISE_LABELS = {"gaussian": "Gaussian σ", "salt_pepper": "salt-and-pepper amount"}  # as written in condition labels

# Columns that describe a condition (copied into the summary) rather than a measurement.
_CONDITION_KEYS = (
    "x",
    "train_per_class",
    "n_train",
    "noise",
    "level",
    "p",
    "shots",
    "simulator",
    "family",
    "group",
    "variant",
    "n_qubits",
    "depth",
    "channels",
    "params",
    "quantum_params",
    "n_test",
    "majority_accuracy",
)
_BOUNDED = (*METRICS, "train_accuracy")  # scores in [0, 1]
_SUMMARY_METRICS = (*METRICS, "train_accuracy", "generalisation_gap", "seconds_per_epoch", "seconds")


def _groups(rows: Iterable[dict[str, Any]], keys: Sequence[str]) -> dict[tuple, list[dict[str, Any]]]:
    out: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    return out


def _ci(values: Sequence[float]) -> tuple[float, float, float]:
    from hqcnn.metrics import mean_ci

    return mean_ci(values)


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, condition): n seeds, and mean / ci_low / ci_high of every metric.

    The interval is the two-sided 95% Student-t interval over seeds (`hqcnn.metrics.mean_ci`), clipped
    to [0, 1] for scores that cannot leave it (accuracy, AUC, ...).
    """
    out = []
    for (model, condition), members in _groups(rows, ("model", "condition")).items():
        entry: dict[str, Any] = {"model": model, "condition": condition, "n": len(members)}
        for key in _CONDITION_KEYS:
            if key in members[0]:
                entry[key] = members[0][key]
        for metric in _SUMMARY_METRICS:
            values = [r[metric] for r in members if isinstance(r.get(metric), (int, float)) and r[metric] is not None]
            if not values:
                continue
            mean, low, high = _ci(values)
            if metric in _BOUNDED:  # a t-interval can pass 0 or 1; a score cannot
                low, high = max(low, 0.0), min(high, 1.0)
            entry[f"{metric}_mean"], entry[f"{metric}_ci_low"], entry[f"{metric}_ci_high"] = mean, low, high
        out.append(entry)
    return out


def _mean_of(rows: Sequence[dict[str, Any]], metric: str = "accuracy", **match: Any) -> float | None:
    values = [r[metric] for r in rows if all(r.get(k) == v for k, v in match.items()) and r.get(metric) is not None]
    return float(np.mean(values)) if values else None


def strip_timing(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without the wall-time columns: what must be identical when an experiment is repeated."""
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in rows]
