"""Figures of how well a trained model does: on the test set (confusion matrix, ROC curves, metrics
beside the references) and on one image (its predicted class probabilities)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from hqcnn.plots.style import (
    _FONT_SIZE,
    _MUTED_GRAY,
    _REFERENCE_GRAY,
    OKABE_ITO,
    _legend_below,
    _placeholder,
    _title_margin,
    _wrap,
    apply_style,
    plain,
)

# Display names for the metric keys of `hqcnn.metrics.classification_metrics`.
_METRIC_LABELS: dict[str, str] = {
    "accuracy": "accuracy",
    "auc": "ROC-AUC",
    "precision": "precision",
    "recall": "recall (sensitivity)",
    "specificity": "specificity",
    "f1": "F1",
    "majority_accuracy": "majority-class accuracy",
}


def confusion_matrix(
    confusion: Sequence[Sequence[int]], label_names: Sequence[str], title: str = "Confusion matrix (test set)"
) -> go.Figure:
    """Heat map of the confusion matrix: true class on rows (top to bottom), predicted on columns.

    Colour follows the counts; each cell's text also gives the share of its true class (row %),
    which is that class's recall on the diagonal, so an imbalanced test set cannot hide a class
    the model never gets right.
    """
    z = np.asarray(confusion, dtype=np.int64)
    names = plain(label_names)
    row_tot = z.sum(axis=1, keepdims=True)
    pct = np.divide(100.0 * z, row_tot, out=np.zeros(z.shape, dtype=float), where=row_tot != 0)
    text = [[f"{z[i, j]}<br>{pct[i, j]:.0f}%" for j in range(z.shape[1])] for i in range(z.shape[0])]
    # Labels with their row totals: the reference a reader needs for the counts.
    y_names = [f"{n} (n={int(t)})" for n, t in zip(names, row_tot[:, 0], strict=False)]
    fig = go.Figure(
        go.Heatmap(
            z=z.tolist(),
            x=names,
            y=y_names,
            text=text,
            texttemplate="%{text}",
            textfont={"size": _FONT_SIZE},
            customdata=np.round(pct, 1).tolist(),
            colorscale="Blues",
            zmin=0,
            colorbar={"title": {"text": "images"}, "thickness": 14},
            hovertemplate=(
                "true %{y}<br>predicted %{x}<br>%{z} images (%{customdata}% of this true class)<extra></extra>"
            ),
            xgap=2,
            ygap=2,
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", side="bottom")
    # At least as tall as the ROC figure it sits beside in a half-width column.
    side = max(440, 90 * len(names) + 200)
    fig.update_layout(height=side)
    return apply_style(fig, title, "predicted class", "true class")


def _curve_auc(fpr: Sequence[float], tpr: Sequence[float]) -> float:
    """Area under one ROC curve by the trapezoid rule (what sklearn's `auc` computes)."""
    x, y = np.asarray(fpr, dtype=float), np.asarray(tpr, dtype=float)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def roc_curves(
    roc: Mapping[str, Any] | None,
    label_names: Sequence[str],
    auc: float | None,
    reference_auc: float | None = None,
    positive: int | None = 1,
) -> go.Figure:
    """ROC curve(s) with the chance diagonal, AUC in the title, optional published reference.

    Args:
        roc: the "roc" entry of `hqcnn.metrics.classification_metrics`: binary {"fpr", "tpr",
            "thresholds"} (or None when undefined) or multi-class {"0": {...} | None, ...}.
        label_names: class names.
        auc: the overall AUC (binary, or macro one-vs-rest); None when undefined.
        reference_auc: e.g. the MedMNIST ResNet-18 test AUC, shown as a note above the plot.
        positive: a binary task's positive class (the "positive" entry of the metrics; None: 1).
    """
    names = plain(label_names)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="chance (AUC 0.5)",
            line={"color": _REFERENCE_GRAY, "dash": "dot", "width": 2},
            hoverinfo="skip",
        )
    )
    missing: list[str] = []
    if roc is not None and "fpr" in roc:
        index = 1 if positive is None else positive
        positive_name = names[index] if len(names) > index else "positive class"
        fig.add_trace(
            go.Scatter(
                x=roc["fpr"],
                y=roc["tpr"],
                mode="lines",
                name=f"{positive_name} vs rest",
                line={"color": OKABE_ITO[0], "width": 3},
                hovertemplate="false positive rate %{x:.3f}<br>true positive rate %{y:.3f}<extra></extra>",
            )
        )
        kind = "ROC curve"
    else:
        kind = "ROC curves (one class vs rest)"
        dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
        for key, curve in (roc or {}).items():
            c = int(key)
            label = names[c] if c < len(names) else f"class {key}"
            if curve is None:
                missing.append(label)
                continue
            fig.add_trace(
                go.Scatter(
                    x=curve["fpr"],
                    y=curve["tpr"],
                    mode="lines",
                    name=f"{label} (AUC {_curve_auc(curve['fpr'], curve['tpr']):.3f})",
                    # Dash pattern as well as colour: curves cross and overlap a lot.
                    line={"color": OKABE_ITO[c % len(OKABE_ITO)], "width": 2.5, "dash": dashes[c % len(dashes)]},
                    hovertemplate=(
                        f"{label}<br>false positive rate %{{x:.3f}}<br>true positive rate %{{y:.3f}}<extra></extra>"
                    ),
                )
            )
    multi = roc is not None and "fpr" not in roc
    auc_text = "AUC undefined (one class only)" if auc is None else f"{'macro ' if multi else ''}AUC {auc:.3f}"
    if len(fig.data) == 1:
        _placeholder(fig, "No ROC curve: the set holds only one class.")
    # Notes go in a strip between the title and the plot (paper coordinates), one line each, so
    # they never cover a curve, the legend or the axis titles and never spill out of the figure.
    notes: list[tuple[str, dict[str, Any]]] = []
    if reference_auc is not None:
        notes.append((f"MedMNIST ResNet-18: AUC {reference_auc:.3f}", {"color": "#333333"}))
    if missing:
        notes.append(
            (
                _wrap("no curve (absent from this set): " + ", ".join(missing), 46, max_lines=3),
                {"color": _REFERENCE_GRAY, "size": _FONT_SIZE - 1},
            )
        )
    shift = 4
    for text, font in reversed(notes):
        fig.add_annotation(
            text=text,
            x=0.0,
            y=1.0,
            xref="paper",
            yref="paper",
            xanchor="left",
            yanchor="bottom",
            yshift=shift,
            align="left",
            showarrow=False,
            font={"size": _FONT_SIZE - 1, **font},
        )
        shift += 21 * (text.count("<br>") + 1)
    fig.update_xaxes(range=[0, 1], zeroline=False, tickvals=[0, 0.25, 0.5, 0.75, 1])
    fig.update_yaxes(range=[0, 1], zeroline=False, tickvals=[0, 0.25, 0.5, 0.75, 1])
    # The legend sits inside the plot at the bottom right, under the chance diagonal, where a
    # useful curve never goes; no 1:1 lock, which made the plot a small square in a half column.
    fig.update_layout(
        height=440,
        legend={
            "x": 0.99,
            "y": 0.02,
            "xanchor": "right",
            "yanchor": "bottom",
            "bgcolor": "rgba(255,255,255,0.8)",
            "bordercolor": _MUTED_GRAY,
            "borderwidth": 1,
        },
    )
    title = f"{kind}<br>{auc_text}" if multi or auc is None else f"{kind} — {auc_text}"
    styled = apply_style(
        fig,
        title,
        "false positive rate (1 − specificity)",
        "true positive rate (sensitivity)",
    )
    styled.update_layout(margin={"t": _title_margin(title, shift + 4)})
    return styled


