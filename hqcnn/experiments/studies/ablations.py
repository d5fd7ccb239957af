"""Ablations: circuit variants of the configured hybrid (entangler, depth, no circuit, encoding)."""

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
        label = f"baseline: {base.entangler}, depth {base.depth}, {base.encoding}" if key == "baseline" else ablation.label
        # Models without a circuit do not depend on its settings.
        identity = model if model.kind == "hybrid" else replace(model, entangler="ring", encoding="layered", depth=1)
        out.setdefault((model.kind, identity), (key, label, ablation.group, model))  # e.g. "depth 2" = baseline
    return list(out.values())


@register
class Ablations(Study):
    name = "ablations"
    order = 6
    title = "Ablations"
    question = "Which parts of the circuit matter: entanglement, depth (including no circuit at all), encoding?"
    claims = ("features",)
    quick_seconds = 34
    grids = {
        "quick": {
            "train_per_class": 250,
            "variants": ("baseline", "entangler_none", "no_circuit", "depth_1", "depth_4", "encoding_ry",
                         "encoding_reupload", "twin"),
        },
        "full": {
            "train_per_class": None,
            "variants": ("baseline", "entangler_none", "entangler_chain", "no_circuit", "depth_1", "depth_3",
                         "depth_4", "encoding_ry", "encoding_reupload", "twin"),
        },
    }  # fmt: skip

    def tasks(self, config, preset):
        grid = self.grid(preset)
        return [
            task(self, config, preset, data_config(config, grid["train_per_class"], seed), model, seed,
                 condition=label, variant=key, group=group, depth=0 if model.kind == "backbone" else model.depth)
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
        ]  # fmt: skip

    def notes(self, result):
        return [
            "Every variant changes one thing of the configured hybrid. 'No circuit' feeds the backbone's features "
            "straight to the head (depth 0); the classical twin replaces the circuit by a classical layer of the same size."
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
        return {
            "ablations": fig,
            "ablations_difference": charts.difference_figure(result, "Baseline hybrid − each variant, accuracy"),
        }
