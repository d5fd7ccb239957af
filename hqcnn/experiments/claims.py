"""The paper's Table 2 beside the measurements: each claim, its verdict in words, a short status.

Each claim is one function from the loaded results (study name → result) to a `Finding`: the
comparisons that decide it, the direction that supports it, and the sentences with the numbers;
None while its studies are not loaded. The studies say which claims they test (`Study.claims`).
`judge` judges every claim on one set of results, with the p values Holm-adjusted over that set;
`table2` words it as a table, `hqcnn.experiments.set_table` across datasets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from hqcnn.experiments.registry import STUDIES
from hqcnn.experiments.results import ExperimentResult
from hqcnn.experiments.table import HYBRID, NOISE_LABELS, TWIN, Comparison, select

Results = dict[str, ExperimentResult]
NOT_MEASURED = "not measured yet"
OUTSIDE_TABLE2 = "(not in Table 2)"  # how an expectation the paper does not list starts


@dataclass(frozen=True)
class Finding:
    """What the measurements say about one claim."""

    text: str
    comparisons: Sequence[Comparison]  # those that decide the status
    sources: Sequence[str]  # the studies it comes from
    good: int = +1  # the sign of a difference that supports the claim
    what: str = "comparisons"  # what the comparisons are, in a status: "at 2 of 3 {what}"
    hardware: bool = False  # a claim about a drop under noise, worded as such


@dataclass(frozen=True)
class Claim:
    """One expectation of the paper's Table 2, the figure that tests it and how to judge it."""

    key: str
    expectation: str
    figure: str
    judge: Callable[[Results], Finding | None] = field(compare=False)

    @property
    def studies(self) -> list[str]:
        """The studies that test this claim."""
        return [name for name, study in STUDIES.items() if self.key in study.claims]

    @property
    def in_table2(self) -> bool:
        """Whether the paper's Table 2 lists it (the others are added here)."""
        return not self.expectation.startswith(OUTSIDE_TABLE2)


def _first(comparisons: Sequence[Comparison], tag: str, metric: str = "accuracy") -> Comparison | None:
    return next((c for c in comparisons if c.tag == tag and c.metric == metric and c.n), None)


def _as_hybrid(verdict: str) -> str:
    return verdict.replace("The baseline hybrid", "The hybrid")


def _features(results: Results) -> Finding | None:
    twin = _first(results["paired"].comparisons, "twin") if "paired" in results else None
    source = "paired comparison"
    ablations = results["ablations"].comparisons if "ablations" in results else []
    if twin is None:  # the dedicated head-to-head (more seeds) decides against the twin, else the ablations
        twin, source = _first(ablations, "twin"), "ablations"
    parts = [f"Against the classical twin ({source}): " + _as_hybrid(twin.verdict)] if twin else []
    none = _first(ablations, "no_circuit")
    if none:
        parts.append("Against no middle layer at all (ablations): " + _as_hybrid(none.verdict))
    probe = _first(results["representation"].comparisons, "probe", "probe_accuracy") if "representation" in results else None
    if probe:
        parts.append("The head's inputs themselves (representation): " + probe.verdict)
    if not parts:
        return None
    if twin:
        parts.append("Test accuracy is an indirect measure of how good the features are.")
    sources = [n for n in ("paired", "ablations", "representation") if n in results]
    return Finding(" ".join(parts), [c for c in (twin, probe) if c], sources)


def _little_data(results: Results) -> Finding | None:
    if "low_data" not in results:
        return None
    res = results["low_data"]
    comps = [c for c in res.comparisons if c.metric == "accuracy" and c.n]
    if not comps:
        return None
    x_of = res.table.groupby("condition")["x"].mean()
    smallest = min(comps, key=lambda c: x_of[c.condition])
    higher = sum((c.mean_diff or 0) > 0 for c in comps)
    significant = sum(c.significant() for c in comps)
    text = (
        f"With {smallest.condition}: {smallest.verdict} Over all {len(comps)} sizes the hybrid was ahead "
        f"on average at {higher} and significantly different at {significant} (uncorrected α = 0.05)."
    )
    small = set(res.table.loc[res.table["train_per_class"].notna(), "condition"])
    return Finding(text, [c for c in comps if c.condition in small], ["low_data"], what="small training-set sizes")


def _noise(results: Results) -> Finding | None:
    if "input_noise" not in results:
        return None
    comps = [c for c in results["input_noise"].comparisons if c.tag == "robustness" and c.n]
    parts = []
    for c in comps:
        levels = c.extra["levels"]
        text = (
            f"{NOISE_LABELS[c.extra['noise']].capitalize()} {', '.join(f'{v:g}' for v in levels)}: mean accuracy "
            f"hybrid {np.mean(c.a_values):.3f}, twin {np.mean(c.b_values):.3f}. "
            + c.verdict.replace("The hybrid scored", "Under this noise the hybrid scored")
        )
        if len(c.extra["collapsed_at_worst"]) == 2:
            text += f" At {levels[-1]:g} both models do no better than always predicting the majority class."
        parts.append(text)
    return Finding(" ".join(parts), comps, ["input_noise"], what="noise types") if parts else None


