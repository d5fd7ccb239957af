"""Paired statistics for comparing two models over the same seeds, and a verdict in plain words.

A fair comparison of the hybrid model with its classical twin trains both on the same data with
the same seeds, so each seed gives one *paired* difference d_i = hybrid_i − twin_i. This module
turns those differences into:

- the mean difference with a two-sided Student-t confidence interval (`hqcnn.metrics.mean_ci`);
- a paired t-test (`scipy.stats.ttest_1samp` of the differences against 0, identical to
  `scipy.stats.ttest_rel`) and a Wilcoxon signed-rank test (`scipy.stats.wilcoxon`, zeros dropped);
- Cohen's d_z = mean(d) / sd(d), the effect size of paired data;
- `verdict`, one or two sentences a teacher can read out, that never claim more than the data show.

Small samples are the normal case here (3–5 seeds), so every function copes with n < 2 (no test
possible) and with differences that do not vary (no spread to test), and says so instead of
returning NaN. Nothing here imports torch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from hqcnn.errors import HQCNNError
from hqcnn.metrics import mean_ci

__all__ = [
    "PairedComparison",
    "cohens_dz",
    "effect_label",
    "mean_ci",
    "paired_comparison",
    "paired_t",
    "verdict",
    "wilcoxon_signed_rank",
]

# Relative size below which a standard deviation is treated as exactly zero (float round-off of
# differences that are in truth identical, e.g. 0.1 - 0.2 computed on several seeds).
_ZERO_SPREAD = 1e-12


def _as_array(values: Sequence[float], what: str = "values") -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError) as err:
        raise HQCNNError(f"The {what} must be numbers.") from err
    if not np.all(np.isfinite(arr)):
        raise HQCNNError(f"The {what} contain NaN or infinite numbers.")
    return arr


def _differences(a: Sequence[float], b: Sequence[float] | None) -> np.ndarray:
    """a − b element-wise (paired), or `a` itself when `b` is None."""
    a_arr = _as_array(a, "measurements")
    if b is None:
        return a_arr
    b_arr = _as_array(b, "measurements")
    if a_arr.shape != b_arr.shape:
        raise HQCNNError(
            f"Paired measurements need one value of each model per seed; got {a_arr.size} and {b_arr.size}."
        )
    return a_arr - b_arr


def _no_spread(d: np.ndarray) -> bool:
    if d.size < 2:
        return True
    return float(np.std(d, ddof=1)) <= _ZERO_SPREAD * max(1.0, float(np.max(np.abs(d))))


def paired_t(a: Sequence[float], b: Sequence[float] | None = None) -> tuple[float, float, int] | None:
    """Paired t-test of a − b (or of the differences `a` alone) against a mean of 0, two-sided.

    Returns (t statistic, p value, degrees of freedom), or None when no test is possible: fewer
    than two pairs, or differences that are all equal (zero standard deviation).
    """
    d = _differences(a, b)
    if d.size < 2 or _no_spread(d):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_1samp(d, 0.0)
    return float(result.statistic), float(result.pvalue), int(d.size - 1)


def wilcoxon_signed_rank(a: Sequence[float], b: Sequence[float] | None = None) -> tuple[float, float, int] | None:
    """Wilcoxon signed-rank test of a − b against a median of 0, two-sided (scipy's defaults).

    Zero differences are dropped (Wilcoxon's convention); tied magnitudes get mid-ranks. Returns
    (W = the smaller of the positive and negative rank sums, p value, pairs used), or None when
    no pair has a non-zero difference. With n non-zero pairs the smallest possible p is 2 / 2^n,
    so below 6 seeds this test can never reach p < 0.05.
    """
    d = _differences(a, b)
    if d.size == 0:
        return None
    nonzero = d[np.abs(d) > _ZERO_SPREAD * max(1.0, float(np.max(np.abs(d))))]
    if nonzero.size == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (RuntimeWarning, UserWarning))
        result = stats.wilcoxon(nonzero)
    return float(result.statistic), float(result.pvalue), int(nonzero.size)


def cohens_dz(a: Sequence[float], b: Sequence[float] | None = None) -> float | None:
    """Cohen's d_z of paired data: mean of the differences over their standard deviation (n − 1).

    None when undefined: fewer than two pairs or no spread in the differences.
    """
    d = _differences(a, b)
    if d.size < 2 or _no_spread(d):
        return None
    return float(d.mean() / d.std(ddof=1))


def effect_label(dz: float | None) -> str:
    """Cohen's conventional words for |d|: negligible < 0.2 ≤ small < 0.5 ≤ medium < 0.8 ≤ large."""
    if dz is None:
        return "undefined"
    size = abs(dz)
    if size < 0.2:
        return "negligible"
    if size < 0.5:
        return "small"
    if size < 0.8:
        return "medium"
    return "large"


@dataclass(frozen=True)
class PairedComparison:
    """Everything known about paired differences d = a − b (e.g. hybrid − classical twin)."""

    n: int
    mean_diff: float | None
    ci_low: float | None
    ci_high: float | None
    sd_diff: float | None
    t_stat: float | None
    t_p: float | None
    wilcoxon_stat: float | None
    wilcoxon_p: float | None
    wilcoxon_n: int
    cohens_dz: float | None
    effect: str
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (plain floats, ints, strings and None)."""
        return asdict(self)


def paired_comparison(
    a: Sequence[float], b: Sequence[float] | None = None, confidence: float = 0.95
) -> PairedComparison:
    """Mean difference with its CI, both paired tests and the effect size of a − b."""
    d = _differences(a, b)
    if d.size == 0:
        return PairedComparison(0, None, None, None, None, None, None, None, None, 0, None, "undefined", confidence)
    mean, low, high = mean_ci(d, confidence)
    t = paired_t(d)
    w = wilcoxon_signed_rank(d)
    dz = cohens_dz(d)
    return PairedComparison(
        n=int(d.size),
        mean_diff=mean,
        ci_low=low if d.size >= 2 else None,
        ci_high=high if d.size >= 2 else None,
        sd_diff=float(d.std(ddof=1)) if d.size >= 2 else None,
        t_stat=t[0] if t else None,
        t_p=t[1] if t else None,
        wilcoxon_stat=w[0] if w else None,
        wilcoxon_p=w[1] if w else None,
        wilcoxon_n=w[2] if w else 0,
        cohens_dz=dz,
        effect=effect_label(dz),
        confidence=confidence,
    )


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def _number(x: float, decimals: int) -> str:
    text = f"{x:.{decimals}f}"
    if float(text) == 0:
        text = f"{0:.{decimals}f}"  # no "-0.0"
    return text.replace("-", "−")


def verdict(
    diffs: Sequence[float],
    alpha: float = 0.05,
    *,
    scale: float = 100.0,
    unit: str = "points",
    subject: str = "The hybrid",
    other: str = "the classical twin",
    verb: str = "scored",
    higher: str = "higher",
    lower: str = "lower",
    decimals: int = 1,
    replicate: str = "seed",
) -> str:
    """A plain-language verdict on paired differences (subject − other), e.g. accuracy per seed.

    Differences are multiplied by `scale` for display (100 turns accuracy 0..1 into percentage
    points). The decision uses the paired t-test at level `alpha`; the Wilcoxon p value is added
    when it exists. Example: "The hybrid scored 2.1 points higher on average (95% CI −1.0 to
    5.2); with 3 seeds this is not statistically significant (paired t-test p = 0.21; ...)."
    Fewer than two pairs, or differences without spread, get a sentence saying that no test is
    possible rather than a p value.
    """
    d = _differences(diffs, None) * scale
    n = d.size
    plural = f"{replicate}s"
    if n == 0:
        return f"No paired results: {subject[:1].lower() + subject[1:]} and {other} were not both measured on any {replicate}."

    def direction(value: float) -> str:
        return higher if value > 0 else lower

    mean = float(d.mean())
    amount = _number(abs(mean), decimals)
    if n == 1:
        if mean == 0:
            return (
                f"{subject} and {other} did not differ on the single {replicate}; "
                f"with one {replicate} no statistical test is possible."
            )
        return (
            f"{subject} {verb} {amount} {unit} {direction(mean)} than {other} on the single {replicate}; "
            f"with one {replicate} no statistical test is possible, so this may be chance."
        )
    if _no_spread(d):
        if abs(mean) <= _ZERO_SPREAD:
            return (
                f"{subject} and {other} did not differ on any of the {n} {plural}; "
                "with no difference and no spread there is nothing to test."
            )
        return (
            f"{subject} {verb} {amount} {unit} {direction(mean)} than {other} on every one of the {n} {plural} "
            "(identical differences), so the spread is zero and no t-test is possible; "
            "treat this as a consistent but untested difference."
        )
    comparison = paired_comparison(d)
    ci = (
        f"{round(comparison.confidence * 100):d}% CI {_number(comparison.ci_low, decimals)} "
        f"to {_number(comparison.ci_high, decimals)}"
    )
    if float(amount) == 0:
        head = f"{subject} and {other} did not differ on average ({ci} {unit})"
    else:
        head = f"{subject} {verb} {amount} {unit} {direction(mean)} on average ({ci})"
    p = comparison.t_p
    tests = f"paired t-test {_p_text(p)}"
    if comparison.wilcoxon_p is not None:
        tests += f", Wilcoxon {_p_text(comparison.wilcoxon_p)}"
    effect = f"effect size d_z = {_number(comparison.cohens_dz, 2)}, {comparison.effect}"
    if p < alpha:
        body = f"with {n} {plural} this is statistically significant at the {alpha:g} level ({tests}; {effect})."
    else:
        body = f"with {n} {plural} this is not statistically significant ({tests}; {effect}"
        if comparison.wilcoxon_n < 6:
            body += f"; the Wilcoxon test cannot reach p < 0.05 with fewer than 6 {plural}"
        body += ")."
    return f"{head}; {body}"


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p values, in the order given (compare each with α).

    Sorted ascending, the i-th smallest (from 0) is multiplied by m − i, kept non-decreasing and
    capped at 1: the family-wise error rate stays at α whatever the dependence between tests.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def is_significant(diffs: Sequence[float], alpha: float = 0.05) -> bool | None:
    """True/False from the paired t-test at `alpha`; None when no test is possible."""
    t = paired_t(_differences(diffs, None))
    return None if t is None else t[1] < alpha


def fmt_ci(mean: float | None, low: float | None, high: float | None, scale: float = 1.0, decimals: int = 3) -> str:
    """ "0.812 (95% CI 0.790–0.834)", or "0.812" alone when there is no interval, "n/a" for None."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    text = f"{mean * scale:.{decimals}f}"
    if low is None or high is None or low == high:
        return text
    return f"{text} (95% CI {low * scale:.{decimals}f}–{high * scale:.{decimals}f})"
