"""Figures of what is trained: the live loss and accuracy curves, and the trainable parameters of
each stage of the model."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hqcnn.plots.style import _FONT_SIZE, _REFERENCE_GRAY, OKABE_ITO, _legend_below, _placeholder, _wrap, apply_style

# --------------------------------------------------------------------------------------------
# Training progress
# --------------------------------------------------------------------------------------------


def _ema(values: Sequence[float], weight: float) -> np.ndarray:
    """Bias-corrected exponential moving average (as TensorBoard smooths curves).

    Without the correction the first points are dragged towards 0 and the start of training looks
    better (loss) or worse (accuracy) than it was.
    """
    x = np.asarray(values, dtype=float)
    out = np.empty_like(x)
    m = 0.0
    for i, v in enumerate(x):
        m = weight * m + (1.0 - weight) * v
        out[i] = m / (1.0 - weight ** (i + 1))
    return out


def _thin(n: int, max_points: int) -> np.ndarray:
    """Indices of at most `max_points` evenly spaced points out of `n`, first and last included."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


def _add_run(
    fig: go.Figure,
    name: str,
    color: str,
    dash: str,
    steps: Sequence[int],
    losses: Sequence[float],
    epochs: Sequence[Mapping[str, Any]],
    accuracies: Sequence[float] | None,
    smoothing: float,
    max_points: int,
) -> None:
    """Add one model's curves to the two-row training figure."""
    group = {"legendgroup": name, "legendgrouptitle_text": name}
    if len(steps) and len(losses):
        # int32/float32: plotly packs numpy arrays as binary, and this figure is resent live.
        x = np.asarray(steps, dtype=np.int32)[: len(losses)]
        keep = _thin(len(x), max_points)
        # The EMA is computed on every batch, then thinned, so thinning never changes its value.
        fig.add_trace(
            go.Scatter(
                x=x[keep],
                y=np.asarray(losses, dtype=np.float32)[keep],
                mode="lines",
                name="loss per batch",
                line={"color": color, "width": 1, "dash": dash},
                opacity=0.35,
                hovertemplate="step %{x}<br>batch loss %{y:.3f}<extra>" + name + "</extra>",
                **group,
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=x[keep],
                y=_ema(losses, smoothing)[keep].astype(np.float32),
                mode="lines",
                name="loss (smoothed)",
                line={"color": color, "width": 3, "dash": dash},
                hovertemplate="step %{x}<br>smoothed loss %{y:.3f}<extra>" + name + "</extra>",
                **group,
            ),
            row=1,
            col=1,
        )
    if accuracies is not None and len(accuracies) and len(steps):
        x = np.asarray(steps, dtype=np.int32)[: len(accuracies)]
        keep = _thin(len(x), max_points)
        fig.add_trace(
            go.Scatter(
                x=x[keep],
                y=_ema(accuracies, smoothing)[keep].astype(np.float32),
                mode="lines",
                name="training accuracy (smoothed)",
                line={"color": color, "width": 2, "dash": dash},
                hovertemplate="step %{x}<br>smoothed training accuracy %{y:.3f}<extra>" + name + "</extra>",
                **group,
            ),
            row=2,
            col=1,
        )
    # Epoch rows without a global step (e.g. `TrainResult.history` before the page adds it) or
    # without a validation score cannot be placed on this axis, so they are left out.
    rows = [r for r in epochs if r.get("step") is not None and r.get("val_accuracy") is not None]
    if rows:
        custom = [
            [
                r.get("epoch", ""),
                "n/a" if r.get("val_auc") is None else f"{r['val_auc']:.3f}",
                "n/a" if r.get("train_loss") is None else f"{r['train_loss']:.3f}",
            ]
            for r in rows
        ]
        fig.add_trace(
            go.Scatter(
                x=[r["step"] for r in rows],
                y=[float(r["val_accuracy"]) for r in rows],
                mode="markers",
                name="validation accuracy per epoch",
                # Marker shape differs between the runs too, so they are told apart without colour.
                marker={
                    "color": color,
                    "size": 11,
                    "symbol": "diamond" if dash != "solid" else "circle",
                    "line": {"color": "white", "width": 1},
                },
                customdata=custom,
                hovertemplate=(
                    "epoch %{customdata[0]} (step %{x})<br>validation accuracy %{y:.3f}"
                    "<br>validation AUC %{customdata[1]}<br>mean training loss %{customdata[2]}"
                    "<extra>" + name + "</extra>"
                ),
                **group,
            ),
            row=2,
            col=1,
        )