def _parameters(results: Results) -> Finding | None:
    if "param_efficiency" not in results:
        return None
    res = results["param_efficiency"]
    comps = [c for c in res.comparisons if c.n]
    if not comps:
        return None
    first = select(res.table, model="hybrid").iloc[0]
    twin_params = int(select(res.table, model=TWIN, condition=first["condition"])["params"].mean())
    share = (
        f"At {first['condition']} the circuit holds {first['quantum_params']} of the hybrid's {first['params']:,} "
        f"trainable parameters ({100 * first['quantum_params'] / first['params']:.1f}%); the twin has "
        f"{twin_params:,} in all. "
    )
    higher = sum((c.mean_diff or 0) > 0 for c in comps)
    significant = sum(c.significant() for c in comps)
    text = share + (
        f"At {len(comps)} matched sizes the hybrid was more accurate on average at {higher} and significantly "
        f"different at {significant} (uncorrected α = 0.05). The parameter counts are matched by design, so "
        "'fewer parameters' holds only if the hybrid reaches the twin's accuracy at a smaller size: compare the "
        "curves in the figure."
    )
    return Finding(text, comps, ["param_efficiency"], what="matched sizes")


def _generalisation(results: Results) -> Finding | None:
    comp = _first(results["paired"].comparisons, "gap", "generalisation_gap") if "paired" in results else None
    return Finding(comp.verdict, [comp], ["paired"], good=-1) if comp else None


def _cost(results: Results) -> Finding | None:
    comp = _first(results["paired"].comparisons, "cost", "seconds_per_epoch") if "paired" in results else None
    if comp is None:
        return None
    a, b = float(np.mean(comp.a_values)), float(np.mean(comp.b_values))
    ratio = f" (×{a / b:.1f})" if b > 0 else ""
    text = (
        f"Simulated training on this computer: hybrid {a:.2f} s per epoch, twin {b:.2f} s{ratio}. {comp.verdict} "
        "A simulator's cost says little about a quantum computer's, where every circuit needs many shots."
    )
    return Finding(text, [comp], ["paired"], good=-1)


def _hardware(results: Results) -> Finding | None:
    parts, deciding, sources = [], [], []
    if "hardware_noise" in results:
        from hqcnn.experiments.studies.hardware_noise import exact_matches_model

        res = results["hardware_noise"]
        comps = [c for c in res.comparisons if c.tag == "hardware" and c.n]
        if comps:
            worst = max(c.extra["p"] for c in comps)
            strongest = [c for c in comps if c.extra["p"] == worst and c.extra["shots"] == "exact"]
            shots = [int(c.extra["shots"].split()[0]) for c in comps if c.extra["shots"] != "exact"]
            fewest_shots = [c for c in comps if c.extra["p"] == 0 and shots and c.extra["shots"] == f"{min(shots)} shots"]
            parts += [c.verdict for c in strongest + fewest_shots]
            same = exact_matches_model(res.table)
            if same is not None:
                parts.append(
                    "Check: the noiseless default.mixed simulation "
                    + ("reproduces" if same else "does NOT reproduce")
                    + " the trained model's accuracy on every seed."
                )
            deciding += strongest
            sources.append("hardware_noise")
    if "device_noise" in results:
        from hqcnn.device_noise import IDEAL

        comps = [c for c in results["device_noise"].comparisons if c.tag == "device" and c.n]
        most = max((c.extra["shots"] for c in comps), default=None)
        devices = [c for c in comps if c.extra["shots"] == most and c.extra["backend"] != IDEAL]
        if devices:
            parts += [c.verdict for c in devices]
            deciding += devices  # the most shots: the device's own noise, with the least shot noise
            sources.append("device_noise")
    if not deciding:
        return None
    return Finding(" ".join(parts), deciding, sources, hardware=True, what="noise models")


def _calibration(results: Results) -> Finding | None:
    if "calibration" not in results:
        return None
    res = results["calibration"]
    comps = [c for c in res.comparisons if c.tag == "ece" and c.n]
    if not comps:
        return None
    ece = res.table.groupby(["model", "condition"], sort=False)["ece"].mean()
    parts = [
        f"{c.condition.capitalize()}: ECE hybrid {100 * ece[(HYBRID, c.condition)]:.1f}, twin "
        f"{100 * ece[(TWIN, c.condition)]:.1f} points. {c.verdict}"
        for c in comps
    ]
    from hqcnn.experiments.studies.calibration import SCALED

    temperature = select(res.table, condition=SCALED).groupby("model")["temperature"].median()
    parts.append(
        f"Fitted temperatures (median): hybrid {temperature.get(HYBRID, float('nan')):.2f}, twin "
        f"{temperature.get(TWIN, float('nan')):.2f}; above 1 the validation images found the model over-confident, "
        "below 1 under-confident."
    )
    return Finding(" ".join(parts), comps[:1], ["calibration"], good=-1)


