"""The tidy results table, its summary, and paired comparisons read from it.

A study's results are one pandas DataFrame with one row per (study, dataset, condition, model,
seed) and the metrics as columns. The summary (mean and 95% CI per model × condition) is a
`groupby`; a paired comparison is a `pivot` on the seed. Nothing here trains anything, so a
table loaded from disk reads exactly as a fresh one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

HYBRID, TWIN, BACKBONE = "hybrid", "classical twin", "backbone only"
MODEL_NAMES = {"hybrid": HYBRID, "classical": TWIN, "backbone": BACKBONE}
METRICS = ("accuracy", "auc", "precision", "recall", "specificity", "f1")
KEYS = ("study", "dataset", "condition", "model", "seed")  # what identifies a row
TIMING_COLUMNS = ("seconds", "seconds_per_epoch")  # the only values that differ between identical runs
NOISE_LABELS = {"gaussian": "Gaussian σ", "salt_pepper": "salt-and-pepper amount"}  # as in condition labels

# Columns that describe a condition (copied into the summary) rather than measure it.
CONDITION_COLUMNS = (
    "x",
    "train_per_class",
    "n_train",
    "noise",
    "level",
    "p",
    "shots",
    "simulator",
    "backend",
    "family",
    "group",
    "variant",
    "n_qubits",
    "depth",
    "channels",
    "params",
    "quantum_params",
    "n_test",
    "n_eval",
    "majority_accuracy",
)
BOUNDED = (*METRICS, "train_accuracy")  # scores in [0, 1]
SUMMARY_METRICS = (*METRICS, "train_accuracy", "generalisation_gap", *TIMING_COLUMNS)


def select(table: pd.DataFrame, **match: Any) -> pd.DataFrame:
    """The rows whose columns equal `match` (a missing column matches nothing)."""
    mask = pd.Series(True, index=table.index)
    for column, value in match.items():
        if column not in table:
            return table.iloc[0:0]
        mask &= table[column] == value
    return table[mask]


def mean_of(table: pd.DataFrame, column: str = "accuracy", **match: Any) -> float | None:
    """Mean of `column` over the rows matching `match`; None when there are none."""
    values = select(table, **match)[column].dropna() if column in table else ()
    return float(np.mean(values)) if len(values) else None


def in_order(values: pd.Series) -> list[Any]:
    """The distinct values of a column in the order they first appear."""
    return list(dict.fromkeys(values.dropna()))


def summarize(table: pd.DataFrame, metrics: Sequence[str] = (), bounded: Sequence[str] = ()) -> pd.DataFrame:
    """One row per (model, condition), in the table's order: n seeds, the condition's columns, and
    mean / ci_low / ci_high of every metric.

    `metrics` and `bounded` add a study's own measurements (and those of them in [0, 1]). The
    interval is the two-sided 95% Student-t interval over seeds (`hqcnn.metrics.mean_ci`), clipped
    to [0, 1] for scores that cannot leave it.
    """
    from hqcnn.metrics import mean_ci

    out = []
    for (model, condition), group in table.groupby(["model", "condition"], sort=False):
        entry: dict[str, Any] = {"model": model, "condition": condition, "n": len(group)}
        entry.update({c: group[c].iloc[0] for c in CONDITION_COLUMNS if c in group and group[c].notna().any()})
        for metric in (*SUMMARY_METRICS, *metrics):
            values = group[metric].dropna() if metric in group else ()
            if len(values):
                mean, low, high = mean_ci(values.to_numpy(dtype=float))
                if metric in BOUNDED or metric in bounded:  # a t-interval can pass 0 or 1; a score cannot
                    low, high = max(low, 0.0), min(high, 1.0)
                entry |= {f"{metric}_mean": mean, f"{metric}_ci_low": low, f"{metric}_ci_high": high}
        out.append(entry)
    return pd.DataFrame(out)


def without_timing(table: pd.DataFrame) -> pd.DataFrame:
    """The table without its wall-time columns: what must be identical when a study is repeated."""
    return table.drop(columns=[c for c in TIMING_COLUMNS if c in table])


# ---------------------------------------------------------------------------------------------
# Paired comparisons
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of `metric` between the rows matching `a` and `b`, seed by seed (a − b).

    `tag` says what is compared ("twin", "no circuit", "gap", ...) so that claims and charts find
    a comparison by its fields, never by its label; `condition` is the condition it is about.
    """

    label: str
    metric: str
    a: Mapping[str, Any]
    b: Mapping[str, Any]
    seeds: tuple[int, ...]
    a_values: tuple[float, ...]
    b_values: tuple[float, ...]
    stats: Any  # hqcnn.stats.PairedComparison
    verdict: str
    tag: str = "twin"
    condition: str = ""
    scale: float = 100.0
    unit: str = "points"
    extra: Mapping[str, Any] = field(default_factory=dict)  # study-specific facts, e.g. noise levels

    @property
    def diffs(self) -> list[float]:
        """a − b per seed."""
        return [x - y for x, y in zip(self.a_values, self.b_values, strict=True)]

    @property
    def n(self) -> int:
        """Number of pairs."""
        return self.stats.n

    @property
    def mean_diff(self) -> float | None:
        return self.stats.mean_diff

    @property
    def p(self) -> float | None:
        """Paired t-test p value; None when no test is possible."""
        return self.stats.t_p

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p is not None and self.p < alpha

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        out = {k: v for k, v in asdict(self).items() if k != "stats"}
        return {**out, "a": dict(self.a), "b": dict(self.b), "extra": dict(self.extra), **self.stats.to_dict()}