def training_curves(
    steps: Sequence[int],
    losses: Sequence[float],
    epochs: Sequence[Mapping[str, Any]],
    accuracies: Sequence[float] | None = None,
    twin: Mapping[str, Any] | None = None,
    *,
    name: str = "hybrid",
    baseline_accuracy: float | None = None,
    averaged_steps: tuple[int, int] | None = None,
    total_steps: int | None = None,
    smoothing: float = 0.9,
    max_points: int = 2000,
) -> go.Figure:
    """Live training plot: loss (row 1) and accuracy (row 2) against the training step.

    Args:
        steps: global step (from 1) of every batch so far.
        losses: loss of each batch.
        epochs: one dict per finished epoch with keys "epoch", "step" (global step at the end of
            the epoch), "val_accuracy", "val_auc", "train_loss"; drawn as markers on row 2.
        accuracies: training accuracy of each batch (optional), drawn smoothed.
        twin: a second run to compare, drawn dashed in another colour: {"steps", "losses",
            "accuracies", "epochs", "name"} ("name" defaults to "classical twin").
        name: legend name of the main run.
        baseline_accuracy: e.g. the majority-class accuracy; drawn as a dotted reference line.
        averaged_steps: (first, last) step of the stretch whose weights are averaged into the kept
            model; shaded on both rows.
        total_steps: the run's planned steps: the step axis spans them from the first batch on,
            so a live chart does not rescale (or crowd its ticks) as training goes on.
        smoothing: EMA weight in [0, 1); higher is smoother.
        max_points: per-batch curves longer than this are thinned evenly (light figures).
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}.")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.5, 0.5])
    _add_run(fig, name, OKABE_ITO[0], "solid", steps, losses, epochs, accuracies, smoothing, max_points)
    if twin is not None:
        _add_run(
            fig,
            str(twin.get("name", "classical twin")),
            OKABE_ITO[3],
            "dash",
            twin.get("steps", []),
            twin.get("losses", []),
            twin.get("epochs", []),
            twin.get("accuracies"),
            smoothing,
            max_points,
        )
    if baseline_accuracy is not None:
        fig.add_hline(
            y=baseline_accuracy,
            line={"color": _REFERENCE_GRAY, "dash": "dot", "width": 2},
            annotation_text=f"majority-class baseline {baseline_accuracy:.3f}",
            annotation_position="bottom right",
            annotation_bgcolor="rgba(255,255,255,0.8)",
            row=2,
            col=1,
        )
    if averaged_steps is not None:
        # A shaded band on both rows (shapes, not traces: the legend lists only curves), labelled
        # once, on the loss row (annotation arguments without a text would add plotly's "new text").
        label = {"annotation_text": "weights averaged into the kept model", "annotation_position": "top left"}
        for row, annotation in ((1, label), (2, {})):
            fig.add_vrect(
                x0=averaged_steps[0],
                x1=averaged_steps[1],
                fillcolor=_REFERENCE_GRAY,
                opacity=0.15,
                line_width=0,
                layer="below",
                row=row,
                col=1,
                **annotation,
            )
    if not len(fig.data):
        _placeholder(fig, "Waiting for the first training batch…")
    fig.update_yaxes(title_text="loss (cross-entropy)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="accuracy (0–1)", range=[0, 1.02], row=2, col=1)
    fig.update_xaxes(title_text="training step (batches)", row=2, col=1)
    # Steps are whole batches: never a tick at 1.5. Plotly picks a tick every half step on a run
    # of a few steps, so short runs get one tick per step (or every 2nd, 5th); longer runs keep
    # the automatic ticks, which are then whole numbers anyway.
    last_step = max(
        [int(np.max(steps)) if len(steps) else 0]
        + [int(np.max(twin["steps"])) if twin is not None and len(twin.get("steps", [])) else 0]
        + [averaged_steps[1] if averaged_steps else 0, total_steps or 0]
    )
    ticks: dict[str, Any] = {"tickformat": ",d", "rangemode": "nonnegative"}
    if total_steps:
        ticks["range"] = [0, last_step * 1.01]
    if last_step <= 25:
        ticks.update(tickmode="linear", tick0=0, dtick=1 if last_step <= 10 else (2 if last_step <= 16 else 5))
    fig.update_xaxes(**ticks)
    fig.update_layout(height=600, hovermode="closest", legend={"groupclick": "toggleitem"})
    _legend_below(fig)
    return apply_style(fig, "Training progress", None, None)


# --------------------------------------------------------------------------------------------
# Model size
# --------------------------------------------------------------------------------------------

_STAGE_LABELS: dict[str, str] = {
    "backbone": "CNN backbone",
    "quantum": "quantum circuit",
    "classical_middle": "classical stand-in layer",
    "head": "classifier head",
}

# Two short lines each, so four stages fit side by side under the bars of a narrow column.
_STAGE_TICKS: dict[str, str] = {
    "backbone": "CNN<br>backbone",
    "quantum": "quantum<br>circuit",
    "classical_middle": "classical<br>stand-in",
    "head": "classifier<br>head",
}


def parameter_counts(rows: Mapping[str, Mapping[str, int]]) -> go.Figure:
    """Grouped bars of trainable parameters per stage, one bar per model, on a log scale.

    The backbone has thousands of parameters and the circuit, the stand-in layer and the head
    tens: on a linear axis (or stacked) the small stages are invisible, which is exactly the
    comparison a reader came for. On the log axis each stage gets a readable bar with its count
    printed above it; a note gives each model's total.

    Args:
        rows: {"hybrid": {"backbone", "quantum", "classical_middle", "head"}, "classical twin":
            {...}} as `ParamCounts.to_dict()` gives them; a "total" key is ignored (recomputed).
    """
    models = list(rows)
    stages = [s for s in _STAGE_LABELS if any(s in rows[m] for m in models)]
    stages += [s for m in models for s in rows[m] if s not in stages and s != "total"]
    stages = list(dict.fromkeys(stages))
    counts = {m: [int(rows[m].get(s, 0) or 0) for s in stages] for m in models}
    # A stage no model has (e.g. no stand-in layer in a hybrid-only comparison) is left out.
    shown = [j for j in range(len(stages)) if any(counts[m][j] for m in models)]
    labels = [_STAGE_LABELS.get(stages[j], stages[j]) for j in shown]
    fig = go.Figure()
    # Bars placed by hand (offset/width in category units, as plotly's grouping would) so that
    # the "none" note of a missing bar can be put over that bar's own slot.
    slot = 0.84 / max(1, len(models))
    width = 0.9 * slot  # a small gap keeps the counts above neighbouring bars apart
    for i, m in enumerate(models):
        values = [counts[m][j] for j in shown]
        offset = -0.42 + i * slot + (slot - width) / 2
        fig.add_trace(
            go.Bar(
                name=m,
                x=labels,
                # A log axis cannot show 0: a stage this model lacks gets no bar but the text "none"
                # at the foot of its slot, so it does not look like a rendering glitch.
                y=[v if v > 0 else None for v in values],
                text=[f"{v:,}" for v in values],
                textposition="outside",
                textangle=0,
                cliponaxis=False,
                customdata=values,
                offset=offset,
                width=width,
                marker={"color": OKABE_ITO[(0, 3, 2, 4)[i % 4]], "pattern": {"shape": ["", "/", "x", "."][i % 4]}},
                hovertemplate=f"{m}<br>%{{x}}: %{{customdata:,}} trainable parameters<extra></extra>",
            )
        )
        for j, v in enumerate(values):
            if v == 0:
                fig.add_annotation(
                    x=j + offset + width / 2,  # a category axis takes the category's index too
                    y=0.0,
                    xref="x",
                    yref="y domain",
                    text="none",
                    showarrow=False,
                    yanchor="bottom",
                    yshift=2,
                    font={"color": _REFERENCE_GRAY, "size": _FONT_SIZE - 1},
                )
    positive = [v for m in models for v in counts[m] if v > 0]
    top = math.log10(max(positive, default=10))
    totals = [sum(counts[m]) for m in models]
    fig.add_annotation(
        text="<br>".join(f"{m}: {t:,} in total" for m, t in zip(models, totals, strict=True)),
        x=1.0,
        y=1.0,
        xref="paper",
        yref="paper",
        xanchor="right",
        yanchor="top",
        align="right",
        showarrow=False,
        bgcolor="rgba(255,255,255,0.85)",
        font={"size": _FONT_SIZE - 1},
    )
    fig.update_yaxes(
        type="log",
        # From 1 parameter up to room for the text above the largest bar and the totals note.
        range=[0, top + 0.9],
        dtick=1,
        tickformat=",d",
    )
    short = {_STAGE_LABELS[k]: v for k, v in _STAGE_TICKS.items()}
    fig.update_xaxes(
        tickvals=labels, ticktext=[short.get(label, _wrap(label, 10, max_lines=2)) for label in labels], tickangle=0
    )
    fig.update_layout(barmode="group", height=440)
    _legend_below(fig, "model")
    return apply_style(fig, "Trainable parameters per stage", "stage", "trainable parameters (log scale)")