def _interpretability(results: Results) -> Finding | None:
    if "interpretability" not in results:
        return None
    res = results["interpretability"]
    comps = [c for c in res.comparisons if c.tag == "faithfulness" and c.n]
    if not comps:
        return None
    means = res.table.groupby(["condition", "model"], sort=False)[["faithfulness", "sanity_rank_correlation"]].mean()
    parts = []
    for c in comps:
        m = means.loc[c.condition]
        parts.append(
            f"{c.condition}: faithfulness hybrid {m.loc[HYBRID, 'faithfulness']:.3f}, twin {m.loc[TWIN, 'faithfulness']:.3f} "
            f"(a random order scores about 0). {c.verdict} With the middle layer re-randomised, the maps kept a rank "
            f"correlation of {m.loc[HYBRID, 'sanity_rank_correlation']:.2f} (hybrid) and "
            f"{m.loc[TWIN, 'sanity_rank_correlation']:.2f} (twin); near 1 means the map hardly depends on that layer."
        )
    parts.append("Faithfulness to the model is not the same as making sense to a clinician, which needs a study with people.")
    return Finding(" ".join(parts), comps, ["interpretability"], what="attribution methods")


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "features",
        "Better feature representation",
        "Paired comparison (hybrid against twin) and Ablations (against no middle layer): test accuracy with "
        "the same backbone; Representation: a linear probe and class separation on the head's inputs",
        _features,
    ),
    Claim("little_data", "Better performance with little data", "Low data: ACC and AUC against images per class", _little_data),
    Claim("noise", "Robustness to noise", "Input noise: accuracy against Gaussian and salt-and-pepper noise", _noise),
    Claim("parameters", "Fewer parameters", "Parameter efficiency: accuracy against trainable parameters", _parameters),
    Claim("generalisation", "Better generalisation", "Paired comparison: train−test accuracy gap per seed", _generalisation),
    Claim("cost", "Optimised computational cost", "Paired comparison: seconds per training epoch", _cost),
    Claim(
        "interpretability",
        "Better interpretability",
        "Interpretability: deletion/insertion faithfulness of each attribution method, and maps after re-randomising "
        "the middle layer",
        _interpretability,
    ),
    Claim(
        "hardware",
        f"{OUTSIDE_TABLE2} Works on today's noisy quantum hardware",
        "Quantum hardware noise: accuracy against depolarising p and shots; Device noise: accuracy on simulated "
        "IBM devices against shots",
        _hardware,
    ),
    Claim(
        "calibration",
        f"{OUTSIDE_TABLE2} Probabilities that can be taken at their word",
        "Calibration: reliability diagram and expected calibration error, as trained and temperature-scaled",
        _calibration,
    ),
)  # fmt: skip


# What a verdict amounts to, for counting across datasets (`Judgement.kind`); `status` words it.
SUPPORTED, CONTRADICTED, MIXED = "supported", "contradicted", "mixed"
NO_DIFFERENCE, UNTESTED = "no difference shown", "untested"
KINDS = (SUPPORTED, CONTRADICTED, MIXED, NO_DIFFERENCE, UNTESTED, NOT_MEASURED)


@dataclass(frozen=True)
class _Tally:
    """The deciding comparisons of a finding, sorted by what their p values say."""

    comps: list[Comparison]
    tested: list[Comparison]
    better: list[Comparison]  # significant in the claimed direction
    worse: list[Comparison]  # significant in the opposite direction
    seeds: str


def _tally(finding: Finding | None, alpha: float, p_of: Callable[[Comparison], float] | None) -> _Tally | None:
    comps = [c for c in (finding.comparisons if finding else ()) if c.n]
    if not comps:
        return None
    p_of = p_of or (lambda c: c.p)
    n = max(c.n for c in comps)
    tested = [c for c in comps if c.p is not None]
    better = [c for c in tested if p_of(c) < alpha and (c.mean_diff > 0) == (finding.good > 0)]
    worse = [c for c in tested if p_of(c) < alpha and (c.mean_diff > 0) != (finding.good > 0)]
    return _Tally(comps, tested, better, worse, f"{n} seed{'s' if n != 1 else ''}")


