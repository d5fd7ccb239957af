"""Building blocks of the studies' charts: model colours and styles, confidence bands,
reference lines, and the figure of paired differences that most studies show.

plotly is imported only when a figure is built, so importing the studies stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from hqcnn.experiments.results import ExperimentResult
from hqcnn.experiments.table import BACKBONE, HYBRID, TWIN, Comparison

STYLE = {HYBRID: ("solid", "circle"), TWIN: ("dash", "diamond"), BACKBONE: ("dot", "square")}


def records(summary: pd.DataFrame) -> list[dict[str, Any]]:
    """The summary's rows as dicts without the columns that do not apply to them (NaN)."""
    return [{k: v for k, v in row.items() if not pd.isna(v)} for row in summary.to_dict("records")]


def error_bars(points: Sequence[dict[str, Any]], metric: str, **style: Any) -> dict[str, Any]:
    """Asymmetric plotly error bars from summary rows' 95% CIs of `metric`."""
    return {
        "type": "data",
        "symmetric": False,
        "array": [s[f"{metric}_ci_high"] - s[f"{metric}_mean"] for s in points],
        "arrayminus": [s[f"{metric}_mean"] - s[f"{metric}_ci_low"] for s in points],
        "thickness": 1.5,
        **style,
    }


def grouped_bars(
    fig: Any, summary: Sequence[dict[str, Any]], metric: str, models: Sequence[str], label: str, scale: float = 1.0,
    text: bool = False,
) -> None:
    """One bar per condition for each model: the mean of `metric` × `scale` with its 95% CI (bars grouped)."""
    import plotly.graph_objects as go

    for model in models:
        pts = [s for s in summary if s["model"] == model and f"{metric}_mean" in s]
        if not pts:
            continue
        pts = [{**s, **{f"{metric}_{k}": scale * s[f"{metric}_{k}"] for k in ("mean", "ci_low", "ci_high")}} for s in pts]
        fig.add_trace(
            go.Bar(
                x=[s["condition"] for s in pts],
                y=[s[f"{metric}_mean"] for s in pts],
                name=model,
                marker={"color": colour(model), "pattern": {"shape": "" if model == HYBRID else "/"}},
                error_y=error_bars(pts, metric, thickness=2),
                text=[f"{s[f'{metric}_mean']:.3f}" for s in pts] if text else None,
                textposition="inside",
                hovertemplate=f"%{{x}}<br>{label} %{{y:.3f}}<extra>{model}</extra>",
            )
        )
    fig.update_layout(barmode="group")


def colour(model: str) -> str:
    from hqcnn.plots import OKABE_ITO

    return {HYBRID: OKABE_ITO[0], TWIN: OKABE_ITO[1], BACKBONE: OKABE_ITO[2]}.get(model, OKABE_ITO[4])


def rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def ci_note(result: ExperimentResult) -> str:
    n = len(result.seeds)
    return f"mean of {n} seed{'s' if n != 1 else ''}, 95% CI" if n > 1 else "1 seed: no interval"


def band_lines(fig: Any, summary: Sequence[dict[str, Any]], metric: str, models: Sequence[str], hover: str) -> None:
    import plotly.graph_objects as go

    for model in models:
        pts = sorted((s for s in summary if s["model"] == model and f"{metric}_mean" in s), key=lambda s: s["x"])
        if not pts:
            continue
        x = [s["x"] for s in pts]
        mean = [s[f"{metric}_mean"] for s in pts]
        low = [s[f"{metric}_ci_low"] for s in pts]
        high = [s[f"{metric}_ci_high"] for s in pts]
        line_colour, (dash, symbol) = colour(model), STYLE.get(model, ("solid", "circle"))
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=high + low[::-1],
                mode="lines",
                fill="toself",
                fillcolor=rgba(line_colour, 0.18),
                line={"width": 0},
                hoverinfo="skip",
                name=f"{model}: 95% CI",
                legendgroup=model,
                showlegend=True,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=mean,
                mode="lines+markers",
                name=f"{model} (mean)",
                legendgroup=model,
                line={"color": line_colour, "dash": dash, "width": 3},
                marker={"symbol": symbol, "size": 10},
                customdata=[[s["condition"], s["n"]] for s in pts],
                hovertemplate="%{customdata[0]}<br>"
                + hover
                + " %{y:.3f} (n = %{customdata[1]})<extra>"
                + model
                + "</extra>",
            )
        )


def reference_line(fig: Any, y: float | None, text: str) -> None:
    if y is None:
        return
    fig.add_hline(
        y=y,
        line={"color": "#666666", "dash": "dot", "width": 2},
        annotation_text=text,
        annotation_position="bottom right",
    )


def difference_figure(
    result: ExperimentResult,
    title: str,
    metric: str | None = "accuracy",
    comparisons: Sequence[Comparison] | None = None,
    labels: Sequence[str] | None = None,
) -> Any:
    """Mean paired difference with its 95% CI per comparison, and every seed's difference.

    Each comparison is labelled by its condition (or `labels`); `metric` None keeps every metric.
    """
    import plotly.graph_objects as go

    from hqcnn.plots import OKABE_ITO, apply_style

    given = comparisons if comparisons is not None else result.comparisons
    comps = [c for c in given if (metric is None or c.metric == metric) and c.n]
    fig = go.Figure()
    labels = list(labels) if labels is not None else [c.condition or c.label for c in comps]
    scale = comps[0].scale if comps else 100.0
    unit = comps[0].unit if comps else "points"
    if comps:
        mean = [c.mean_diff * scale for c in comps]
        low = [(c.stats.ci_low if c.stats.ci_low is not None else c.mean_diff) * scale for c in comps]
        high = [(c.stats.ci_high if c.stats.ci_high is not None else c.mean_diff) * scale for c in comps]
        fig.add_trace(
            go.Scatter(
                x=labels,
                y=mean,
                mode="markers",
                name="mean difference, 95% CI",
                marker={"color": OKABE_ITO[3], "size": 13, "symbol": "diamond"},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [h - m for h, m in zip(high, mean, strict=True)],
                    "arrayminus": [m - lo for m, lo in zip(mean, low, strict=True)],
                    "thickness": 2,
                    "width": 8,
                },
                customdata=[[c.n, "n/a" if c.p is None else f"{c.p:.3f}"] for c in comps],
                hovertemplate="%{x}<br>mean %{y:.2f} "
                + unit
                + "<br>n = %{customdata[0]}, paired t-test p = %{customdata[1]}<extra></extra>",
            )
        )
        xs, ys = [], []
        for label, c in zip(labels, comps, strict=True):
            xs += [label] * len(c.diffs)
            ys += [d * scale for d in c.diffs]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name="one seed",
                marker={"color": "#666666", "size": 7, "symbol": "circle-open"},
                hovertemplate="%{x}<br>%{y:.2f} " + unit + "<extra>one seed</extra>",
            )
        )
    else:
        fig.add_annotation(text="No paired results yet.", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.add_hline(
        y=0,
        line={"color": "#000000", "width": 1.5},
        annotation_text="no difference",
        annotation_position="bottom right",
    )
    return apply_style(
        fig, f"{title} ({ci_note(result)})", "condition", f"difference ({unit}; above 0: first one higher)"
    )
