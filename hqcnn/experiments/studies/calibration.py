"""Calibration: can the hybrid's probabilities, and its twin's, be taken at their word?

Expected calibration error (with a bootstrap interval over test images), Brier score and the
reliability diagram, as trained and after temperature scaling fitted on the validation split.
"""

from __future__ import annotations

from typing import Any

from hqcnn.experiments import charts
from hqcnn.experiments.registry import Study, register
from hqcnn.experiments.table import HYBRID, TWIN, compare, in_order
from hqcnn.experiments.tasks import metrics_row

from ._common import seed_pairs

AS_TRAINED, SCALED = "as trained", "temperature-scaled on validation"
_BINS = range(10)  # hqcnn.calibration.N_BINS equal-width confidence bins


@register
class Calibration(Study):
    name = "calibration"
    order = 8
    title = "Calibration"
    question = "When the hybrid says 80%, is it right 80% of the time, and more often than its twin?"
    claims = ("calibration",)
    claim_figures = {"calibration": "calibration_difference"}
    metrics = ("ece", "brier", "nll", "temperature")
    bounded = ("ece",)
    quick_seconds = 70
    grids = {"quick": {"train_per_class": None}, "full": {"train_per_class": None}}

    def tasks(self, config, preset):
        return seed_pairs(self, config, preset)

    def evaluate(self, task, outcome):
        from hqcnn import calibration as cal
        from hqcnn.metrics import classification_metrics

        data, model = outcome.data, outcome.result.model
        y = data.y_test.numpy()
        temperature = cal.fit_temperature(cal.logits(model, data.x_val), data.y_val)
        test_logits = cal.logits(model, data.x_test)
        rows = []
        for condition, t in ((AS_TRAINED, 1.0), (SCALED, temperature)):
            probs = cal.softmax(test_logits, t)
            low, high = cal.ece_interval(probs, y, seed=task.seed)
            bins = cal.reliability(probs, y)
            row = metrics_row(task, outcome, classification_metrics(y, probs, outcome.data.info.positive), condition=condition, temperature=t)
            row |= {"ece": cal.ece(probs, y), "ece_ci_low": low, "ece_ci_high": high}
            row |= {"brier": cal.brier(probs, y), "nll": cal.nll(probs, y)}
            for k in _BINS:
                row |= {f"bin_{k}_conf": bins.confidence[k], f"bin_{k}_acc": bins.accuracy[k], f"bin_{k}_n": bins.count[k]}
            rows.append(row)
        return rows

    def compare(self, table):
        return [
            compare(
                table, {"model": HYBRID, "condition": c}, {"model": TWIN, "condition": c},
                f"hybrid − classical twin, {metric}, {c}", metric, tag=metric, condition=c,
                subject="The hybrid's " + ("calibration error" if metric == "ece" else "Brier score"),
                other="the twin's", verb="was", higher="higher (worse)", lower="lower (better)",
            )
            for c in in_order(table["condition"])
            for metric in ("ece", "brier")
        ]  # fmt: skip

    def notes(self, result):
        return [
            "ECE: top-label expected calibration error over 10 equal-width confidence bins (torchmetrics), in "
            "points; its interval per run is a 200-sample bootstrap over test images, the band in the figures is over "
            "seeds. Brier: mean over images of the squared distance between the probabilities and the true class "
            "(0 best, 2 worst). Temperature scaling divides the logits by one number fitted on the validation "
            "split; it does not change any prediction, so accuracy and AUC are the same in both conditions."
        ]

    def figures(self, result) -> dict[str, Any]:
        import plotly.graph_objects as go

        from hqcnn.plots import apply_style

        table, summary = result.table, charts.records(result.summary)
        diagram = go.Figure()
        diagram.add_trace(
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated", line={"color": "#666666", "dash": "dot"})
        )
        for model in (HYBRID, TWIN):
            for condition, dash in ((AS_TRAINED, "solid"), (SCALED, "dash")):
                rows = table[(table["model"] == model) & (table["condition"] == condition)]
                points = _pooled_bins(rows)
                diagram.add_trace(
                    go.Scatter(
                        x=[p[0] for p in points],
                        y=[p[1] for p in points],
                        mode="lines+markers",
                        name=f"{model}, {condition}",
                        line={"color": charts.colour(model), "dash": dash, "width": 2.5},
                        marker={"symbol": charts.STYLE[model][1], "size": 9},
                        error_y={"type": "data", "symmetric": False, "array": [p[3] - p[1] for p in points],
                                 "arrayminus": [p[1] - p[2] for p in points], "thickness": 1.2},
                        customdata=[[p[4]] for p in points],
                        hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f} (%{customdata[0]} images)<extra></extra>",
                    )
                )  # fmt: skip
        diagram.update_xaxes(range=[0, 1.02])
        diagram.update_yaxes(range=[0, 1.02])
        apply_style(
            diagram,
            f"Reliability diagram: accuracy per confidence bin, all seeds pooled (95% Wilson intervals, {len(result.seeds)} seeds)",
            "mean confidence in the bin (top-label probability)",
            "accuracy in the bin",
        )
        bars = go.Figure()
        charts.grouped_bars(bars, summary, "ece", (HYBRID, TWIN), "ECE (points)", scale=100.0)
        apply_style(bars, f"Expected calibration error ({charts.ci_note(result)})", "condition", "ECE (points; 0 is perfect)")
        difference = charts.difference_figure(
            result, "Hybrid − classical twin calibration error", "ece",
            labels=[c.condition for c in result.comparisons if c.metric == "ece" and c.n],
        )  # fmt: skip
        return {"calibration_reliability": diagram, "calibration_ece": bars, "calibration_difference": difference}


def _pooled_bins(rows) -> list[tuple[float, float, float, float, int]]:
    """(confidence, accuracy, Wilson low, Wilson high, images) of each non-empty bin, seeds pooled."""
    from scipy.stats import binomtest

    out = []
    for k in _BINS:
        n = int(rows[f"bin_{k}_n"].sum())
        if n == 0:
            continue
        counts = rows[f"bin_{k}_n"]
        confidence = float((rows[f"bin_{k}_conf"].fillna(0) * counts).sum() / n)
        correct = int(round(float((rows[f"bin_{k}_acc"].fillna(0) * counts).sum())))
        interval = binomtest(correct, n).proportion_ci(method="wilson")
        out.append((confidence, correct / n, float(interval.low), float(interval.high), n))
    return out