def metrics_comparison(rows: Mapping[str, Mapping[str, float | None]], title: str) -> go.Figure:
    """Grouped bars comparing models and references on the same metrics (scores in [0, 1]).

    Each bar has its value written above it, horizontally. A score of exactly 0 (e.g. the
    precision of a model that never predicts the positive class) is a real result: it gets no
    visible bar but still its "0.00" label, so it cannot be mistaken for a missing one. Within
    each metric the bars present are packed side by side and centred, so a reference that only
    reports accuracy leaves no empty slots in the other groups.

    Args:
        rows: {"hybrid": {"accuracy": .., "auc": .., ...}, "classical twin": {...},
            "majority-class baseline": {"accuracy": ..}, "MedMNIST ResNet-18": {...}}.
            None (or non-finite) values are skipped: no bar and no label, rather than a
            misleading 0.
        title: the figure title (say which split).
    """
    metrics: list[str] = []
    for values in rows.values():
        for key in values:
            if key not in metrics:
                metrics.append(key)
    # Known metrics in a fixed, familiar order; anything else after them as given.
    order = [m for m in _METRIC_LABELS if m in metrics] + [m for m in metrics if m not in _METRIC_LABELS]

    def valid(v: float | None) -> bool:
        return v is not None and math.isfinite(float(v))

    present = {m: [name for name, values in rows.items() if valid(values.get(m))] for m in order}
    # Labels of neighbouring bars of about the same height run into each other once the bars are
    # narrower than "0.85" (four models in a half-width column): such a label is lifted just
    # enough to clear its left neighbour's. Heights are estimated in pixels from the fixed figure
    # height (about 250 px per unit of score).
    px_per_unit, label_px = 250.0, 14.0
    lift: dict[tuple[str, str], float] = {}
    for m, names in present.items():
        previous_bottom: float | None = None
        for name in names:
            bottom = float(rows[name][m]) * px_per_unit  # type: ignore[arg-type]
            shift = 0.0
            if previous_bottom is not None and abs(bottom - previous_bottom) < label_px:
                shift = previous_bottom + label_px - bottom
            lift[(name, m)] = shift
            previous_bottom = bottom + shift
    # Bar width in category units: every bar has the same width, set by the fullest group.
    slot = 0.9 / max([len(names) for names in present.values()] + [1])
    fig = go.Figure()
    for i, (row_name, values) in enumerate(rows.items()):
        keep = [m for m in order if valid(values.get(m))]
        if not keep:
            continue
        y = [float(values[m]) for m in keep]
        # Offsets by hand (plotly's own grouping would keep an empty slot for every model that
        # lacks a metric), centred on the category.
        offsets = [(present[m].index(row_name) - len(present[m]) / 2) * slot + 0.04 * slot for m in keep]
        # References (baselines, published numbers) are hatched so they read as "not ours".
        is_reference = any(s in row_name.lower() for s in ("baseline", "medmnist", "resnet", "reference"))
        fig.add_trace(
            go.Bar(
                name=row_name,
                x=[_METRIC_LABELS.get(m, m) for m in keep],
                y=y,
                offset=offsets,
                width=0.92 * slot,
                # The labels are drawn as annotations below (on top of every bar, which bar text
                # is not: a taller neighbour would hide part of a label wider than its bar).
                text=[f"{v:.2f}" for v in y],
                textposition="none",
                marker={
                    "color": OKABE_ITO[i % len(OKABE_ITO)],
                    "pattern": {"shape": "/" if is_reference else ""},
                    "line": {"color": OKABE_ITO[i % len(OKABE_ITO)], "width": 1},
                },
                hovertemplate=f"{row_name}<br>%{{x}}: %{{y:.3f}}<extra></extra>",
            )
        )
        for m, v, offset in zip(keep, y, offsets, strict=True):
            fig.add_annotation(
                # A category axis also takes a category's index, so the label sits over its bar.
                x=order.index(m) + offset + 0.46 * slot,
                y=v,
                text=f"{v:.2f}",
                showarrow=False,
                yanchor="bottom",
                yshift=2 + round(lift[(row_name, m)]),
                bgcolor="rgba(255,255,255,0.8)",
                borderpad=1,
                font={"size": _FONT_SIZE - 1},
            )
    if not len(fig.data):
        _placeholder(fig, "No metrics to compare yet.")
    else:
        for j, m in enumerate(order):
            if not present[m]:
                # Undefined for every model (e.g. AUC on a one-class set): said, not left blank.
                fig.add_annotation(
                    x=j,
                    y=0,
                    text="n/a",
                    showarrow=False,
                    yanchor="bottom",
                    yshift=2,
                    font={"color": _REFERENCE_GRAY, "size": _FONT_SIZE - 1},
                )
    labels = [_METRIC_LABELS.get(m, m) for m in order]
    fig.update_xaxes(
        categoryorder="array",
        categoryarray=labels,
        tickvals=labels,
        ticktext=[_wrap(label, 12, max_lines=2) for label in labels],
    )
    # Up to 1.12, so the label above a bar at 1.0 stays inside the plot; ticks stop at 1.
    fig.update_yaxes(range=[0, 1.12], tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0], zeroline=True, zerolinecolor="#444444")
    fig.update_layout(barmode="group", height=460)
    _legend_below(fig, "model")
    return apply_style(fig, title, "metric", "score (0–1)")


