"""The plotly figures of each experiment, by name: `figures(result)`.

Every chart has a title, axis titles and confidence bands or error bars; the shared parts are
in `chart_parts.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hqcnn.experiments.chart_parts import (
    _STYLE,
    _band_lines,
    _ci_note,
    _colour,
    _difference_figure,
    _reference_line,
    _rgba,
    _upper_first,
)
from hqcnn.experiments.results import ExperimentResult
from hqcnn.experiments.rows import BACKBONE, HYBRID, TWIN, _mean_of, summarize


def _figure_low_data(result: ExperimentResult) -> dict[str, Any]:
    import plotly.graph_objects as go

    from hqcnn.plots import apply_style

    summary = result.summary
    figs = {}
    for metric, label in (("accuracy", "test accuracy"), ("auc", "test ROC-AUC")):
        fig = go.Figure()
        _band_lines(fig, summary, metric, (HYBRID, TWIN), label)
        if metric == "accuracy":
            _reference_line(fig, _mean_of(result.rows, "majority_accuracy"), "majority-class baseline")
        else:
            _reference_line(fig, 0.5, "chance (AUC 0.5)")
        fig.update_xaxes(type="log")
        ticks = sorted({s["x"]: s["condition"] for s in summary}.items())
        fig.update_xaxes(
            tickvals=[x for x, _ in ticks],
            ticktext=[c.replace(" per class", "") if "per class" in c else f"all ({x:,.0f})" for x, c in ticks],
        )
        apply_style(
            fig,
            f"{_upper_first(label)} against training images per class ({_ci_note(result)})",
            "training images per class (log scale)",
            label,
        )
        figs[f"low_data_{metric}"] = fig
    figs["low_data_difference"] = _difference_figure(result, "Hybrid − classical twin accuracy, per training-set size")
    return figs


def _figure_input_noise(result: ExperimentResult) -> dict[str, Any]:
    import plotly.graph_objects as go

    from hqcnn.plots import apply_style

    figs = {}
    for noise, title in (("gaussian", "Gaussian noise"), ("salt_pepper", "Salt-and-pepper noise")):
        rows = [r for r in result.rows if r.get("noise") == noise]
        if not rows:
            continue
        fig = go.Figure()
        _band_lines(fig, summarize(rows), "accuracy", (HYBRID, TWIN), "test accuracy")
        _reference_line(fig, _mean_of(result.rows, "majority_accuracy"), "majority-class baseline")
        x_title = (
            "noise standard deviation σ (pixel values 0–1)"
            if noise == "gaussian"
            else "fraction of pixels set to black or white"
        )
        apply_style(fig, f"Test accuracy under {title.lower()} ({_ci_note(result)})", x_title, "test accuracy")
        figs[f"input_noise_{noise}"] = fig
    per_level = [c for c in result.comparisons if c["comparison"].startswith("hybrid − classical twin")]
    if per_level:
        figs["input_noise_difference"] = _difference_figure(
            result, "Hybrid − classical twin accuracy at each noise level", "accuracy", per_level
        )
    return figs


def _hardware_figure(result: ExperimentResult, metric: str, label: str) -> Any:
    import plotly.graph_objects as go

    from hqcnn.plots import OKABE_ITO, apply_style

    summary = result.summary
    fig = go.Figure()
    shots_order = list(dict.fromkeys(r["shots"] for r in result.rows if r.get("simulator") == "default.mixed"))
    dashes = ["solid", "dash", "dot", "dashdot"]
    symbols = ["circle", "square", "triangle-up", "x"]
    ps = sorted({r["p"] for r in result.rows if r.get("p") is not None})
    categories = [f"{p:g}" for p in ps]
    for i, shots in enumerate(shots_order):
        pts = sorted((s for s in summary if s.get("shots") == shots and s["model"] == HYBRID), key=lambda s: s["p"])
        mean = [s[f"{metric}_mean"] for s in pts]
        fig.add_trace(
            go.Scatter(
                x=[f"{s['p']:g}" for s in pts],
                y=mean,
                mode="lines+markers",
                name=f"hybrid, {shots}",
                line={"color": OKABE_ITO[(i * 2) % 8] if i else OKABE_ITO[0], "dash": dashes[i % 4], "width": 3},
                marker={"symbol": symbols[i % 4], "size": 11},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [s[f"{metric}_ci_high"] - s[f"{metric}_mean"] for s in pts],
                    "arrayminus": [s[f"{metric}_mean"] - s[f"{metric}_ci_low"] for s in pts],
                    "thickness": 1.5,
                },
                hovertemplate="p = %{x}<br>" + label + " %{y:.3f}<extra>hybrid, " + str(shots) + "</extra>",
            )
        )
    twin = next((s for s in summary if s["model"] == TWIN and f"{metric}_mean" in s), None)
    if twin and categories:
        colour = _colour(TWIN)
        # A shape, not a filled trace: the grouped x offsets of the hybrid's series would bend a filled trace.
        fig.add_hrect(
            y0=twin[f"{metric}_ci_low"],
            y1=twin[f"{metric}_ci_high"],
            fillcolor=_rgba(colour, 0.18),
            line_width=0,
            layer="below",
            annotation_text="classical twin: 95% CI",
            annotation_position="top left",
        )
        fig.add_trace(
            go.Scatter(
                x=categories,
                y=[twin[f"{metric}_mean"]] * len(categories),
                mode="lines",
                name="classical twin (no quantum part)",
                line={"color": colour, "dash": "longdash", "width": 2},
                hovertemplate="classical twin %{y:.3f}<extra></extra>",
            )
        )
    if metric == "accuracy":
        _reference_line(fig, _mean_of(result.rows, "majority_accuracy"), "majority-class baseline")
    else:
        _reference_line(fig, 0.5, "chance (AUC 0.5)")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=categories)
    fig.update_layout(scattermode="group", scattergap=0.6)  # side by side, so error bars do not overlap
    # Grouped scatter autoranges like bars (from 0); set the range from the data and the reference line.
    lows = [s[f"{metric}_ci_low"] for s in summary if f"{metric}_ci_low" in s]
    reference = _mean_of(result.rows, "majority_accuracy") if metric == "accuracy" else 0.5
    bottom = min([*lows, reference if reference is not None else 1.0]) - 0.05
    fig.update_yaxes(range=[max(0.0, bottom), 1.02])
    n_eval = result.rows[0].get("n_eval") if result.rows else "?"
    apply_style(
        fig,
        f"{_upper_first(label)} of the trained hybrid on a noisy quantum simulator ({n_eval} test images, "
        f"{_ci_note(result)})",
        "depolarising probability p per qubit per layer",
        label,
    )
    return fig


def _figure_hardware(result: ExperimentResult) -> dict[str, Any]:
    return {
        "hardware_noise_accuracy": _hardware_figure(result, "accuracy", "test accuracy"),
        "hardware_noise_auc": _hardware_figure(result, "auc", "test ROC-AUC"),
    }


def _figure_param_efficiency(result: ExperimentResult) -> dict[str, Any]:
    import plotly.graph_objects as go

    from hqcnn.plots import apply_style

    fig = go.Figure()
    for model in (HYBRID, TWIN):
        pts = [s for s in result.summary if s["model"] == model]
        if not pts:
            continue
        dash, symbol = _STYLE[model]
        fig.add_trace(
            go.Scatter(
                x=[s["params"] for s in pts],
                y=[s["accuracy_mean"] for s in pts],
                mode="markers",
                name=model,
                marker={"color": _colour(model), "symbol": symbol, "size": 12, "line": {"color": "white", "width": 1}},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [s["accuracy_ci_high"] - s["accuracy_mean"] for s in pts],
                    "arrayminus": [s["accuracy_mean"] - s["accuracy_ci_low"] for s in pts],
                    "thickness": 1.5,
                },
                customdata=[[s["condition"], s.get("quantum_params", 0)] for s in pts],
                hovertemplate="%{customdata[0]}<br>%{x:,} parameters (%{customdata[1]} in the circuit)"
                "<br>accuracy %{y:.3f}<extra>" + model + "</extra>",
            )
        )
    _reference_line(fig, _mean_of(result.rows, "majority_accuracy"), "majority-class baseline")
    fig.update_xaxes(type="log")
    apply_style(
        fig,
        f"Test accuracy against model size ({_ci_note(result)})",
        "trainable parameters (log scale)",
        "test accuracy",
    )
    return {
        "param_efficiency": fig,
        "param_efficiency_difference": _difference_figure(result, "Hybrid − classical twin accuracy at matched sizes"),
    }


def _figure_ablations(result: ExperimentResult) -> dict[str, Any]:
    import plotly.graph_objects as go

    from hqcnn.plots import apply_style

    summary = result.summary
    fig = go.Figure()
    for model in (HYBRID, BACKBONE, TWIN):
        pts = [s for s in summary if s["model"] == model]
        if not pts:
            continue
        fig.add_trace(
            go.Bar(
                x=[s["condition"] for s in pts],
                y=[s["accuracy_mean"] for s in pts],
                name=model,
                marker={"color": _colour(model), "pattern": {"shape": "" if model == HYBRID else "/"}},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [s["accuracy_ci_high"] - s["accuracy_mean"] for s in pts],
                    "arrayminus": [s["accuracy_mean"] - s["accuracy_ci_low"] for s in pts],
                    "thickness": 2,
                },
                text=[f"{s['accuracy_mean']:.3f}" for s in pts],
                textposition="inside",
                hovertemplate="%{x}<br>accuracy %{y:.3f}<extra>" + model + "</extra>",
            )
        )
    order = [s["condition"] for s in summary]
    fig.update_xaxes(categoryorder="array", categoryarray=order)
    lows = [s["accuracy_ci_low"] for s in summary] or [0.5]
    fig.update_yaxes(range=[max(0.0, min(lows) - 0.1), 1.0])
    _reference_line(fig, _mean_of(result.rows, "majority_accuracy"), "majority-class baseline")
    fig.update_layout(barmode="group", height=520)
    apply_style(fig, f"Test accuracy of each variant ({_ci_note(result)})", "variant", "test accuracy")
    return {
        "ablations": fig,
        "ablations_difference": _difference_figure(result, "Baseline hybrid − each variant, accuracy"),
    }


def _figure_paired(result: ExperimentResult) -> dict[str, Any]:
    import plotly.graph_objects as go

    from hqcnn.plots import apply_style

    rows = result.rows
    fig = go.Figure()
    seeds = sorted({r["seed"] for r in rows})
    for seed in seeds:
        pair = {r["model"]: r["accuracy"] for r in rows if r["seed"] == seed}
        if {HYBRID, TWIN} <= set(pair):
            fig.add_trace(
                go.Scatter(
                    x=[HYBRID, TWIN],
                    y=[pair[HYBRID], pair[TWIN]],
                    mode="lines+markers",
                    line={"color": "#BBBBBB", "width": 1.5},
                    marker={"color": "#666666", "size": 7},
                    name="one seed (paired)",
                    legendgroup="seeds",
                    showlegend=seed == seeds[0],
                    hovertemplate="seed " + str(seed) + "<br>%{x}: %{y:.3f}<extra></extra>",
                )
            )
    for s in result.summary:
        fig.add_trace(
            go.Scatter(
                x=[s["model"]],
                y=[s["accuracy_mean"]],
                mode="markers",
                name=f"{s['model']}: mean, 95% CI",
                marker={"color": _colour(s["model"]), "size": 16, "symbol": _STYLE[s["model"]][1]},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [s["accuracy_ci_high"] - s["accuracy_mean"]],
                    "arrayminus": [s["accuracy_mean"] - s["accuracy_ci_low"]],
                    "thickness": 2.5,
                    "width": 12,
                },
                hovertemplate="%{x}: mean %{y:.3f}<extra></extra>",
            )
        )
    apply_style(fig, f"Test accuracy per seed, hybrid beside its twin ({_ci_note(result)})", "model", "test accuracy")
    comps = [c for c in result.comparisons if c["metric"] in ("accuracy", "auc", "f1", "generalisation_gap")]
    # One difference figure across metrics (all in points).
    diff = _multi_metric_difference(result, comps)
    cost = go.Figure()
    for s in result.summary:
        if "seconds_per_epoch_mean" not in s:
            continue
        cost.add_trace(
            go.Bar(
                x=[s["model"]],
                y=[s["seconds_per_epoch_mean"]],
                name=s["model"],
                marker={"color": _colour(s["model"]), "pattern": {"shape": "" if s["model"] == HYBRID else "/"}},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [s["seconds_per_epoch_ci_high"] - s["seconds_per_epoch_mean"]],
                    "arrayminus": [s["seconds_per_epoch_mean"] - s["seconds_per_epoch_ci_low"]],
                    "thickness": 2,
                },
                text=[f"{s['seconds_per_epoch_mean']:.2f} s"],
                textposition="inside",
                hovertemplate="%{x}: %{y:.2f} s per epoch<extra></extra>",
            )
        )
    apply_style(
        cost, f"Training time per epoch, simulated on this computer ({_ci_note(result)})", "model", "seconds per epoch"
    )
    return {"paired_seeds": fig, "paired_difference": diff, "paired_cost": cost}


_METRIC_NAMES = {"accuracy": "accuracy", "auc": "ROC-AUC", "f1": "F1", "generalisation_gap": "train−test gap"}


def _multi_metric_difference(result: ExperimentResult, comps: Sequence[dict[str, Any]]) -> Any:
    relabelled = [{**c, "comparison": _METRIC_NAMES.get(c["metric"], c["metric"]), "metric": "all"} for c in comps]
    fig = _difference_figure(result, "Paired differences, hybrid − classical twin", "all", relabelled)
    fig.update_xaxes(title_text="metric")
    return fig


_FIGURES: dict[str, Callable[[ExperimentResult], dict[str, Any]]] = {
    "low_data": _figure_low_data,
    "input_noise": _figure_input_noise,
    "hardware_noise": _figure_hardware,
    "param_efficiency": _figure_param_efficiency,
    "ablations": _figure_ablations,
    "paired": _figure_paired,
}


def figures(result: ExperimentResult) -> dict[str, Any]:
    """The experiment's plotly figures, by name (an empty dict when it has no rows)."""
    if not result.rows:
        return {}
    return _FIGURES[result.name](result)
