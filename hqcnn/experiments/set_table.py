"""Table 2 across datasets, and the same in a few plain sentences.

`table2_by_dataset(sets)` judges every claim on each dataset's results as `claims.table2` does
for one (`claims.judge`: the p values are Holm-adjusted over the comparisons deciding that
dataset's column) and keeps, per cell, the status, the deciding comparison's effect with its
Holm-adjusted p, and the figure that shows it. `plain_summary` words the table for a reader
without statistics, never more strongly than the table: a non-significant difference is "no
difference shown", never "no difference".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hqcnn.experiments import claims
from hqcnn.experiments.registry import STUDIES
from hqcnn.experiments.results import ExperimentResult
from hqcnn.experiments.results_set import Sets
from hqcnn.experiments.table import Comparison

ALPHA = 0.05
CLAIM_COLUMN = "The paper expects (Table 2)"
_METRIC_WORDS = {
    "auc": "ROC-AUC",
    "generalisation_gap": "train−test gap",
    "seconds_per_epoch": "seconds per epoch",
    "ece": "ECE",
    "probe_accuracy": "probe accuracy",
}


def _number(x: float, decimals: int, signed: bool = False) -> str:
    text = f"{x:+.{decimals}f}" if signed else f"{x:.{decimals}f}"
    if float(text) == 0:
        text = f"{0:.{decimals}f}"  # no "-0.0"
    return text.replace("-", "−")


def effect_text(comparison: Comparison | None) -> str:
    """The mean paired difference with its 95% interval, in its unit: "accuracy +1.2 points (95% CI −0.4 to 2.8)"."""
    if comparison is None or comparison.mean_diff is None:
        return "—"
    c, stats = comparison, comparison.stats
    decimals = 2 if c.scale == 1 else 1
    text = f"{_METRIC_WORDS.get(c.metric, c.metric.replace('_', ' '))} {_number(c.mean_diff * c.scale, decimals, True)} {c.unit}"
    if stats.ci_low is not None and stats.ci_high is not None:
        text += f" (95% CI {_number(stats.ci_low * c.scale, decimals)} to {_number(stats.ci_high * c.scale, decimals)})"
    return text


def p_text(p: float | None) -> str:
    return "—" if p is None else "< 0.001" if p < 0.001 else f"{p:.3f}"


@dataclass(frozen=True)
class Cell:
    """One claim on one dataset."""

    status: str  # as `claims.status`, from the Holm-adjusted p values of this dataset's column
    kind: str  # one of `claims.KINDS`
    comparison: Comparison | None  # the deciding comparison shown: the one with the smallest adjusted p
    p_holm: float | None  # its Holm-adjusted p (None: no test was possible)
    deciding: tuple[tuple[Comparison, float], ...]  # every tested deciding comparison, with its adjusted p
    study: str | None  # the study whose figure shows the comparison
    figure: str | None  # that figure's key in `hqcnn.experiments.figures(result)`

    @property
    def effect(self) -> str:
        return effect_text(self.comparison)

    @property
    def figure_title(self) -> str:
        """ "Paired comparison › paired_difference", or "—"."""
        return f"{STUDIES[self.study].title} › {self.figure}" if self.study and self.figure else "—"


@dataclass(frozen=True)
class ClaimRow:
    """One claim of `claims.CLAIMS`, judged on each dataset (dataset → cell, in the sets' order)."""

    key: str
    claim: str
    in_table2: bool
    cells: dict[str, Cell]


def _study_of(comparison: Comparison, sources: Sequence[str], results: Mapping[str, ExperimentResult]) -> str | None:
    """Which of the finding's studies the comparison comes from (comparisons are values: equal fields, same one)."""
    if len(sources) <= 1:
        return sources[0] if sources else None
    return next((s for s in sources if comparison in results[s].comparisons), sources[0])


def _cell(judged: claims.Judgement, results: Mapping[str, ExperimentResult]) -> Cell:
    finding = judged.finding
    if judged.deciding:
        comparison, p_holm = min(judged.deciding, key=lambda pair: pair[1])  # the first of equals
    else:  # untested (too few seeds, no spread) or not measured: the first comparison, without a p
        comparison = next((c for c in (finding.comparisons if finding else ()) if c.n), None)
        p_holm = None
    study = _study_of(comparison, finding.sources, results) if finding and comparison else None
    figure = STUDIES[study].claim_figures.get(judged.claim.key) if study else None
    return Cell(judged.status, judged.kind, comparison, p_holm, judged.deciding, study, figure)


def table2_by_dataset(sets: Sets, alpha: float = ALPHA) -> list[ClaimRow]:
    """One row per claim of `claims.CLAIMS`, one cell per dataset of `sets` (dataset → study name → result)."""
    columns = {dataset: claims.judge(dict(results), alpha) for dataset, results in sets.items()}
    return [
        ClaimRow(
            claim.key,
            claim.expectation,
            claim.in_table2,
            {dataset: _cell(judged[i], sets[dataset]) for dataset, judged in columns.items()},
        )
        for i, claim in enumerate(claims.CLAIMS)
    ]


def dataset_title(dataset: str) -> str:
    from hqcnn.data import DATASETS

    return DATASETS[dataset].title if dataset in DATASETS else dataset


def display_rows(rows: Sequence[ClaimRow]) -> list[dict[str, str]]:
    """The table as Markdown cells (each value escaped): the claim, then one column per dataset."""
    from hqcnn.markdown import md

    def cell(c: Cell) -> str:
        parts = [f"**{md(c.status)}**"]
        if c.comparison is not None:
            several = len(c.deciding) > 1
            parts.append(md(c.effect) + (f" (smallest p of {len(c.deciding)} comparisons)" if several else ""))
            parts.append(f"Holm p {md(p_text(c.p_holm))}")
        if c.figure:
            parts.append(f"figure: {md(c.figure_title)}")
        return " · ".join(parts)

    return [{CLAIM_COLUMN: md(r.claim), **{md(dataset_title(d)): cell(c) for d, c in r.cells.items()}} for r in rows]


def records(rows: Sequence[ClaimRow]) -> list[dict[str, Any]]:
    """The table in long form for a CSV: one record per claim and dataset, plain text."""
    return [
        {
            "claim": r.claim,
            "dataset": dataset,
            "status": c.status,
            "comparison": c.comparison.label if c.comparison else "",
            "effect": c.effect,
            "holm_p": c.p_holm,
            "deciding_comparisons": len(c.deciding),
            "figure": f"{c.study}/{c.figure}" if c.figure else "",
        }
        for r in rows
        for dataset, c in r.cells.items()
    ]


# ---------------------------------------------------------------------------------------------
# The same in words
# ---------------------------------------------------------------------------------------------


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _listing(parts: Sequence[str]) -> str:
    parts = list(parts)
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def accuracy_against_twin(cell: Cell, alpha: float = ALPHA) -> str | None:
    """The feature claim's accuracy comparison against the twin on one dataset: "higher", "lower",
    "no difference shown", or None when it was not tested."""
    pair = next(((c, p) for c, p in cell.deciding if c.tag == "twin" and c.metric == "accuracy"), None)
    if pair is None:
        return None
    comparison, p = pair
    if p >= alpha:
        return claims.NO_DIFFERENCE
    return "higher" if comparison.mean_diff > 0 else "lower"


def _accuracy_sentence(rows: Sequence[ClaimRow], n: int) -> str | None:
    features = next((r for r in rows if r.key == "features"), None)
    if features is None:
        return None
    found = [accuracy_against_twin(c) for c in features.cells.values()]
    higher, lower, none = found.count("higher"), found.count("lower"), found.count(claims.NO_DIFFERENCE)
    if higher + lower + none == 0:
        return None
    text = (
        f"On {higher} of {_count(n, 'dataset')} the hybrid was significantly more accurate than its classical twin "
        "(an ordinary network of the same size, trained the same way)"
    )
    rest = []
    if lower:
        rest.append(f"on {lower} it was significantly less accurate")
    if none:
        rest.append(f"on {none} no difference was shown")
    if n - higher - lower - none:
        rest.append(f"on {n - higher - lower - none} it was not tested")
    return text + ("; " + _listing(rest) if rest else "") + "."


def _claims_sentences(rows: Sequence[ClaimRow], n: int) -> list[str]:
    paper = [r for r in rows if r.in_table2]
    if not paper:
        return []
    supported = [(r, sum(c.kind == claims.SUPPORTED for c in r.cells.values())) for r in paper]
    supported = [(r, k) for r, k in supported if k]
    against = [(r, sum(c.kind == claims.CONTRADICTED for c in r.cells.values())) for r in paper]
    against = [(r, k) for r, k in against if k]

    def named(pairs: list[tuple[ClaimRow, int]]) -> str:
        return _listing([f"{r.claim.lower()} (on {k} of {n})" for r, k in pairs])

    if supported:
        first = (
            f"Of the paper's {len(paper)} expectations (its Table 2), {len(supported)} found support on at least one "
            f"dataset: {named(supported)}."
        )
    else:
        first = f"None of the paper's {len(paper)} expectations (its Table 2) was supported on any of the {_count(n, 'dataset')}."
    kinds = [c.kind for r in paper for c in r.cells.values()]
    tally = [f"{kinds.count(claims.SUPPORTED)} supported the paper"]
    tally.append(f"{kinds.count(claims.CONTRADICTED)} went against it")
    tally.append(f"in {kinds.count(claims.NO_DIFFERENCE)} no difference was shown")
    for kind, words in (
        (claims.MIXED, "were mixed"),
        (claims.UNTESTED, "could not be tested"),
        (claims.NOT_MEASURED, "were not measured"),
    ):
        if kinds.count(kind):
            tally.append(f"{kinds.count(kind)} {words}")
    second = f"Of all {len(kinds)} verdicts (expectation by dataset), {_listing(tally)}"
    second += f"; against the paper: {named(against)}." if against else "."
    return [first, second]


def _hardware_sentence(rows: Sequence[ClaimRow]) -> str | None:
    hardware = next((r for r in rows if r.key == "hardware"), None)
    measured = [c for c in hardware.cells.values() if c.kind != claims.NOT_MEASURED] if hardware else []
    if not measured:
        return None
    fell = sum(c.kind == claims.CONTRADICTED for c in measured)
    if not fell:
        return (
            "On a simulated noisy quantum computer, no significant fall in the hybrid's accuracy was shown on any of "
            f"the {_count(len(measured), 'dataset')}."
        )
    return f"On a simulated noisy quantum computer, the hybrid's accuracy fell significantly on {fell} of {_count(len(measured), 'dataset')}."


def _test_sizes(sets: Sets) -> list[int]:
    sizes = []
    for results in sets.values():
        tables = [r.table for r in results.values() if "n_test" in r.table]
        values = [int(t["n_test"].max()) for t in tables if t["n_test"].notna().any()]
        if values:
            sizes.append(max(values))
    return sizes


def _limits_sentence(sets: Sets, rows: Sequence[ClaimRow]) -> str:
    sizes = _test_sizes(sets)
    seeds = sorted({len(r.seeds) for results in sets.values() for r in results.values()})
    tested = sum(len(c.deciding) for r in rows for c in r.cells.values())
    size_text = f" ({_listing([f'{s:,}' for s in sizes])} test images)" if sizes else ""
    seed_text = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}" if seeds else "a few"
    return (
        "These results do not show how the model would do on a real quantum computer or in a clinic: every circuit "
        f"was simulated, the images are 28×28 pixels, the test sets are small{size_text}, with {seed_text} seeds only "
        "large differences can be detected ('no difference shown' is not proof that the models are equal), and among "
        f"{tested} comparisons a few may look significant by chance even after the Holm correction, which is applied "
        "per dataset."
    )


