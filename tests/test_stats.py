"""Paired statistics against scipy, against hand computations and against published textbook values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import special
from scipy import stats as sps

from hqcnn import stats
from hqcnn.errors import HQCNNError
from hqcnn.metrics import mean_ci

# Student (1908) / R's `sleep` data: extra hours of sleep, drug 2 minus drug 1, for 10 patients.
SLEEP_DIFFS = [1.2, 2.4, 1.3, 1.3, 0.0, 1.0, 1.8, 0.8, 4.6, 1.4]
# Darwin's Zea mays data (height differences, cross- minus self-fertilised), the classic Wilcoxon example.
DARWIN_DIFFS = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]


def hand_t(d: list[float]) -> tuple[float, float]:
    """t = mean / (sd / √n); two-sided p from the regularised incomplete beta function."""
    d = np.asarray(d, dtype=float)
    n = d.size
    mean = d.sum() / n
    sd = math.sqrt(((d - mean) ** 2).sum() / (n - 1))
    t = mean / (sd / math.sqrt(n))
    df = n - 1
    p = special.betainc(df / 2, 0.5, df / (df + t * t))  # P(|T| > |t|) for Student's t with df
    return t, p


def midranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def hand_wilcoxon(d: list[float]) -> tuple[float, float]:
    """Exact two-sided signed-rank test by enumerating all 2^n sign patterns (zeros dropped, mid-ranks)."""
    d = np.asarray([x for x in d if x != 0], dtype=float)
    ranks = midranks(np.abs(d))
    w_plus = ranks[d > 0].sum()
    w_minus = ranks[d < 0].sum()
    observed = min(w_plus, w_minus)
    total = ranks.sum()
    extreme = 0
    count = 0
    for signs in itertools.product((0, 1), repeat=len(d)):
        plus = float(np.dot(signs, ranks))
        if min(plus, total - plus) <= observed + 1e-9:
            extreme += 1
        count += 1
    return observed, extreme / count


def test_paired_t_matches_textbook_sleep_data():
    t, p, df = stats.paired_t(SLEEP_DIFFS)
    assert df == 9
    assert t == pytest.approx(4.0621, abs=1e-4)  # R: t.test(extra ~ group, sleep, paired = TRUE)
    assert p == pytest.approx(0.002833, abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_paired_t_matches_scipy_and_hand_formula(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 12))
    a = rng.normal(0.8, 0.05, n)
    b = a + rng.normal(0.01, 0.03, n)
    t, p, df = stats.paired_t(a, b)
    ref = sps.ttest_rel(a, b)
    assert t == pytest.approx(float(ref.statistic), rel=1e-10)
    assert p == pytest.approx(float(ref.pvalue), rel=1e-9)
    assert df == n - 1
    t_hand, p_hand = hand_t(a - b)
    assert t == pytest.approx(t_hand, rel=1e-10)
    assert p == pytest.approx(p_hand, rel=1e-8)


def test_wilcoxon_matches_darwins_data():
    w, p, n = stats.wilcoxon_signed_rank(DARWIN_DIFFS)
    assert (w, n) == (24.0, 15)
    assert p == pytest.approx(0.041259765625, abs=1e-12)  # exact, as in scipy's documentation


@pytest.mark.parametrize(
    "diffs",
    [
        [0.03, -0.01, 0.02],
        [1.0, 2.0, 3.0, -4.0, 5.0],
        [1.0, 1.0, 2.0, -1.0],  # tied magnitudes: mid-ranks
        [0.0, 0.5, -0.25, 0.75, 1.0, 1.25],  # a zero difference is dropped
        list(np.random.default_rng(3).normal(0.02, 0.03, 9)),
    ],
)
def test_wilcoxon_matches_exact_enumeration_and_scipy(diffs):
    w, p, n = stats.wilcoxon_signed_rank(diffs)
    w_hand, p_hand = hand_wilcoxon(diffs)
    assert n == sum(1 for d in diffs if d != 0)
    assert w == pytest.approx(w_hand)
    assert p == pytest.approx(p_hand, rel=1e-9)
    ref = sps.wilcoxon([d for d in diffs if d != 0])
    assert p == pytest.approx(float(ref.pvalue))


def test_wilcoxon_of_two_samples_is_that_of_their_differences():
    a, b = [0.9, 0.8, 0.85, 0.7], [0.8, 0.81, 0.8, 0.6]
    assert stats.wilcoxon_signed_rank(a, b) == stats.wilcoxon_signed_rank(np.subtract(a, b))


def test_cohens_dz_by_hand():
    d = np.array([0.02, 0.05, -0.01, 0.04])
    expected = d.mean() / d.std(ddof=1)
    assert stats.cohens_dz(d) == pytest.approx(expected)
    assert stats.cohens_dz([0.9, 0.8], [0.8, 0.75]) == pytest.approx(np.mean([0.1, 0.05]) / np.std([0.1, 0.05], ddof=1))
    # d_z is t / √n for paired data.
    t, _, _ = stats.paired_t(d)
    assert stats.cohens_dz(d) == pytest.approx(t / math.sqrt(d.size))


@pytest.mark.parametrize("dz, label", [(0.1, "negligible"), (-0.3, "small"), (0.6, "medium"), (-2.0, "large")])
def test_effect_labels(dz, label):
    assert stats.effect_label(dz) == label
    assert stats.effect_label(None) == "undefined"


def test_mean_ci_is_metrics_mean_ci_and_matches_scipy_interval():
    d = [0.012, -0.004, 0.03, 0.021, 0.008]
    assert stats.mean_ci is mean_ci
    mean, low, high = stats.mean_ci(d)
    ref_low, ref_high = sps.t.interval(0.95, len(d) - 1, loc=np.mean(d), scale=sps.sem(d))
    assert (low, high) == pytest.approx((ref_low, ref_high))
    comparison = stats.paired_comparison(d)
    assert (comparison.mean_diff, comparison.ci_low, comparison.ci_high) == pytest.approx((mean, low, high))


def test_paired_comparison_bundles_everything():
    a = [0.85, 0.88, 0.83, 0.90, 0.86]
    b = [0.84, 0.85, 0.84, 0.86, 0.83]
    c = stats.paired_comparison(a, b)
    d = np.subtract(a, b)
    assert c.n == 5
    assert c.mean_diff == pytest.approx(d.mean())
    assert c.sd_diff == pytest.approx(d.std(ddof=1))
    assert c.t_p == pytest.approx(float(sps.ttest_rel(a, b).pvalue))
    assert c.wilcoxon_p == pytest.approx(float(sps.wilcoxon(d).pvalue))
    assert c.cohens_dz == pytest.approx(d.mean() / d.std(ddof=1))
    assert set(c.to_dict()) >= {"n", "mean_diff", "ci_low", "ci_high", "t_p", "wilcoxon_p", "cohens_dz", "effect"}


def test_too_few_pairs_or_no_spread_means_no_test():
    assert stats.paired_t([0.1]) is None
    assert stats.paired_t([0.02, 0.02, 0.02]) is None  # zero variance
    assert stats.paired_t([0.1 - 0.2] * 4) is None  # round-off is not spread
    assert stats.cohens_dz([0.02, 0.02]) is None
    assert stats.wilcoxon_signed_rank([0.0, 0.0]) is None
    assert stats.wilcoxon_signed_rank([]) is None
    empty = stats.paired_comparison([])
    assert empty.n == 0 and empty.mean_diff is None and empty.t_p is None
    single = stats.paired_comparison([0.05])
    assert single.n == 1 and single.mean_diff == pytest.approx(0.05) and single.ci_low is None and single.t_p is None
    same = stats.paired_comparison([0.02, 0.02, 0.02])
    assert same.t_p is None and same.cohens_dz is None and same.effect == "undefined"
    assert same.wilcoxon_p == pytest.approx(0.25)  # all three positive: 2 / 2^3


def test_bad_inputs_are_reported_plainly():
    with pytest.raises(HQCNNError, match="one value of each model per seed"):
        stats.paired_t([0.1, 0.2], [0.1])
    with pytest.raises(HQCNNError, match="NaN"):
        stats.paired_comparison([0.1, float("nan")])
    with pytest.raises(HQCNNError, match="numbers"):
        stats.verdict(["a", "b"])


def test_verdict_reads_like_the_example_and_uses_the_computed_numbers():
    diffs = [0.051, -0.012, 0.024]  # accuracy differences of 3 seeds
    text = stats.verdict(diffs)
    comparison = stats.paired_comparison(diffs)
    mean = 100 * comparison.mean_diff
    low, high = 100 * comparison.ci_low, 100 * comparison.ci_high
    assert text.startswith(
        f"The hybrid scored {mean:.1f} points higher on average (95% CI {low:.1f} to {high:.1f}".replace("-", "−")
    )
    assert "with 3 seeds this is not statistically significant" in text
    assert f"paired t-test p = {comparison.t_p:.2f}" in text
    assert "Wilcoxon" in text and "fewer than 6 seeds" in text
    assert "effect size d_z" in text


def test_verdict_direction_and_significance():
    lower = stats.verdict([-0.03, -0.05, -0.04, -0.06, -0.035])
    assert lower.startswith("The hybrid scored 4.3 points lower on average")
    assert "statistically significant at the 0.05 level" in lower and "not statistically" not in lower
    custom = stats.verdict([0.4, 0.5, 0.45], scale=1, unit="s", verb="took", higher="longer per epoch", decimals=2)
    assert custom.startswith("The hybrid took 0.45 s longer per epoch on average")


def test_verdict_without_a_possible_test_says_so():
    one = stats.verdict([0.021])
    assert "2.1 points higher than the classical twin on the single seed" in one
    assert "no statistical test is possible" in one
    assert "no statistical test is possible" in stats.verdict([0.0])
    constant = stats.verdict([0.02, 0.02, 0.02])
    assert "on every one of the 3 seeds" in constant and "no t-test is possible" in constant
    zero = stats.verdict([0.0, 0.0, 0.0, 0.0])
    assert "did not differ on any of the 4 seeds" in zero
    assert "No paired results" in stats.verdict([])


def test_fmt_ci():
    assert stats.fmt_ci(0.8123, 0.79, 0.834) == "0.812 (95% CI 0.790–0.834)"
    assert stats.fmt_ci(0.8, 0.8, 0.8) == "0.800"
    assert stats.fmt_ci(None, None, None) == "n/a"


def test_holm_matches_a_hand_computation():
    from hqcnn.stats import holm

    # Sorted: 0.01 × 4, 0.02 × 3 = 0.06, 0.03 × 2 = 0.06, 0.5 × 1; in the given order.
    assert holm([0.03, 0.01, 0.5, 0.02]) == pytest.approx([0.06, 0.04, 0.5, 0.06])
    assert holm([0.4, 0.3]) == pytest.approx([0.6, 0.6])  # kept non-decreasing, capped at 1
    assert holm([]) == []
