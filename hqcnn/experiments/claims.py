"""The paper's Table 2 beside the measurements: each claim, its verdict in words, a short status.

`table2(results)` takes the loaded results (name → result); a claim whose experiment is not
among them reads "not measured yet".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hqcnn.experiments.comparisons import robustness_comparisons
from hqcnn.experiments.registry import EXPERIMENTS
from hqcnn.experiments.results import ExperimentResult
from hqcnn.experiments.rows import HYBRID, NOISE_LABELS, TWIN, _mean_of


@dataclass(frozen=True)
class Claim:
    """One expectation of the paper's Table 2 and where it is tested."""

    key: str
    expectation: str
    experiment: str | None
    figure: str


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "features",
        "Better feature representation",
        "paired",
        "Paired comparison (hybrid against twin) and Ablations (against no middle layer): test accuracy with "
        "the same backbone",
    ),
    Claim(
        "little_data",
        "Better performance with little data",
        "low_data",
        "Low data: ACC and AUC against images per class",
    ),
    Claim(
        "noise",
        "Robustness to noise",
        "input_noise",
        "Input noise: accuracy against Gaussian and salt-and-pepper noise",
    ),
    Claim(
        "parameters",
        "Fewer parameters",
        "param_efficiency",
        "Parameter efficiency: accuracy against trainable parameters",
    ),
    Claim("generalisation", "Better generalisation", "paired", "Paired comparison: train−test accuracy gap per seed"),
    Claim("cost", "Optimised computational cost", "paired", "Paired comparison: seconds per training epoch"),
    Claim("interpretability", "Better interpretability", None, "none: no experiment scores interpretability"),
    Claim(
        "hardware",
        "(not in Table 2) Works on today's noisy quantum hardware",
        "hardware_noise",
        "Quantum hardware noise: accuracy against depolarising p and shots",
    ),
)


NOT_MEASURED = "not measured yet"


def _find(comparisons: Sequence[dict[str, Any]], label_start: str, metric: str = "accuracy") -> dict[str, Any] | None:
    return next((c for c in comparisons if c["comparison"].startswith(label_start) and c["metric"] == metric), None)


# ---------------------------------------------------------------------------------------------
# The verdict in words of each claim (None when its experiment is not loaded)
# ---------------------------------------------------------------------------------------------


def _claim_features(results: dict[str, ExperimentResult]) -> str | None:
    parts = []
    twin, source = None, ""
    if "paired" in results:  # the dedicated head-to-head (more seeds) decides against the twin
        twin, source = _find(results["paired"].comparisons, "hybrid − classical twin"), "paired comparison"
    if (twin is None or not twin["n"]) and "ablations" in results:
        comps = results["ablations"].comparisons
        twin = next((c for c in comps if c["b"].get("condition", "").startswith("classical twin")), None)
        source = "ablations"
    if twin and twin["n"]:
        parts.append(
            f"Against the classical twin ({source}): " + twin["verdict"].replace("The baseline hybrid", "The hybrid")
        )
    if "ablations" in results:
        comps = results["ablations"].comparisons
        none = next((c for c in comps if c["b"].get("condition", "").startswith("no circuit")), None)
        if none and none["n"]:
            parts.append(
                "Against no middle layer at all (ablations): "
                + none["verdict"].replace("The baseline hybrid", "The hybrid")
            )
    if not parts:
        return None
    return " ".join(parts) + " Test accuracy is an indirect measure of how good the features are."


def _claim_little_data(results: dict[str, ExperimentResult]) -> str | None:
    res = results.get("low_data")
    if res is None:
        return None
    comps = [c for c in res.comparisons if c["metric"] == "accuracy" and c["n"]]
    if not comps:
        return None
    rows = res.rows
    by_x = sorted(comps, key=lambda c: _mean_of(rows, "x", condition=c["a"]["condition"]) or 0)
    smallest = by_x[0]
    higher = sum(1 for c in comps if (c["mean_diff"] or 0) > 0)
    significant = sum(1 for c in comps if c["t_p"] is not None and c["t_p"] < 0.05)
    return (
        f"With {smallest['a']['condition']}: {smallest['verdict']} Over all {len(comps)} sizes the hybrid was ahead "
        f"on average at {higher} and significantly different at {significant} (uncorrected α = 0.05)."
    )


def _claim_noise(results: dict[str, ExperimentResult]) -> str | None:
    res = results.get("input_noise")
    if res is None:
        return None
    parts = []
    for comp in robustness_comparisons(res.rows):
        if not comp["n"]:
            continue
        noise = comp["noise"]
        text = (
            f"{NOISE_LABELS[noise].capitalize()} {', '.join(f'{v:g}' for v in comp['levels'])}: mean accuracy "
            f"hybrid {float(np.mean(comp['a_values'])):.3f}, twin {float(np.mean(comp['b_values'])):.3f}. "
            + comp["verdict"].replace("The hybrid scored", "Under this noise the hybrid scored")
        )
        if len(comp["collapsed_at_worst"]) == 2:
            text += f" At {comp['levels'][-1]:g} both models do no better than always predicting the majority class."
        parts.append(text)
    return " ".join(parts) or None