def plain_summary(sets: Sets, rows: Sequence[ClaimRow] | None = None) -> list[str]:
    """3–6 short sentences for a reader without statistics, from the table (computed when not given)."""
    rows = table2_by_dataset(sets) if rows is None else rows
    n = len(sets)
    sentences = [_accuracy_sentence(rows, n), *_claims_sentences(rows, n), _hardware_sentence(rows)]
    return [s for s in sentences if s] + [_limits_sentence(sets, rows)]


def markdown_report(results_set: Any) -> str:
    """The set's label, plain summary and per-dataset Table 2 as Markdown, for the README:
    `python -m hqcnn.experiments.set_table [SET_FOLDER]` prints it (default: the shipped set)."""
    from hqcnn.experiments.results_set import label

    rows = table2_by_dataset(results_set.results)
    shown = display_rows([r for r in rows if r.in_table2])
    header = list(shown[0]) if shown else [CLAIM_COLUMN]
    lines = [
        label(results_set),
        "",
        *[f"- {sentence}" for sentence in plain_summary(results_set.results, rows)],
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(row[h].replace("|", "\\|") for h in header) + " |" for row in shown],
    ]
    return "\n".join(lines) + "\n"


README_BEGIN = "<!-- shipped-set:begin"
README_END = "<!-- shipped-set:end -->"