def class_probabilities(
    probs: np.ndarray,
    label_names: Sequence[str],
    predicted: int | None = None,
    title: str = "Predicted probability of each class",
    x_title: str = "probability",
) -> go.Figure:
    """Horizontal bars of the predicted class probabilities, the predicted class highlighted.

    The dotted line at 1/K marks "no information" (every class equally likely); its label sits
    above the plot. Each bar's probability is written just past its end on a white box, drawn
    over the dotted line, so a value close to 1/K (e.g. 0.42 beside the 0.5 line of a binary
    task) stays readable instead of being struck through.

    `predicted` is the class the model calls (a binary task's decision threshold may call the
    less probable one); the most probable class by default. `title` and `x_title` say what the
    probabilities are (e.g. calibrated, with the temperature).
    """
    p = np.asarray(probs, dtype=float).reshape(-1)
    names = plain(label_names)
    k = p.size
    pred = (int(np.argmax(p)) if k else -1) if predicted is None else int(predicted)
    colors = [OKABE_ITO[0] if i == pred else _MUTED_GRAY for i in range(k)]
    text = [f"{v:.2f}" + (" (predicted)" if i == pred else "") for i, v in enumerate(p)]
    fig = go.Figure(
        go.Bar(
            x=p.tolist(),
            y=names[:k],
            orientation="h",
            text=text,
            textposition="none",  # drawn as annotations below, above the chance line
            marker_color=colors,
            hovertemplate="%{y}: probability %{x:.3f}<extra></extra>",
        )
    )
    for i, label in enumerate(text):
        fig.add_annotation(
            x=float(p[i]),
            y=names[i],
            text=label,
            showarrow=False,
            xanchor="left",
            xshift=3,
            bgcolor="rgba(255,255,255,0.9)",
            borderpad=2,
        )
    if k:
        chance = 1.0 / k
        fig.add_vline(x=chance, line={"color": _REFERENCE_GRAY, "dash": "dot", "width": 2})
        # The line's label above the plot, where no bar or value can run into it, starting at the
        # line (or ending at it, for a line in the right half).
        fig.add_annotation(
            x=chance,
            y=1.0,
            xref="x",
            yref="paper",
            text=f"equal chance 1/{k} = {chance:.2f}",
            showarrow=False,
            xanchor="left" if chance <= 0.5 else "right",
            yanchor="bottom",
            xshift=-4 if chance <= 0.5 else 4,
            yshift=2,
            font={"color": _REFERENCE_GRAY},
        )
    fig.update_xaxes(range=[0, 1], tickvals=[0, 0.25, 0.5, 0.75, 1])
    # Label order, top to bottom; long class names (BloodMNIST) broken onto lines so they do not
    # take most of the width.
    fig.update_yaxes(
        autorange="reversed",
        type="category",
        tickvals=names[:k],
        ticktext=[_wrap(name, 20, max_lines=3) for name in names[:k]],
    )
    fig.update_layout(height=max(280, 44 * k + 170), showlegend=False, bargap=0.3)
    styled = apply_style(fig, title, x_title, "class")
    # Room for the "(predicted)" label beyond a bar near 1, and for the chance label above.
    styled.update_layout(margin={"r": 120, "t": _title_margin(title, 22)})
    return styled
