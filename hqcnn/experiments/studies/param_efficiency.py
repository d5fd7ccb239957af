"""Parameter efficiency: accuracy against trainable parameters, over circuit sizes and backbone widths."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hqcnn.config import ModelConfig
from hqcnn.experiments import charts
from hqcnn.experiments.registry import Study, register
from hqcnn.experiments.table import HYBRID, TWIN, hybrid_vs_twin, mean_of
from hqcnn.experiments.tasks import base_row

from ._common import data_config, pair, task


def size_conditions(base: ModelConfig, grid: dict[str, Any]) -> list[tuple[str, str, ModelConfig]]:
    """(label, family, hybrid) of each model size, without repeats."""
    out: dict[ModelConfig, tuple[str, str, ModelConfig]] = {}
    for q, d in grid["circuit_sizes"]:
        features = base.n_features if q == base.n_qubits else 2 * q
        model = replace(base, n_qubits=q, depth=d, n_features=features)
        out.setdefault(model, (f"{q} qubits, depth {d}, widths {model.channels[0]}-{model.channels[1]}", "circuit size", model))
    for c1, c2 in grid["widths"]:
        model = replace(base, channels=(c1, c2))
        label = f"{model.n_qubits} qubits, depth {model.depth}, widths {c1}-{c2}"
        out.setdefault(model, (label, "backbone width", model))
    return list(out.values())


@register
class ParamEfficiency(Study):
    name = "param_efficiency"
    order = 5
    title = "Parameter efficiency"
    question = "For a given number of trainable parameters, which model is more accurate?"
    claims = ("parameters",)
    claim_figures = {"parameters": "param_efficiency_difference"}
    quick_seconds = 81
    grids = {
        "quick": {"train_per_class": 250, "circuit_sizes": ((2, 1), (4, 2), (6, 3)), "widths": ((4, 8), (16, 32))},
        "full": {
            "train_per_class": None,
            "circuit_sizes": ((2, 1), (2, 2), (4, 1), (4, 2), (4, 4), (6, 2), (8, 2)),
            "widths": ((4, 8), (8, 16), (16, 32)),
        },
    }

    def tasks(self, config, preset):
        grid = self.grid(preset)
        return [
            task(self, config, preset, data_config(config, grid["train_per_class"], seed), model, seed,
                 condition=label, family=family, n_qubits=model.n_qubits, depth=model.depth,
                 channels=f"{model.channels[0]}-{model.channels[1]}")
            for label, family, hybrid in size_conditions(config.model, grid)
            for seed in self.seeds(config, preset)
            for model in pair(hybrid)
        ]  # fmt: skip

    def evaluate(self, task, outcome):
        row = base_row(task, outcome)
        row["x"] = row["params"]
        return [row]

    def compare(self, table):
        return hybrid_vs_twin(table, ("accuracy",))

    def notes(self, result):
        return [
            "Circuit size varies qubits and depth (2 features per qubit unless it is the configured qubit count); "
            "backbone width varies the two convolution widths. Each hybrid has its own parameter-matched twin."
        ]

    def figures(self, result) -> dict[str, Any]:
        import plotly.graph_objects as go

        from hqcnn.plots import apply_style

        fig = go.Figure()
        summary = charts.records(result.summary)
        for model in (HYBRID, TWIN):
            pts = [s for s in summary if s["model"] == model]
            if not pts:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[s["params"] for s in pts],
                    y=[s["accuracy_mean"] for s in pts],
                    mode="markers",
                    name=model,
                    marker={"color": charts.colour(model), "symbol": charts.STYLE[model][1], "size": 12, "line": {"color": "white", "width": 1}},
                    error_y=charts.error_bars(pts, "accuracy"),
                    customdata=[[s["condition"], s.get("quantum_params", 0)] for s in pts],
                    hovertemplate="%{customdata[0]}<br>%{x:,} parameters (%{customdata[1]} in the circuit)"
                    "<br>accuracy %{y:.3f}<extra>" + model + "</extra>",
                )
            )
        charts.reference_line(fig, mean_of(result.table, "majority_accuracy"), "majority-class baseline")
        fig.update_xaxes(type="log")
        apply_style(fig, f"Test accuracy against model size ({charts.ci_note(result)})", "trainable parameters (log scale)", "test accuracy")
        return {
            "param_efficiency": fig,
            "param_efficiency_difference": charts.difference_figure(result, "Hybrid − classical twin accuracy at matched sizes"),
        }