def readme_block(text: str) -> str:
    """The report between README's shipped-set markers (the line of each marker excluded)."""
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError("no shipped-set block in this README")
    return text[text.index("\n", start) + 1 : end]


def write_readme(path: str | Path, report: str) -> None:
    """Replace README's shipped-set block by `report`, so that its numbers are the set's."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    old = readme_block(text)
    start = text.index(old, text.find(README_BEGIN))
    path.write_text(text[:start] + report + text[start + len(old) :], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """`python -m hqcnn.experiments.set_table [SET] [--readme README.md]`: print the report, or write it into README."""
    import argparse
    import sys

    from hqcnn import determinism
    from hqcnn.experiments.results_set import load_set

    parser = argparse.ArgumentParser(prog="python -m hqcnn.experiments.set_table", description=markdown_report.__doc__)
    parser.add_argument("set", nargs="?", help="the set's folder (default: the shipped set)")
    parser.add_argument("--readme", help="write the report between this README's shipped-set markers")
    args = parser.parse_args(argv)
    loaded = load_set(args.set)
    print(determinism.summary(loaded.provenance.get("compute")), file=sys.stderr)  # about this machine: not for README
    if args.readme:
        write_readme(args.readme, markdown_report(loaded))
    else:
        print(markdown_report(loaded), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