def _claim_parameters(results: dict[str, ExperimentResult]) -> str | None:
    res = results.get("param_efficiency")
    if res is None:
        return None
    comps = [c for c in res.comparisons if c["n"]]
    rows = res.rows
    if not comps:
        return None
    hybrid_rows = [r for r in rows if r["model"] == HYBRID]
    share = ""
    if hybrid_rows:
        r0 = hybrid_rows[0]
        twin_params = _mean_of(rows, "params", model=TWIN, condition=r0["condition"])
        share = (
            f"At {r0['condition']} the circuit holds {r0['quantum_params']} of the hybrid's {r0['params']:,} trainable "
            f"parameters ({100 * r0['quantum_params'] / r0['params']:.1f}%); the twin has "
            f"{int(twin_params or 0):,} in all. "
        )
    higher = sum(1 for c in comps if (c["mean_diff"] or 0) > 0)
    significant = sum(1 for c in comps if c["t_p"] is not None and c["t_p"] < 0.05)
    return (
        share + f"At {len(comps)} matched sizes the hybrid was more accurate on average at {higher} and significantly "
        f"different at {significant} (uncorrected α = 0.05). The parameter counts are matched by design, so "
        "'fewer parameters' holds only if the hybrid reaches the twin's accuracy at a smaller size: compare the "
        "curves in the figure."
    )


def _claim_generalisation(results: dict[str, ExperimentResult]) -> str | None:
    res = results.get("paired")
    comp = _find(res.comparisons, "generalisation gap", "generalisation_gap") if res else None
    return comp["verdict"] if comp and comp["n"] else None


def _claim_cost(results: dict[str, ExperimentResult]) -> str | None:
    res = results.get("paired")
    comp = _find(res.comparisons, "seconds per epoch", "seconds_per_epoch") if res else None
    if not comp or not comp["n"]:
        return None
    a, b = float(np.mean(comp["a_values"])), float(np.mean(comp["b_values"]))
    ratio = f" (×{a / b:.1f})" if b > 0 else ""
    return (
        f"Simulated training on this computer: hybrid {a:.2f} s per epoch, twin {b:.2f} s{ratio}. {comp['verdict']} "
        "A simulator's cost says little about a quantum computer's, where every circuit needs many shots."
    )


def _claim_hardware(results: dict[str, ExperimentResult]) -> str | None:
    res = results.get("hardware_noise")
    if res is None:
        return None
    comps = res.comparisons
    worst_p = max((r["p"] for r in res.rows if r.get("p") is not None), default=None)
    if worst_p is None:
        return None
    parts = []
    for c in comps:
        cond = c["a"].get("condition", "")
        if not c["n"]:
            continue
        if cond == f"p = {worst_p:g}, exact" or (cond.startswith("p = 0,") and cond.endswith("100 shots")):
            parts.append(c["verdict"])
    same = _exact_matches_model(res.rows)
    if same is not None:
        parts.append(
            "Check: the noiseless default.mixed simulation "
            + ("reproduces" if same else "does NOT reproduce")
            + " the trained model's accuracy on every seed."
        )
    return " ".join(parts) or None


def _exact_matches_model(rows: Sequence[dict[str, Any]]) -> bool | None:
    exact = {r["seed"]: r["accuracy"] for r in rows if r["model"] == HYBRID and r["condition"] == "p = 0, exact"}
    trained = {r["seed"]: r["accuracy"] for r in rows if r.get("simulator") == "training"}
    seeds = set(exact) & set(trained)
    if not seeds:
        return None
    return all(abs(exact[s] - trained[s]) < 1e-9 for s in seeds)


_CLAIM_VERDICTS: dict[str, Callable[[dict[str, ExperimentResult]], str | None]] = {
    "features": _claim_features,
    "little_data": _claim_little_data,
    "noise": _claim_noise,
    "parameters": _claim_parameters,
    "generalisation": _claim_generalisation,
    "cost": _claim_cost,
    "hardware": _claim_hardware,
}


# ---------------------------------------------------------------------------------------------
# The short status of each claim, and the table
# ---------------------------------------------------------------------------------------------


