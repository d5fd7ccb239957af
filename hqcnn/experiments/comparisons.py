"""Paired comparisons of the rows: hybrid against twin (or baseline against variant), seed by seed.

`compare` pairs two sets of rows by seed and adds the statistics and a verdict in words
(`hqcnn.stats`); the `_compare_*` functions choose, for each experiment, which pairs to compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hqcnn.experiments.rows import HYBRID, NOISE_LABELS, TWIN, _mean_of


def _paired_values(
    rows: Sequence[dict[str, Any]], a: dict[str, Any], b: dict[str, Any], metric: str
) -> tuple[list[int], list[float], list[float]]:
    """Seeds and values of `metric` for rows matching `a` and rows matching `b`, paired by seed."""

    def pick(match: dict[str, Any]) -> dict[int, float]:
        return {
            r["seed"]: float(r[metric])
            for r in rows
            if all(r.get(k) == v for k, v in match.items()) and isinstance(r.get(metric), (int, float))
        }

    va, vb = pick(a), pick(b)
    seeds = sorted(set(va) & set(vb))
    return seeds, [va[s] for s in seeds], [vb[s] for s in seeds]


def compare(
    rows: Sequence[dict[str, Any]],
    a: dict[str, Any],
    b: dict[str, Any],
    label: str,
    metric: str = "accuracy",
    subject: str = "The hybrid",
    other: str = "the classical twin",
    **verdict_options: Any,
) -> dict[str, Any]:
    """Paired comparison of `metric` between the rows matching `a` and `b` (a − b per seed)."""
    from hqcnn.stats import paired_comparison, verdict

    seeds, va, vb = _paired_values(rows, a, b, metric)
    diffs = [x - y for x, y in zip(va, vb, strict=True)]
    stats = paired_comparison(diffs)
    options = {"scale": 100.0, "unit": "points", **verdict_options}
    return {
        "comparison": label,
        "metric": metric,
        "a": a,
        "b": b,
        "seeds": seeds,
        "a_values": va,
        "b_values": vb,
        "diffs": diffs,
        **stats.to_dict(),
        "scale": options["scale"],
        "unit": options["unit"],
        "verdict": verdict(diffs, subject=subject, other=other, **options),
    }


def _conditions(rows: Sequence[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for r in rows:
        if r["condition"] not in seen:
            seen.append(r["condition"])
    return seen


def _hybrid_vs_twin(
    rows: Sequence[dict[str, Any]], metrics: Sequence[str] = ("accuracy", "auc")
) -> list[dict[str, Any]]:
    out = []
    for condition in _conditions(rows):
        models = {r["model"] for r in rows if r["condition"] == condition}
        if not {HYBRID, TWIN} <= models:
            continue
        for metric in metrics:
            out.append(
                compare(
                    rows,
                    {"model": HYBRID, "condition": condition},
                    {"model": TWIN, "condition": condition},
                    f"hybrid − classical twin, {condition}",
                    metric,
                )
            )
    return out


# ---------------------------------------------------------------------------------------------
# One comparison function per experiment (the registry names which).
# ---------------------------------------------------------------------------------------------


def _hardware_words(condition: str) -> str:
    """ "p = 0.01, 100 shots" -> "depolarising p = 0.01 and 100 shots"."""
    p, _, shots = condition.partition(", ")
    return f"depolarising {p} and {'exact read-out' if shots == 'exact' else shots}"


def _compare_hardware(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    reference = {"model": HYBRID, "condition": "p = 0, exact"}
    for condition in _conditions(rows):
        if condition in (reference["condition"],) or not any(
            r["condition"] == condition and r.get("simulator") == "default.mixed" for r in rows
        ):
            continue
        out.append(
            compare(
                rows,
                {"model": HYBRID, "condition": condition},
                reference,
                f"hybrid at {condition} − hybrid exact (p = 0)",
                subject=f"With {_hardware_words(condition)}, the hybrid",
                other="the noiseless circuit",
            )
        )
    if any(r["condition"] == reference["condition"] for r in rows):
        out.append(
            compare(
                rows,
                reference,
                {"model": TWIN},
                "hybrid exact (p = 0) − classical twin",
            )
        )
    return out


def _compare_ablations(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    baseline = next((r["condition"] for r in rows if r.get("variant") == "baseline"), None)
    if baseline is None:
        return []
    out = []
    for condition in _conditions(rows):
        if condition == baseline:
            continue
        out.append(
            compare(
                rows,
                {"condition": baseline},
                {"condition": condition},
                f"baseline − {condition}",
                subject="The baseline hybrid",
                other=condition,
            )
        )
    return out


def _compare_paired(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = _hybrid_vs_twin(rows, ("accuracy", "auc", "f1"))
    a, b = {"model": HYBRID}, {"model": TWIN}
    out.append(
        compare(
            rows,
            a,
            b,
            "generalisation gap: hybrid − classical twin",
            "generalisation_gap",
            subject="The hybrid's train−test accuracy gap",
            other="the classical twin's",
            verb="was",
            higher="larger",
            lower="smaller",
        )
    )
    out.append(
        compare(
            rows,
            a,
            b,
            "seconds per epoch: hybrid − classical twin",
            "seconds_per_epoch",
            subject="The hybrid",
            verb="took",
            scale=1.0,
            unit="s",
            higher="longer per epoch",
            lower="less per epoch",
            decimals=2,
        )
    )
    return out


def _compare_input_noise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = _hybrid_vs_twin(rows, ("accuracy",))
    out.extend(robustness_comparisons(rows))
    return out


def robustness_comparisons(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per noise type: accuracy averaged over the noisy levels (level > 0), hybrid − twin, paired by seed.

    The mean over all noisy levels is the area under the accuracy–noise curve (per level, not per
    σ unit). The drop from clean to the strongest level is not used: once both models predict a
    single class it only repeats the difference in clean accuracy.
    """
    out = []
    for noise in ("gaussian", "salt_pepper"):
        noisy_levels = sorted({r["level"] for r in rows if r.get("noise") == noise and r["level"] > 0})
        if not noisy_levels:
            continue
        synthetic = []
        for model in (HYBRID, TWIN):
            per_seed: dict[int, list[float]] = {}
            for r in rows:
                if r.get("noise") == noise and r["level"] > 0 and r["model"] == model:
                    per_seed.setdefault(r["seed"], []).append(r["accuracy"])
            synthetic += [
                {"model": model, "condition": "noisy", "seed": s, "noisy_accuracy": float(np.mean(v))}
                for s, v in per_seed.items()
                if len(v) == len(noisy_levels)
            ]
        levels = ", ".join(f"{v:g}" for v in noisy_levels)
        comparison = compare(
            synthetic,
            {"model": HYBRID},
            {"model": TWIN},
            f"mean accuracy over {NOISE_LABELS[noise]} {levels}: hybrid − classical twin",
            "noisy_accuracy",
        )
        comparison["noise"] = noise
        comparison["levels"] = noisy_levels
        worst = noisy_levels[-1]
        floor = _mean_of(rows, "majority_accuracy", noise=noise, level=worst)
        collapsed = [
            m
            for m in (HYBRID, TWIN)
            if floor is not None and (_mean_of(rows, model=m, noise=noise, level=worst) or 0) <= floor + 0.005
        ]
        comparison["collapsed_at_worst"] = collapsed
        out.append(comparison)
    return out


def _compare_param_efficiency(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return _hybrid_vs_twin(rows, ("accuracy",))
