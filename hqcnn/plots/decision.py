"""Figures for reading a model's answers: how far its probabilities can be trusted (reliability
diagram) and where a binary decision threshold sits on the ROC curve."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from hqcnn.plots.style import _REFERENCE_GRAY, OKABE_ITO, apply_style, plain


def reliability_diagram(calibration: Mapping[str, Any], title: str = "Reliability diagram (test split)") -> go.Figure:
    """Accuracy against mean confidence per bin, as trained and after temperature scaling.

    `calibration` is `hqcnn.calibration.report`'s dict. Empty bins are left out; the number of
    images in a bin is in its hover text and sets its marker size.
    """
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfectly calibrated",
            line={"color": _REFERENCE_GRAY, "dash": "dot", "width": 2},
            hoverinfo="skip",
        )
    )
    styles = {"as_trained": ("as trained", OKABE_ITO[3], "solid"), "scaled": ("temperature-scaled", OKABE_ITO[0], "dash")}
    for key, (name, colour, dash) in styles.items():
        part = calibration[key]
        bins = part["reliability"]
        kept = [i for i, n in enumerate(bins["count"]) if n]
        counts = np.array([bins["count"][i] for i in kept])
        fig.add_trace(
            go.Scatter(
                x=[bins["confidence"][i] for i in kept],
                y=[bins["accuracy"][i] for i in kept],
                mode="lines+markers",
                name=f"{name}: ECE {part['ece']:.3f}",
                line={"color": colour, "dash": dash, "width": 2.5},
                marker={"size": 6 + 14 * np.sqrt(counts / max(counts.max(), 1))},
                customdata=counts,
                hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{customdata} images<extra></extra>",
            )
        )
    fig.update_xaxes(range=[0, 1.02])
    fig.update_yaxes(range=[0, 1.02])
    fig.update_layout(height=420)
    return apply_style(fig, title, "confidence: the probability of the predicted class", "share that was correct")


def threshold_roc(
    probs_positive: np.ndarray,
    is_positive: np.ndarray,
    threshold: float,
    positive_name: str,
    youden: float | None = None,
) -> go.Figure:
    """The ROC curve of P(positive) with the operating point of `threshold` (and of the validation
    split's Youden-optimal threshold) marked on it."""
    from sklearn.metrics import roc_curve

    is_positive = np.asarray(is_positive, dtype=bool)
    name = plain([positive_name])[0]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"color": _REFERENCE_GRAY, "dash": "dot"}, hoverinfo="skip"
        )
    )
    if is_positive.all() or not is_positive.any():
        return apply_style(fig, "ROC curve: undefined (one class only in the test split)", "false positive rate", "sensitivity")
    fpr, tpr, _ = roc_curve(is_positive, probs_positive)
    fig.add_trace(
        go.Scatter(
            x=fpr, y=tpr, mode="lines", name=f"{name} vs rest", line={"color": OKABE_ITO[0], "width": 3},
            hovertemplate="false positive rate %{x:.3f}<br>sensitivity %{y:.3f}<extra></extra>",
        )
    )  # fmt: skip
    points = [("this threshold", threshold, OKABE_ITO[3], "circle")]
    if youden is not None:
        points.append(("Youden-optimal (validation)", youden, OKABE_ITO[2], "diamond"))
    for label, t, colour, symbol in points:
        called = probs_positive >= t
        x, y = float(np.mean(called[~is_positive])), float(np.mean(called[is_positive]))
        fig.add_trace(
            go.Scatter(
                x=[x], y=[y], mode="markers", name=f"{label}: {t:.2f}",
                marker={"color": colour, "size": 14, "symbol": symbol, "line": {"color": "white", "width": 1.5}},
                hovertemplate=f"{label} {t:.2f}<br>false positive rate %{{x:.3f}}<br>sensitivity %{{y:.3f}}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    fig.update_layout(height=420)
    return apply_style(
        fig,
        f"Operating point on the ROC curve ({name} is the positive class)",
        "false positive rate (1 − specificity)",
        "true positive rate (sensitivity)",
    )
