"""Paired comparison: the configured hybrid against its twin over many seeds.

Accuracy, AUC and F1, the train−test gap and the training time per epoch, seed by seed.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from hqcnn.experiments import charts
from hqcnn.experiments.registry import Study, register
from hqcnn.experiments.table import HYBRID, TWIN, Comparison, compare, hybrid_vs_twin
from hqcnn.experiments.tasks import base_row

from ._common import seed_pairs

_METRIC_NAMES = {"accuracy": "accuracy", "auc": "ROC-AUC", "f1": "F1", "generalisation_gap": "train−test gap"}


@register
class Paired(Study):
    name = "paired"
    order = 7
    title = "Paired comparison"
    question = "Over many seeds, is the hybrid better than its twin: accuracy, AUC, generalisation, training cost?"
    claims = ("features", "generalisation", "cost")
    claim_figures = {"features": "paired_difference", "generalisation": "paired_difference", "cost": "paired_cost"}
    quick_seconds = 63
    grids = {"quick": {"seeds": 5, "train_per_class": None}, "full": {"seeds": 10, "train_per_class": None}}

    def tasks(self, config, preset):
        return seed_pairs(self, config, preset, condition="as configured")

    def evaluate(self, task, outcome):
        from hqcnn.train import evaluate

        row = base_row(task, outcome)
        row["train_accuracy"] = evaluate(outcome.result.model, outcome.data.x_train, outcome.data.y_train)["accuracy"]
        row["generalisation_gap"] = row["train_accuracy"] - row["accuracy"]
        return [row]

    def compare(self, table: pd.DataFrame) -> list[Comparison]:
        a, b = {"model": HYBRID}, {"model": TWIN}
        return [
            *hybrid_vs_twin(table, ("accuracy", "auc", "f1")),
            compare(
                table, a, b, "generalisation gap: hybrid − classical twin", "generalisation_gap", tag="gap",
                subject="The hybrid's train−test accuracy gap", other="the classical twin's", verb="was",
                higher="larger", lower="smaller",
            ),
            compare(
                table, a, b, "seconds per epoch: hybrid − classical twin", "seconds_per_epoch", tag="cost",
                verb="took", scale=1.0, unit="s", higher="longer per epoch", lower="less per epoch", decimals=2,
            ),
        ]  # fmt: skip

    def notes(self, result):
        return [
            "Generalisation gap = accuracy on the (un-augmented) training images minus test accuracy. "
            "Seconds per epoch are wall time of simulated training on this computer, not of a quantum computer."
        ]

    def figures(self, result) -> dict[str, Any]:
        import plotly.graph_objects as go

        from hqcnn.plots import apply_style

        table, summary = result.table, charts.records(result.summary)
        seeds = pd.pivot_table(table, index="seed", columns="model", values="accuracy").dropna()
        fig = go.Figure()
        for i, (seed, pair_) in enumerate(seeds.iterrows()):
            fig.add_trace(
                go.Scatter(
                    x=[HYBRID, TWIN],
                    y=[pair_[HYBRID], pair_[TWIN]],
                    mode="lines+markers",
                    line={"color": "#BBBBBB", "width": 1.5},
                    marker={"color": "#666666", "size": 7},
                    name="one seed (paired)",
                    legendgroup="seeds",
                    showlegend=i == 0,
                    hovertemplate=f"seed {seed}<br>%{{x}}: %{{y:.3f}}<extra></extra>",
                )
            )
        for s in summary:
            fig.add_trace(
                go.Scatter(
                    x=[s["model"]],
                    y=[s["accuracy_mean"]],
                    mode="markers",
                    name=f"{s['model']}: mean, 95% CI",
                    marker={"color": charts.colour(s["model"]), "size": 16, "symbol": charts.STYLE[s["model"]][1]},
                    error_y=charts.error_bars([s], "accuracy", thickness=2.5, width=12),
                    hovertemplate="%{x}: mean %{y:.3f}<extra></extra>",
                )
            )
        apply_style(fig, f"Test accuracy per seed, hybrid beside its twin ({charts.ci_note(result)})", "model", "test accuracy")
        comps = [c for c in result.comparisons if c.metric in _METRIC_NAMES]
        diff = charts.difference_figure(
            result, "Paired differences, hybrid − classical twin", None, comps, [_METRIC_NAMES[c.metric] for c in comps]
        )
        diff.update_xaxes(title_text="metric")
        cost = go.Figure()
        for s in summary:
            if "seconds_per_epoch_mean" in s:
                cost.add_trace(
                    go.Bar(
                        x=[s["model"]],
                        y=[s["seconds_per_epoch_mean"]],
                        name=s["model"],
                        marker={"color": charts.colour(s["model"]), "pattern": {"shape": "" if s["model"] == HYBRID else "/"}},
                        error_y=charts.error_bars([s], "seconds_per_epoch"),
                        text=[f"{s['seconds_per_epoch_mean']:.2f} s"],
                        textposition="inside",
                        hovertemplate="%{x}: %{y:.2f} s per epoch<extra></extra>",
                    )
                )
        apply_style(
            cost, f"Training time per epoch, simulated on this computer ({charts.ci_note(result)})", "model", "seconds per epoch"
        )
        return {"paired_seeds": fig, "paired_difference": diff, "paired_cost": cost}

