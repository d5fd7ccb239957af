"""Low data: test ACC and AUC of the hybrid and its twin against training images per class."""

from __future__ import annotations

from typing import Any

from hqcnn.experiments import charts
from hqcnn.experiments.registry import Study, register
from hqcnn.experiments.table import HYBRID, TWIN, mean_of
from hqcnn.experiments.tasks import base_row

from ._common import data_config, pair, task

ALL = "all"  # the condition of the whole training set, named with its size once it is known


@register
class LowData(Study):
    name = "low_data"
    order = 1
    title = "Low data"
    question = "Does the hybrid beat its classical twin when there are few training images?"
    claims = ("little_data",)
    claim_figures = {"little_data": "low_data_difference"}
    quick_seconds = 55
    grids = {"quick": {"sizes": (10, 50, None)}, "full": {"sizes": (10, 25, 50, 100, 250, None)}}  # None = all

    def tasks(self, config, preset):
        out = []
        for size in self.grid(preset)["sizes"]:
            for seed in self.seeds(config, preset):
                condition = ALL if size is None else f"{size} per class"
                for model in pair(config.model):
                    data = data_config(config, size, seed)
                    out.append(task(self, config, preset, data, model, seed, condition=condition, train_per_class=size))
        return out

    def evaluate(self, task, outcome):
        row = base_row(task, outcome)
        n = len(outcome.data.y_train)
        if task.columns["condition"] == ALL:
            row["condition"] = f"all ({n:,} images)"
        row["x"] = n / outcome.data.n_classes  # images per class (the mean for "all")
        return [row]

    def notes(self, result):
        return [
            "Each seed draws its own stratified training subset (same subset for both models); "
            "'all' uses every training image. x = training images per class (the mean for 'all')."
        ]

    def figures(self, result) -> dict[str, Any]:
        import plotly.graph_objects as go

        from hqcnn.plots import apply_style

        summary = charts.records(result.summary)
        figs = {}
        for metric, label in (("accuracy", "test accuracy"), ("auc", "test ROC-AUC")):
            fig = go.Figure()
            charts.band_lines(fig, summary, metric, (HYBRID, TWIN), label)
            if metric == "accuracy":
                charts.reference_line(fig, mean_of(result.table, "majority_accuracy"), "majority-class baseline")
            else:
                charts.reference_line(fig, 0.5, "chance (AUC 0.5)")
            ticks = sorted({s["x"]: s["condition"] for s in summary}.items())
            fig.update_xaxes(
                type="log",
                tickvals=[x for x, _ in ticks],
                ticktext=[c.replace(" per class", "") if "per class" in c else f"all ({x:,.0f})" for x, c in ticks],
            )
            apply_style(
                fig,
                f"{charts.upper_first(label)} against training images per class ({charts.ci_note(result)})",
                "training images per class (log scale)",
                label,
            )
            figs[f"low_data_{metric}"] = fig
        figs["low_data_difference"] = charts.difference_figure(result, "Hybrid − classical twin accuracy, per training-set size")
        return figs