def _key_comparisons(key: str, results: dict[str, ExperimentResult]) -> tuple[list[dict[str, Any]], int, str]:
    """The comparisons that decide a claim, the sign of the difference that supports it, and their unit."""
    if key == "features":  # as in `_claim_features`: the paired comparison first, else the ablations' twin
        if "paired" in results:
            comp = _find(results["paired"].comparisons, "hybrid − classical twin")
            if comp and comp["n"]:
                return [comp], +1, "comparisons"
        if "ablations" in results:
            comps = [
                c for c in results["ablations"].comparisons if c["b"].get("condition", "").startswith("classical twin")
            ]
            return comps, +1, "comparisons"
    if key == "little_data" and "low_data" in results:
        res = results["low_data"]
        small = {r["condition"] for r in res.rows if r.get("train_per_class") is not None}
        comps = [c for c in res.comparisons if c["metric"] == "accuracy" and c["a"]["condition"] in small]
        return comps, +1, "small training-set sizes"
    if key == "noise" and "input_noise" in results:
        return robustness_comparisons(results["input_noise"].rows), +1, "noise types"
    if key == "parameters" and "param_efficiency" in results:
        return results["param_efficiency"].comparisons, +1, "matched sizes"
    if key == "generalisation" and "paired" in results:
        comp = _find(results["paired"].comparisons, "generalisation gap", "generalisation_gap")
        return ([comp] if comp else []), -1, "comparisons"
    if key == "cost" and "paired" in results:
        comp = _find(results["paired"].comparisons, "seconds per epoch", "seconds_per_epoch")
        return ([comp] if comp else []), -1, "comparisons"
    if key == "hardware" and "hardware_noise" in results:
        res = results["hardware_noise"]
        worst_p = max((r["p"] for r in res.rows if r.get("p") is not None), default=None)
        comps = [
            c for c in res.comparisons if worst_p is not None and c["a"].get("condition") == f"p = {worst_p:g}, exact"
        ]
        return comps, +1, "comparisons"
    return [], +1, "comparisons"


def claim_status(key: str, results: dict[str, ExperimentResult], alpha: float = 0.05) -> str:
    """A short verdict on one claim: supported / contradicted / no significant difference / untested.

    "Supported" needs a paired t-test p < `alpha` in the claimed direction (e.g. a smaller
    generalisation gap); "contradicted" the same in the opposite direction. Uncorrected for the
    number of comparisons.
    """
    comps, good, what = _key_comparisons(key, results)
    comps = [c for c in comps if c and c["n"]]
    if not comps:
        return NOT_MEASURED
    n = max(c["n"] for c in comps)
    tested = [c for c in comps if c["t_p"] is not None]
    better = [c for c in tested if c["t_p"] < alpha and (c["mean_diff"] > 0) == (good > 0)]
    worse = [c for c in tested if c["t_p"] < alpha and (c["mean_diff"] > 0) != (good > 0)]
    k = len(comps)
    where = "" if k == 1 else f" at {{}} of {k} {what}"
    seeds = f"{n} seed{'s' if n != 1 else ''}"
    if key == "hardware":
        if worse and not better:
            return f"Accuracy fell significantly under the strongest noise ({seeds})"
        if not tested:
            return f"Untested ({seeds}: no spread or too few seeds)"
        return f"No significant change in accuracy under the strongest noise ({seeds})"
    if better and worse:
        return f"Mixed: supported at {len(better)}, contradicted at {len(worse)} of {k} {what} ({seeds})"
    if better:
        return "Supported" + where.format(len(better)) + f" ({seeds}, p < {alpha:g})"
    if worse:
        return "Contradicted" + where.format(len(worse)) + f" ({seeds}, p < {alpha:g}, opposite direction)"
    if not tested:
        return f"Untested ({seeds}: no spread or too few seeds)"
    return f"No significant difference ({seeds})"


def table2(results: dict[str, ExperimentResult]) -> list[dict[str, str]]:
    """The paper's expectations beside the measured verdicts of the loaded `results` (name → result).

    Each row: claim, figure (which chart tests it), status (a short verdict, see `claim_status`),
    verdict (the sentences with the numbers) and source (which result it comes from).
    """
    out = []
    for claim in CLAIMS:
        if claim.experiment is None:
            status = "Not measured"
            measured = (
                "No experiment here scores interpretability. The Explain page shows attribution "
                "maps and per-qubit read-outs for the hybrid and the twin alike; judging which is more "
                "interpretable needs a study with people."
            )
            source = ""
        else:
            text = _CLAIM_VERDICTS[claim.key](results)
            needed = EXPERIMENTS[claim.experiment].title
            measured = text if text else f"{NOT_MEASURED}: run or load the {needed} experiment."
            status = claim_status(claim.key, results) if text else NOT_MEASURED
            used = [n for n in ("paired", "ablations") if claim.key == "features" and n in results]
            used = used or ([claim.experiment] if claim.experiment in results else [])
            source = ", ".join(
                f"{results[n].title} ({results[n].preset.get('name', '?')} preset, {len(results[n].seeds)} seeds, "
                f"{results[n].dataset})"
                for n in used
            )
        out.append(
            {
                "claim": claim.expectation,
                "figure": claim.figure,
                "status": status,
                "verdict": measured,
                "source": source,
            }
        )
    return out