def paired_values(table: pd.DataFrame, a: Mapping[str, Any], b: Mapping[str, Any], metric: str) -> pd.DataFrame:
    """Columns a and b of `metric` indexed by seed, for seeds where both were measured."""

    def side(match: Mapping[str, Any]) -> pd.Series:
        rows = select(table, **match)
        return rows.groupby("seed")[metric].mean() if metric in rows else pd.Series(dtype=float)

    return pd.concat({"a": side(a), "b": side(b)}, axis=1).dropna().sort_index()


def compare(
    table: pd.DataFrame,
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    label: str,
    metric: str = "accuracy",
    *,
    tag: str = "twin",
    condition: str = "",
    subject: str = "The hybrid",
    other: str = "the classical twin",
    extra: Mapping[str, Any] | None = None,
    **verdict_options: Any,
) -> Comparison:
    """Paired comparison of `metric` between the rows matching `a` and `b`, with a verdict in words."""
    from hqcnn.stats import paired_comparison, verdict

    pairs = paired_values(table, a, b, metric)
    diffs = (pairs["a"] - pairs["b"]).tolist()
    options = {"scale": 100.0, "unit": "points", **verdict_options}
    return Comparison(
        label=label,
        metric=metric,
        a=dict(a),
        b=dict(b),
        seeds=tuple(int(s) for s in pairs.index),
        a_values=tuple(pairs["a"].tolist()),
        b_values=tuple(pairs["b"].tolist()),
        stats=paired_comparison(diffs),
        verdict=verdict(diffs, subject=subject, other=other, **options),
        tag=tag,
        condition=condition,
        scale=options["scale"],
        unit=options["unit"],
        extra=dict(extra or {}),
    )


def hybrid_vs_twin(table: pd.DataFrame, metrics: Sequence[str] = ("accuracy", "auc")) -> list[Comparison]:
    """Hybrid − twin of each metric at every condition where both were measured."""
    out = []
    for condition in in_order(table["condition"]):
        if {HYBRID, TWIN} <= set(select(table, condition=condition)["model"]):
            for metric in metrics:
                out.append(
                    compare(
                        table,
                        {"model": HYBRID, "condition": condition},
                        {"model": TWIN, "condition": condition},
                        f"hybrid − classical twin, {condition}",
                        metric,
                        condition=condition,
                    )
                )
    return out