def kind(finding: Finding | None, alpha: float = 0.05, p_of: Callable[[Comparison], float] | None = None) -> str:
    """What `status` says, as one of `KINDS` (a significant fall under hardware noise contradicts)."""
    tally = _tally(finding, alpha, p_of)
    if tally is None:
        return NOT_MEASURED
    if not tally.tested:
        return UNTESTED
    if finding.hardware:
        return CONTRADICTED if tally.worse else NO_DIFFERENCE
    if tally.better and tally.worse:
        return MIXED
    return SUPPORTED if tally.better else CONTRADICTED if tally.worse else NO_DIFFERENCE


def status(finding: Finding | None, alpha: float = 0.05, p_of: Callable[[Comparison], float] | None = None) -> str:
    """A short verdict: supported / contradicted / mixed / no significant difference / untested.

    "Supported" needs a paired t-test p < `alpha` in the claimed direction (e.g. a smaller
    generalisation gap); "contradicted" the same in the opposite direction. `p_of` gives the p
    value to use (Table 2 passes the Holm-adjusted one); by default the comparison's own.
    """
    tally = _tally(finding, alpha, p_of)
    if tally is None:
        return NOT_MEASURED
    seeds, better, worse, k = tally.seeds, tally.better, tally.worse, len(tally.comps)
    if not tally.tested:
        return f"Untested ({seeds}: no spread or too few seeds)"
    if finding.hardware:
        if worse:
            where = "the strongest noise" if k == 1 else f"{len(worse)} of {k} {finding.what}"
            return f"Accuracy fell significantly under {where} ({seeds})"
        where = "the strongest noise" if k == 1 else f"any of {k} {finding.what}"
        return f"No significant fall in accuracy under {where} ({seeds})"
    where = "" if k == 1 else f" at {{}} of {k} {finding.what}"
    if better and worse:
        return f"Mixed: supported at {len(better)}, contradicted at {len(worse)} of {k} {finding.what} ({seeds})"
    if better:
        return "Supported" + where.format(len(better)) + f" ({seeds}, p < {alpha:g})"
    if worse:
        return "Contradicted" + where.format(len(worse)) + f" ({seeds}, p < {alpha:g}, opposite direction)"
    return f"No significant difference ({seeds})"


@dataclass(frozen=True)
class Judgement:
    """One claim judged on one set of results: its finding, status and Holm-adjusted deciding comparisons."""

    claim: Claim
    finding: Finding | None
    status: str
    kind: str
    deciding: tuple[tuple[Comparison, float], ...]  # (comparison, Holm-adjusted p), tested ones only


def judge(results: Results, alpha: float = 0.05) -> list[Judgement]:
    """Every claim of `CLAIMS` judged on `results` (name → result), in order.

    The p values are Holm–Bonferroni-adjusted over every deciding comparison of all the claims
    together (one family per set of results, e.g. per dataset).
    """
    from hqcnn.stats import holm

    findings = {claim.key: claim.judge(results) for claim in CLAIMS}
    tested = [c for f in findings.values() if f for c in f.comparisons if c.n and c.p is not None]
    adjusted = dict(zip(map(id, tested), holm([c.p for c in tested]), strict=True))

    def p_of(c: Comparison) -> float:
        return adjusted[id(c)]

    out = []
    for claim in CLAIMS:
        finding = findings[claim.key]
        deciding = tuple((c, adjusted[id(c)]) for c in (finding.comparisons if finding else ()) if id(c) in adjusted)
        out.append(Judgement(claim, finding, status(finding, alpha, p_of), kind(finding, alpha, p_of), deciding))
    return out


def table2(results: Results) -> list[dict[str, str]]:
    """The paper's expectations beside the measured verdicts of the loaded `results` (name → result).

    Each row: claim, figure (which chart tests it), status (a short verdict, see `status`, from
    p values Holm–Bonferroni-adjusted over every deciding comparison of the table), p values
    (uncorrected → adjusted), verdict (the sentences with the numbers; their p values are
    uncorrected) and source (which results it comes from).
    """
    out = []
    for judged in judge(results):
        claim, finding = judged.claim, judged.finding
        if finding is None:
            titles = [STUDIES[n].title for n in claim.studies]
            needed = " or ".join([", ".join(titles[:-1]), titles[-1]] if len(titles) > 1 else titles)
            text = f"{NOT_MEASURED}: run or load the {needed} study."
        else:
            text = finding.text
        sources = finding.sources if finding else ()
        out.append(
            {
                "claim": claim.expectation,
                "figure": claim.figure,
                "status": judged.status,
                "p values": "; ".join(f"{c.p:.3g} → {p:.3g}" for c, p in judged.deciding) or "—",
                "verdict": text,
                "source": ", ".join(
                    f"{results[n].title} ({results[n].preset.get('name', '?')} preset, {len(results[n].seeds)} seeds, "
                    f"{results[n].dataset})"
                    for n in sources
                ),
            }
        )
    return out
