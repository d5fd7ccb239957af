"""Ablations: circuit variants of the configured hybrid (entangler, depth, no circuit, encoding, read-out)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hqcnn.config import ModelConfig
from hqcnn.errors import ConfigError
from hqcnn.experiments import charts
from hqcnn.experiments.registry import Study, register
from hqcnn.experiments.table import BACKBONE, HYBRID, TWIN, compare, in_order, mean_of, select
from hqcnn.experiments.tasks import base_row

from ._common import data_config, task


@dataclass(frozen=True)
class Ablation:
    """One variant: a label, a group for the charts, and how to derive its ModelConfig."""

    label: str
    group: str
    derive: Callable[[ModelConfig], ModelConfig]


def _depth(d: int) -> Callable[[ModelConfig], ModelConfig]:
    return lambda m: replace(m, depth=d)


ABLATIONS: dict[str, Ablation] = {
    "baseline": Ablation("baseline (as configured)", "baseline", lambda m: m),
    "entangler_none": Ablation("entangler: none", "entangler", lambda m: replace(m, entangler="none")),
    "entangler_chain": Ablation("entangler: chain", "entangler", lambda m: replace(m, entangler="chain")),
    "entangler_ring": Ablation("entangler: ring", "entangler", lambda m: replace(m, entangler="ring")),
    "no_circuit": Ablation("no circuit (backbone only)", "depth", lambda m: replace(m, kind="backbone")),
    **{f"depth_{d}": Ablation(f"depth {d}", "depth", _depth(d)) for d in range(1, 5)},
    "encoding_layered": Ablation("encoding: layered", "encoding", lambda m: replace(m, encoding="layered")),
    "encoding_ry": Ablation("encoding: ry", "encoding", lambda m: replace(m, encoding="ry")),
    "encoding_reupload": Ablation("encoding: reupload", "encoding", lambda m: replace(m, encoding="reupload")),
    "twin": Ablation("classical twin (reference)", "reference", lambda m: replace(m, kind="classical")),
    "readout_z": Ablation("read-out: ⟨Z⟩", "read-out", lambda m: replace(m, readout="z")),
    "readout_zz": Ablation("read-out: ⟨Z⟩ + ⟨ZZ⟩", "read-out", lambda m: replace(m, readout="zz")),
    # The twin of the wider read-out, so that "zz" is also judged at matched parameters.
    "twin_zz": Ablation(
        "classical twin, read-out ⟨Z⟩ + products", "read-out", lambda m: replace(m, kind="classical", readout="zz")
    ),
}
# Where each side of the read-out comparisons may have run: a variant equal to the baseline (or
# the twin) is run once, under the first key (see ablation_variants).
READOUT_RUNS = {
    "hybrid_z": ("readout_z", "baseline"),
    "hybrid_zz": ("readout_zz", "baseline"),
    "twin_zz": ("twin_zz", "twin"),
}


def ablation_variants(base: ModelConfig, names: Sequence[str]) -> list[tuple[str, str, str, ModelConfig]]:
    """(key, label, group, model) of each variant; a variant equal to one before it is run once."""
    unknown = [a for a in names if a not in ABLATIONS]
    if unknown:
        raise ConfigError(f"Unknown ablation(s) {', '.join(unknown)}; choose from {', '.join(ABLATIONS)}.")
    out: dict[tuple, tuple[str, str, str, ModelConfig]] = {}
    for key in names:
        ablation = ABLATIONS[key]
        model = ablation.derive(base)
        label = ablation.label
        if key == "baseline":
            label = f"baseline: {base.entangler}, depth {base.depth}, {base.encoding}"
            label += ", read-out ⟨Z⟩ + ⟨ZZ⟩" if base.readout == "zz" else ""
        # Models without a circuit do not depend on its settings (the twin does on the read-out).
        identity = model if model.kind == "hybrid" else replace(model, entangler="ring", encoding="layered", depth=1)
        if model.kind == "backbone":
            identity = replace(identity, readout="z")
        out.setdefault((model.kind, identity), (key, label, ablation.group, model))  # e.g. "depth 2" = baseline
    return list(out.values())


@register
class Ablations(Study):
    name = "ablations"
    order = 6
    title = "Ablations"
    question = (
        "Which parts of the circuit matter: entanglement, depth (including no circuit at all), encoding, read-out?"
    )
    claims = ("features",)
    claim_figures = {"features": "ablations_difference"}
    quick_seconds = 43  # 34 s measured for 8 variants; the two read-out ones scaled in
    grids = {
        "quick": {
            "train_per_class": 250,
            "variants": ("baseline", "entangler_none", "no_circuit", "depth_1", "depth_4", "encoding_ry",
                         "encoding_reupload", "twin", "readout_zz", "twin_zz"),
        },
        "full": {
            "train_per_class": None,
            "variants": ("baseline", "entangler_none", "entangler_chain", "no_circuit", "depth_1", "depth_3",
                         "depth_4", "encoding_ry", "encoding_reupload", "twin", "readout_z", "readout_zz",
                         "twin_zz"),
        },
    }  # fmt: skip

    def tasks(self, config, preset):
        grid = self.grid(preset)
        return [
            task(self, config, preset, data_config(config, grid["train_per_class"], seed), model, seed,
                 condition=label, variant=key, group=group, depth=0 if model.kind == "backbone" else model.depth,
                 readout="" if model.kind == "backbone" else model.readout)
            for seed in self.seeds(config, preset)
            for key, label, group, model in ablation_variants(config.model, grid["variants"])
        ]  # fmt: skip

    def evaluate(self, task, outcome):
        row = base_row(task, outcome)
        row["x"] = row["depth"]
        return [row]

    def compare(self, table):
        baseline = select(table, variant="baseline")["condition"]
        if baseline.empty:
            return []
        base = baseline.iloc[0]
        return [
            compare(
                table, {"condition": base}, {"condition": condition}, f"baseline − {condition}",
                tag=select(table, condition=condition)["variant"].iloc[0], condition=condition,
                subject="The baseline hybrid", other=condition,
            )
            for condition in in_order(table["condition"])
            if condition != base
        ] + readout_comparisons(table)  # fmt: skip

    def notes(self, result):
        return [
            "Every variant changes one thing of the configured hybrid. 'No circuit' feeds the backbone's features "
            "straight to the head (depth 0); the classical twin replaces the circuit by a classical layer of the same size.",
            "The read-out ⟨Z⟩ + ⟨ZZ⟩ gives the head every pair's correlator ⟨Z_i Z_j⟩ besides each qubit's ⟨Z⟩, from the "
            "same measurements; its twin gives the head the pairwise products of its outputs, at the same parameter count.",
        ]

    def figures(self, result) -> dict[str, Any]:
        import plotly.graph_objects as go

        from hqcnn.plots import apply_style

        summary = charts.records(result.summary)
        fig = go.Figure()
        charts.grouped_bars(fig, summary, "accuracy", (HYBRID, BACKBONE, TWIN), "accuracy", text=True)
        fig.update_xaxes(categoryorder="array", categoryarray=[s["condition"] for s in summary])
        lows = [s["accuracy_ci_low"] for s in summary] or [0.5]
        fig.update_yaxes(range=[max(0.0, min(lows) - 0.1), 1.0])
        charts.reference_line(fig, mean_of(result.table, "majority_accuracy"), "majority-class baseline")
        fig.update_layout(height=520)
        apply_style(fig, f"Test accuracy of each variant ({charts.ci_note(result)})", "variant", "test accuracy")
        against_baseline = [c for c in result.comparisons if c.tag not in READOUT_TAGS]
        figures = {
            "ablations": fig,
            "ablations_difference": charts.difference_figure(
                result, "Baseline hybrid − each variant, accuracy", comparisons=against_baseline
            ),
        }
        readout = [c for c in result.comparisons if c.tag in READOUT_TAGS and c.n]
        if readout:
            figures["ablations_readout"] = charts.difference_figure(
                result, "Read-out ⟨Z⟩ + ⟨ZZ⟩: paired differences", metric=None, comparisons=readout,
                labels=[f"{c.label}, {c.metric}" for c in readout],
            )  # fmt: skip
        return figures


READOUT_TAGS = ("readout", "readout_twin")


def _run_condition(table, side: str, model: str, readout: str) -> str | None:
    """The condition under which one side of a read-out comparison ran, if it did."""
    for key in READOUT_RUNS[side]:
        rows = select(table, variant=key, model=model, readout=readout)
        if not rows.empty:
            return rows["condition"].iloc[0]
    return None


def readout_comparisons(table) -> list:
    """hybrid zz − hybrid z and hybrid zz − twin zz, accuracy and AUC, where both sides ran."""
    zz = _run_condition(table, "hybrid_zz", HYBRID, "zz")
    sides = [
        ("hybrid zz − hybrid z", "readout", _run_condition(table, "hybrid_z", HYBRID, "z"), "the hybrid with ⟨Z⟩ only"),
        ("hybrid zz − twin zz", "readout_twin", _run_condition(table, "twin_zz", TWIN, "zz"),
         "the classical twin with the same read-out width"),
    ]  # fmt: skip
    if zz is None:
        return []
    return [
        compare(
            table, {"condition": zz}, {"condition": other}, label, metric, tag=tag, condition=zz,
            subject="The hybrid with ⟨Z⟩ + ⟨ZZ⟩", other=words,
        )
        for label, tag, other, words in sides
        if other is not None
        for metric in ("accuracy", "auc")
    ]  # fmt: skip
