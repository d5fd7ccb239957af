"""Representation: how separable are the classes in the few numbers the head sees?

For the hybrid these are the circuit's ⟨Z⟩ per qubit, for the twin its classical layer's outputs:
the same count, measured the same way. A linear probe (logistic regression on the training
images' values) gives a test accuracy; Fisher's criterion, trace(between-class scatter) /
trace(within-class scatter) on the test images, says how far apart the classes sit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hqcnn.experiments import charts
from hqcnn.experiments.registry import Study, register
from hqcnn.experiments.table import HYBRID, TWIN, compare, mean_of
from hqcnn.experiments.tasks import base_row

from ._common import seed_pairs

CONDITION = "the head's inputs"
PROBE_TRAIN_IMAGES = 2000  # a seeded subset of the training images fits the probe (enough for ≤ 24 numbers)


def fisher_criterion(values: np.ndarray, labels: np.ndarray) -> float:
    """trace(S_between) / trace(S_within) of `values` (N, d) grouped by `labels`."""
    labels = np.asarray(labels).reshape(-1)
    mean = values.mean(axis=0)
    between = within = 0.0
    for k in np.unique(labels):
        members = values[labels == k]
        centre = members.mean(axis=0)
        between += len(members) * float(np.sum((centre - mean) ** 2))
        within += float(np.sum((members - centre) ** 2))
    return between / within if within > 0 else float("inf")


def linear_probe_accuracy(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of a standardised logistic regression fitted on the training values."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(train, np.asarray(y_train).reshape(-1))
    return float(probe.score(test, np.asarray(y_test).reshape(-1)))


def head_inputs(model: Any, x: Any, batch_size: int = 512) -> np.ndarray:
    """The values the head receives for images `x` (⟨Z⟩ for the hybrid), in evaluation mode."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        parts = [model.forward_with_readout(x[i : i + batch_size].to(device))[1].cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(parts).double().numpy()


@register
class Representation(Study):
    name = "representation"
    order = 9
    title = "Representation"
    question = "Are the classes more separable in the hybrid's ⟨Z⟩ read-out than in its twin's layer of the same size?"
    claims = ("features",)
    claim_figures = {"features": "representation_difference"}
    metrics = ("probe_accuracy", "fisher")
    bounded = ("probe_accuracy",)
    quick_seconds = 70
    grids = {"quick": {"train_per_class": None}, "full": {"train_per_class": None}}

    def tasks(self, config, preset):
        return seed_pairs(self, config, preset, condition=CONDITION)

    def evaluate(self, task, outcome):
        data, model = outcome.data, outcome.result.model
        rng = np.random.default_rng(task.seed)
        subset = np.sort(rng.permutation(len(data.y_train))[:PROBE_TRAIN_IMAGES])
        train = head_inputs(model, data.x_train[subset])
        test = head_inputs(model, data.x_test)
        row = base_row(task, outcome)
        row["probe_accuracy"] = linear_probe_accuracy(train, data.y_train[subset].numpy(), test, data.y_test.numpy())
        row["fisher"] = fisher_criterion(test, data.y_test.numpy())
        row["head_inputs"] = test.shape[1]
        return [row]

    def compare(self, table):
        a, b = {"model": HYBRID}, {"model": TWIN}
        return [
            compare(table, a, b, "linear probe accuracy: hybrid − classical twin", "probe_accuracy", tag="probe",
                    condition=CONDITION, subject="A linear probe on the hybrid's read-out", other="on the twin's"),
            compare(table, a, b, "Fisher's criterion: hybrid − classical twin", "fisher", tag="fisher",
                    condition=CONDITION, subject="The hybrid's class separation", other="the twin's", verb="was",
                    scale=1.0, unit="(ratio of scatters)", decimals=3),
        ]  # fmt: skip

    def notes(self, result):
        return [
            f"The probe is fitted on up to {PROBE_TRAIN_IMAGES:,} training images (seeded) and tested on the test "
            "images: how well a linear read-out of those numbers tells the classes apart (the model's own head is a "
            "small MLP). Fisher's criterion is computed on the test images; it does not change when all values are "
            "scaled alike (⟨Z⟩ and the twin's tanh outputs both lie in −1 to 1), but it does change with a per-value "
            "rescaling that a linear head would undo: the probe is the fairer of the two."
        ]

    def figures(self, result) -> dict[str, Any]:
        import plotly.graph_objects as go

        from hqcnn.plots import apply_style

        summary = charts.records(result.summary)
        figs = {}
        for metric, title, y_title in (
            ("probe_accuracy", "Linear probe test accuracy on the head's inputs", "probe test accuracy"),
            ("fisher", "Class separation of the head's inputs (Fisher's criterion)", "between / within scatter"),
        ):
            fig = go.Figure()
            pts = [s for s in summary if f"{metric}_mean" in s]
            fig.add_trace(
                go.Bar(
                    x=[s["model"] for s in pts],
                    y=[s[f"{metric}_mean"] for s in pts],
                    marker={"color": [charts.colour(s["model"]) for s in pts]},
                    error_y=charts.error_bars(pts, metric, thickness=2),
                    text=[f"{s[f'{metric}_mean']:.3f}" for s in pts],
                    textposition="inside",
                    name="mean, 95% CI",
                    hovertemplate="%{x}: %{y:.3f}<extra></extra>",
                )
            )
            if metric == "probe_accuracy":
                charts.reference_line(fig, mean_of(result.table, "majority_accuracy"), "majority-class baseline")
            apply_style(fig, f"{title} ({charts.ci_note(result)})", "model", y_title)
            figs[f"representation_{metric}"] = fig
        figs["representation_difference"] = charts.difference_figure(
            result, "Hybrid − classical twin, linear probe accuracy", "probe_accuracy"
        )
        return figs
