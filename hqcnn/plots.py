"""Plotly figure builders for the HQCNN Explorer pages.

Every builder takes plain numpy arrays or the JSON-ready dicts of `hqcnn.metrics` /
`hqcnn.train` and RETURNS a `plotly.graph_objects.Figure`; nothing here draws, shows or imports
streamlit, so the same figures serve the app, notebooks and tests.

House rules, enforced through `apply_style` and checked by `tests/test_plots.py`:

- every figure has a title and every visible 2-D axis (and every 3-D scene axis) a title, with
  units where there are any;
- fonts are at least 14 px, because the app is projected in classrooms;
- colours come from the Okabe-Ito palette (distinguishable with the common colour-vision
  deficiencies), and colour is never the only cue: dashes, hatching and text labels carry the
  same information;
- a number is shown next to something to judge it by (a chance line, a baseline, a published
  reference, the row total, the fixed [-1, 1] range of an expectation value);
- figures stay light: images are quantised and thumbnails downsampled, long curves thinned.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "OKABE_ITO",
    "apply_style",
    "before_after",
    "bloch_spheres",
    "class_balance",
    "class_probabilities",
    "confusion_matrix",
    "metrics_comparison",
    "parameter_counts",
    "qubit_bars",
    "qubit_distributions",
    "roc_curves",
    "sample_grid",
    "saliency_overlay",
    "training_curves",
]

# Okabe & Ito (2008), "Color Universal Design". Black is moved to the end because it reads as
# "axis/text" rather than as a data series; yellow is kept last-but-one since it is faint on white.
OKABE_ITO: list[str] = [
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
]
_REFERENCE_GRAY = "#666666"  # chance lines, baselines: visible but clearly not a result
_MUTED_GRAY = "#BBBBBB"
_FONT_SIZE = 15
_ROW_TITLE_CHARS = 22  # wrap width of the class names beside the sample grid
_GRAY_SCALE = [[0.0, "black"], [1.0, "white"]]  # explicit: plotly's "Greys" runs white -> black

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
_STAGE_LABELS: dict[str, str] = {
    "backbone": "CNN backbone",
    "quantum": "quantum circuit",
    "classical_middle": "classical stand-in layer",
    "head": "classifier head",
}


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def apply_style(fig: go.Figure, title: str, x_title: str | None, y_title: str | None) -> go.Figure:
    """Apply the house style to `fig` in place and return it.

    Args:
        fig: the figure to style.
        title: figure title (required: a chart without one is unreadable out of context).
        x_title, y_title: titles of the primary x and y axes; None leaves those axes alone (for
            subplot figures whose builders title each axis themselves, or hidden image axes).
    """
    fig.update_layout(
        template="plotly_white",
        title={"text": title, "x": 0.0, "xanchor": "left", "font": {"size": _FONT_SIZE + 5}},
        font={"size": _FONT_SIZE, "family": "Arial, Helvetica, sans-serif"},
        colorway=OKABE_ITO,
        margin={"l": 80, "r": 40, "t": 90, "b": 70},
        hoverlabel={"font": {"size": _FONT_SIZE}},
        legend={"font": {"size": _FONT_SIZE - 1}},
    )
    if x_title is not None:
        fig.update_layout(xaxis_title={"text": x_title})
    if y_title is not None:
        fig.update_layout(yaxis_title={"text": y_title})
    return fig


def _axis_name(kind: str, index: int) -> str:
    """Layout key of the `index`-th (1-based) x or y axis: "xaxis", "xaxis2", ..."""
    return f"{kind}axis" if index == 1 else f"{kind}axis{index}"


def _as_image(img: np.ndarray) -> np.ndarray:
    """One image as float (H, W) or (H, W, 3) in [0, 1].

    Accepts uint8 (0..255) or floats in [0, 1], channels-last or channels-first (as torch
    tensors come), and a single channel either squeezed or not.
    """
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[-1] not in (1, 3) and a.shape[0] in (1, 3):
        a = np.moveaxis(a, 0, -1)  # (C, H, W) -> (H, W, C)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3):
        raise ValueError(f"Expected an image shaped (H, W) or (H, W, 3), got {a.shape}.")
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    # Clip rather than rescale: rescaling would silently change the brightness a viewer compares.
    return np.clip(np.nan_to_num(a.astype(np.float64)), 0.0, 1.0)


def _downsample(img: np.ndarray, max_side: int) -> np.ndarray:
    """Block-average `img` by an integer factor so its longer side is at most `max_side`.

    Averaging (not striding) keeps thin structures visible in a thumbnail.
    """
    h, w = img.shape[:2]
    factor = math.ceil(max(h, w) / max_side)
    if factor <= 1:
        return img
    h2, w2 = h // factor, w // factor
    cropped = img[: h2 * factor, : w2 * factor]
    return cropped.reshape(h2, factor, w2, factor, *img.shape[2:]).mean(axis=(1, 3))


def _image_trace(img01: np.ndarray, name: str = "image") -> go.Heatmap | go.Image:
    """A trace showing a [0, 1] image: gray heat map for one channel, `go.Image` for RGB.

    Both are quantised to uint8: screens show 256 levels at most, and plotly sends numpy arrays
    as packed binary, so uint8 is 8x lighter than float64.
    """
    z = np.round(img01 * 255.0).astype(np.uint8)
    if img01.ndim == 2:
        return go.Heatmap(
            z=z,
            colorscale=_GRAY_SCALE,
            zmin=0,
            zmax=255,
            showscale=False,
            name=name,
            hovertemplate="x %{x}, y %{y}<br>intensity %{z} of 255 (0 = black)<extra></extra>",
        )
    return go.Image(
        z=z,
        name=name,
        hovertemplate="x %{x}, y %{y}<br>RGB %{z}<extra></extra>",
    )


def _image_axes(fig: go.Figure, index: int, visible: bool) -> None:
    """Equal aspect, top-to-bottom rows for the image in subplot `index` (1-based)."""
    x_key, y_key = _axis_name("x", index), _axis_name("y", index)
    x_ref = "x" if index == 1 else f"x{index}"
    fig.layout[x_key].update(visible=visible, constrain="domain", showgrid=False, zeroline=False)
    # Rows of an image run top to bottom; a heat map would otherwise draw it upside down.
    fig.layout[y_key].update(
        visible=visible,
        autorange="reversed",
        scaleanchor=x_ref,
        scaleratio=1,
        constrain="domain",
        showgrid=False,
        zeroline=False,
    )


def _wrap(text: str, width: int, max_lines: int = 3) -> str:
    """`text` broken into lines of about `width` characters (plotly annotations do not wrap)."""
    lines = textwrap.wrap(str(text), width=width) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(1, width - 1)] + "…"
    return "<br>".join(lines)


def _labels_1d(labels: np.ndarray) -> np.ndarray:
    """Labels as a flat int array (MedMNIST stores them as (N, 1))."""
    return np.asarray(labels).reshape(-1).astype(np.int64)


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


def _placeholder(fig: go.Figure, message: str) -> go.Figure:
    """Write `message` in the middle of an empty plot (e.g. before the first batch)."""
    fig.add_annotation(
        text=message,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": _FONT_SIZE + 1, "color": _REFERENCE_GRAY},
    )
    return fig


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def class_balance(counts: Mapping[str, Sequence[int]], label_names: Sequence[str]) -> go.Figure:
    """Grouped bars: images per class in each split, hover shows the share of the split.

    Args:
        counts: {"train": [n per class], "val": [...], "test": [...]} (any split names).
        label_names: class names, in class-number order.
    """
    fig = go.Figure()
    names = list(label_names)
    for i, (split, per_class) in enumerate(counts.items()):
        n = np.asarray(per_class, dtype=np.int64)
        total = int(n.sum())
        share = 100.0 * n / total if total else np.zeros(len(n))
        fig.add_trace(
            go.Bar(
                name=f"{split} ({total} images)",
                x=names[: len(n)],
                y=n.tolist(),
                text=n.tolist(),
                textposition="outside",
                cliponaxis=False,
                customdata=np.round(share, 1).tolist(),
                marker_color=OKABE_ITO[i % len(OKABE_ITO)],
                hovertemplate=(
                    f"<b>{split}</b><br>%{{x}}: %{{y}} images<br>%{{customdata}}% of the {split} split<extra></extra>"
                ),
            )
        )
    fig.update_layout(barmode="group", legend_title_text="split")
    return apply_style(fig, "Images per class in each split", "class", "images")


def sample_grid(
    images: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    per_class: int = 6,
    max_side: int = 64,
) -> go.Figure:
    """A grid of example images: one row per class, the first `per_class` images of each.

    Args:
        images: (N, H, W) or (N, H, W, 3), float in [0, 1] or uint8 (channels-first accepted).
        labels: (N,) or (N, 1) class numbers.
        label_names: class names; each row is titled with one.
        per_class: images per row.
        max_side: thumbnails larger than this are block-averaged down, to keep the figure light.
    """
    y = _labels_1d(labels)
    names = list(label_names)
    k = len(names)
    per_class = max(1, int(per_class))
    fig = make_subplots(rows=k, cols=per_class, horizontal_spacing=0.01, vertical_spacing=0.02 if k > 1 else 0.0)
    # Row titles are written horizontally at the left rather than with `row_titles`, which
    # rotates them 90 degrees: MedMNIST names such as BloodMNIST's "immature granulocytes
    # (myelocytes, ...)" would then run across the neighbouring rows.
    wrapped = [_wrap(name, _ROW_TITLE_CHARS) for name in names]
    longest = max((len(line) for w in wrapped for line in w.split("<br>")), default=0)
    for c in range(k):
        first_cell = "" if c == 0 else str(c * per_class + 1)
        fig.add_annotation(
            text=wrapped[c],
            xref="paper",
            yref=f"y{first_cell} domain",
            x=0.0,
            y=0.5,
            xanchor="right",
            xshift=-8,
            align="right",
            showarrow=False,
        )
        idx = np.flatnonzero(y == c)[:per_class]
        if idx.size == 0:
            # Say so, rather than leave a blank row that looks like a rendering glitch.
            fig.add_annotation(
                text="no images of this class in this set",
                xref=f"x{first_cell} domain",
                yref=f"y{first_cell} domain",
                x=0.0,
                y=0.5,
                xanchor="left",
                showarrow=False,
                font={"color": _REFERENCE_GRAY},
            )
        for j, i in enumerate(idx):
            img = _downsample(_as_image(images[i]), max_side)
            fig.add_trace(_image_trace(img, name=names[c]), row=c + 1, col=j + 1)
    for index in range(1, k * per_class + 1):
        _image_axes(fig, index, visible=False)
    fig.update_layout(height=max(260, 110 * k + 110), showlegend=False)
    styled = apply_style(fig, "Sample images per class", None, None)
    # Room for the row titles: about 9 px per character at the house font size.
    styled.update_layout(margin={"l": min(320, 20 + 9 * longest)})
    return styled


def before_after(
    before: np.ndarray, after: np.ndarray, titles: tuple[str, str] = ("Original", "Model input")
) -> go.Figure:
    """Two images side by side, e.g. the stored image and what the network receives.

    The pixel axes stay visible and titled because a change of resolution is often the point.

    Args:
        before, after: (H, W) gray or (H, W, 3) RGB images in [0, 1] (uint8 accepted); they may
            differ in size.
        titles: the two subplot titles.
    """
    a, b = _as_image(before), _as_image(after)
    sub = [f"{titles[0]} ({a.shape[1]}×{a.shape[0]} px)", f"{titles[1]} ({b.shape[1]}×{b.shape[0]} px)"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=sub, horizontal_spacing=0.12)
    fig.add_trace(_image_trace(a, titles[0]), row=1, col=1)
    fig.add_trace(_image_trace(b, titles[1]), row=1, col=2)
    for index in (1, 2):
        _image_axes(fig, index, visible=True)
        fig.layout[_axis_name("x", index)].title.text = "x (pixels)"
        fig.layout[_axis_name("y", index)].title.text = "y (pixels)"
    fig.update_layout(height=420, showlegend=False)
    return apply_style(fig, f"{titles[0]} vs {titles[1]}", None, None)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


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
                name="validation accuracy (end of epoch)",
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
            row=2,
            col=1,
        )
    if not len(fig.data):
        _placeholder(fig, "Waiting for the first training batch…")
    fig.update_yaxes(title_text="loss (cross-entropy)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="accuracy (0–1)", range=[0, 1.02], row=2, col=1)
    fig.update_xaxes(title_text="training step (batches)", row=2, col=1)
    fig.update_layout(height=560, hovermode="closest", legend={"groupclick": "toggleitem"})
    return apply_style(fig, "Training progress", None, None)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def confusion_matrix(
    confusion: Sequence[Sequence[int]], label_names: Sequence[str], title: str = "Confusion matrix (test set)"
) -> go.Figure:
    """Heat map of the confusion matrix: true class on rows (top to bottom), predicted on columns.

    Colour follows the counts; each cell's text also gives the share of its true class (row %),
    which is that class's recall on the diagonal, so an imbalanced test set cannot hide a class
    the model never gets right.
    """
    z = np.asarray(confusion, dtype=np.int64)
    names = list(label_names)
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
            colorbar={"title": {"text": "images"}},
            hovertemplate=(
                "true %{y}<br>predicted %{x}<br>%{z} images (%{customdata}% of this true class)<extra></extra>"
            ),
            xgap=2,
            ygap=2,
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", side="bottom")
    side = max(380, 90 * len(names) + 200)
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
) -> go.Figure:
    """ROC curve(s) with the chance diagonal, AUC in the title, optional published reference.

    Args:
        roc: the "roc" entry of `hqcnn.metrics.classification_metrics`: binary {"fpr", "tpr",
            "thresholds"} (or None when undefined) or multi-class {"0": {...} | None, ...}.
        label_names: class names; for binary tasks the positive class is label_names[1].
        auc: the overall AUC (binary, or macro one-vs-rest); None when undefined.
        reference_auc: e.g. the MedMNIST ResNet-18 test AUC, shown as an annotation.
    """
    names = list(label_names)
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
        positive = names[1] if len(names) > 1 else "positive class"
        fig.add_trace(
            go.Scatter(
                x=roc["fpr"],
                y=roc["tpr"],
                mode="lines",
                name=f"{positive} vs rest",
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
    auc_text = (
        "AUC undefined (the set holds only one class)" if auc is None else f"{'macro ' if multi else ''}AUC {auc:.3f}"
    )
    if len(fig.data) == 1:
        _placeholder(fig, "No ROC curve: the set holds only one class.")
    if missing:
        fig.add_annotation(
            text="no curve (class absent from this set): " + ", ".join(missing),
            x=1.0,
            y=0.02,
            xref="paper",
            yref="paper",
            xanchor="right",
            showarrow=False,
            font={"color": _REFERENCE_GRAY, "size": _FONT_SIZE - 2},
        )
    if reference_auc is not None:
        fig.add_annotation(
            text=f"MedMNIST ResNet-18: AUC {reference_auc:.3f}",
            x=0.98,
            y=0.12 if missing else 0.05,
            xref="x",
            yref="y",
            xanchor="right",
            yanchor="bottom",
            showarrow=False,
            bgcolor="rgba(255,255,255,0.85)",
            bordercolor=_REFERENCE_GRAY,
            borderwidth=1,
        )
    fig.update_xaxes(range=[0, 1], constrain="domain", zeroline=False)
    fig.update_yaxes(range=[0, 1], scaleanchor="x", scaleratio=1, constrain="domain", zeroline=False)
    fig.update_layout(height=560, legend={"x": 1.02, "y": 1.0})
    return apply_style(
        fig,
        f"{kind} — {auc_text}",
        "false positive rate (1 − specificity)",
        "true positive rate (sensitivity)",
    )


def metrics_comparison(rows: Mapping[str, Mapping[str, float | None]], title: str) -> go.Figure:
    """Grouped bars comparing models and references on the same metrics (scores in [0, 1]).

    Args:
        rows: {"hybrid": {"accuracy": .., "auc": .., ...}, "classical twin": {...},
            "majority-class baseline": {"accuracy": ..}, "MedMNIST ResNet-18": {...}}.
            None (or non-finite) values are skipped: no bar, rather than a misleading 0.
        title: the figure title (say which split).
    """
    metrics: list[str] = []
    for values in rows.values():
        for key in values:
            if key not in metrics:
                metrics.append(key)
    # Known metrics in a fixed, familiar order; anything else after them as given.
    order = [m for m in _METRIC_LABELS if m in metrics] + [m for m in metrics if m not in _METRIC_LABELS]
    fig = go.Figure()
    for i, (row_name, values) in enumerate(rows.items()):
        keep = [m for m in order if values.get(m) is not None and math.isfinite(float(values[m]))]
        if not keep:
            continue
        y = [float(values[m]) for m in keep]
        # References (baselines, published numbers) are hatched so they read as "not ours".
        is_reference = any(s in row_name.lower() for s in ("baseline", "medmnist", "resnet", "reference"))
        fig.add_trace(
            go.Bar(
                name=row_name,
                x=[_METRIC_LABELS.get(m, m) for m in keep],
                y=y,
                text=[f"{v:.3f}" for v in y],
                textposition="auto",
                cliponaxis=False,
                marker={
                    "color": OKABE_ITO[i % len(OKABE_ITO)],
                    "pattern": {"shape": "/" if is_reference else ""},
                },
                hovertemplate=f"{row_name}<br>%{{x}}: %{{y:.3f}}<extra></extra>",
            )
        )
    if not len(fig.data):
        _placeholder(fig, "No metrics to compare yet.")
    fig.update_xaxes(categoryorder="array", categoryarray=[_METRIC_LABELS.get(m, m) for m in order])
    fig.update_yaxes(range=[0, 1])
    fig.update_layout(barmode="group", legend_title_text="model", height=460)
    return apply_style(fig, title, "metric", "score (0–1)")


# --------------------------------------------------------------------------------------------
# Explanations
# --------------------------------------------------------------------------------------------


def saliency_overlay(image: np.ndarray, attribution: np.ndarray, title: str, opacity: float = 0.5) -> go.Figure:
    """An image with a semi-transparent relevance heat map on top.

    The heat map may have a different resolution from the image (e.g. attribution at the model's
    input size over the original image): it is stretched over the same extent by its coordinates,
    not resampled, so no relevance values are invented.

    Args:
        image: (H, W) gray or (H, W, 3) RGB in [0, 1] (uint8 accepted).
        attribution: (h, w) relevance in [0, 1].
        title: figure title (say which method and which class it explains).
        opacity: opacity of the heat map, 0..1.
    """
    img = _as_image(image)
    att = np.clip(np.nan_to_num(np.asarray(attribution, dtype=float)), 0.0, 1.0)
    if att.ndim != 2:
        raise ValueError(f"Expected a 2-D attribution map, got shape {att.shape}.")
    h, w = img.shape[:2]
    dx, dy = w / att.shape[1], h / att.shape[0]
    fig = go.Figure(_image_trace(img, "image"))
    fig.add_trace(
        go.Heatmap(
            z=att.astype(np.float32),  # float32: half the bytes, far finer than the colour bar
            # Pixel centres of the image sit at 0..W-1, so its extent is [-0.5, W-0.5].
            x0=-0.5 + dx / 2,
            dx=dx,
            y0=-0.5 + dy / 2,
            dy=dy,
            zmin=0.0,
            zmax=1.0,
            colorscale="Inferno",
            opacity=float(np.clip(opacity, 0.0, 1.0)),
            name="relevance",
            colorbar={"title": {"text": "relevance (0–1)"}},
            hovertemplate="x %{x:.0f}, y %{y:.0f}<br>relevance %{z:.2f}<extra></extra>",
        )
    )
    _image_axes(fig, 1, visible=True)
    fig.update_layout(height=520, showlegend=False)
    return apply_style(fig, title, "x (pixels)", "y (pixels)")


# --------------------------------------------------------------------------------------------
# Quantum layer
# --------------------------------------------------------------------------------------------


def qubit_bars(readout: np.ndarray, title: str = "Per-qubit ⟨Z⟩ for this image") -> go.Figure:
    """Bars of each qubit's ⟨Z⟩ on the fixed range [-1, 1] (+1 = |0⟩, −1 = |1⟩)."""
    values = np.asarray(readout, dtype=float).reshape(-1)
    labels = [f"q{i}" for i in range(values.size)]
    # Sign carried by colour AND by the bar's direction and its printed value.
    colors = [OKABE_ITO[0] if v >= 0 else OKABE_ITO[3] for v in values]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=values.tolist(),
            text=[f"{v:+.2f}" for v in values],
            textposition="outside",
            cliponaxis=False,
            marker_color=colors,
            hovertemplate="%{x}: ⟨Z⟩ = %{y:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(
        range=[-1.05, 1.05],
        tickvals=[-1, -0.5, 0, 0.5, 1],
        ticktext=["−1 (|1⟩)", "−0.5", "0", "0.5", "+1 (|0⟩)"],
        zeroline=True,
        zerolinecolor=_REFERENCE_GRAY,
        zerolinewidth=2,
    )
    fig.update_layout(height=420, showlegend=False)
    return apply_style(fig, title, "qubit", "⟨Z⟩ expectation value")


def qubit_distributions(readouts: np.ndarray, labels: np.ndarray, label_names: Sequence[str]) -> go.Figure:
    """Box plots of each qubit's ⟨Z⟩ per class, grouped by qubit.

    A qubit whose boxes separate by class carries information the head can use; overlapping
    boxes mean it does not (on its own).

    Args:
        readouts: (N, n_qubits) ⟨Z⟩ values, e.g. over the test set.
        labels: (N,) or (N, 1) class numbers.
        label_names: class names.
    """
    r = np.asarray(readouts, dtype=float)
    if r.ndim != 2:
        raise ValueError(f"Expected readouts shaped (N, n_qubits), got {r.shape}.")
    y = _labels_1d(labels)
    n_q = r.shape[1]
    qubits = [f"q{i}" for i in range(n_q)]
    fig = go.Figure()
    for c, cname in enumerate(label_names):
        sel = r[y == c]
        if sel.size == 0:
            continue
        fig.add_trace(
            go.Box(
                name=f"{cname} (n={sel.shape[0]})",
                # Numeric qubit positions (labelled by ticks) and float32 values keep the packed
                # arrays small: a test set of thousands of images times 8 qubits.
                x=np.tile(np.arange(n_q, dtype=np.int16), sel.shape[0]),
                y=sel.reshape(-1).astype(np.float32),
                marker_color=OKABE_ITO[c % len(OKABE_ITO)],
                boxmean=True,  # the dashed mean is the value the linear head actually sees on average
                boxpoints="outliers",
                hovertemplate="q%{x}: ⟨Z⟩ %{y:.3f}<extra>" + str(cname) + "</extra>",
            )
        )
    fig.update_xaxes(tickvals=list(range(n_q)), ticktext=qubits, range=[-0.5, n_q - 0.5], zeroline=False)
    fig.update_yaxes(range=[-1.05, 1.05], zeroline=True, zerolinecolor=_REFERENCE_GRAY, zerolinewidth=1.5)
    fig.update_layout(boxmode="group", legend_title_text="true class", height=460)
    return apply_style(fig, "Distribution of each qubit's ⟨Z⟩ per class (test set)", "qubit", "⟨Z⟩ expectation value")


def _sphere_mesh(resolution: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates of a unit sphere at low resolution (400 points: light, still round enough)."""
    u = np.linspace(0.0, 2.0 * np.pi, resolution)
    v = np.linspace(0.0, np.pi, resolution)
    return (
        np.outer(np.cos(u), np.sin(v)).astype(np.float32),
        np.outer(np.sin(u), np.sin(v)).astype(np.float32),
        np.outer(np.ones_like(u), np.cos(v)).astype(np.float32),
    )


def bloch_spheres(vectors: np.ndarray, title: str = "Bloch vector of each qubit") -> go.Figure:
    """One 3-D Bloch sphere per qubit showing its vector (⟨X⟩, ⟨Y⟩, ⟨Z⟩).

    A single qubit on its own has a vector of length 1. A shorter vector means its state is mixed,
    which for the circuit's pure overall state means the qubit is entangled with the others: the
    titles say so, since this is easy to misread as "the qubit is weak".

    Args:
        vectors: (n_qubits, 3) Bloch vectors.
        title: figure title.
    """
    vec = np.asarray(vectors, dtype=float).reshape(-1, 3)
    n = vec.shape[0]
    cols = min(4, max(1, n))
    rows = max(1, math.ceil(n / cols))
    lengths = np.linalg.norm(vec, axis=1)
    sub_titles = []
    for i, length in enumerate(lengths):
        # 0.99 leaves room for float32 rounding of a state that is in fact pure.
        note = "entangled with others" if length < 0.99 else "not entangled"
        sub_titles.append(f"q{i}: length {length:.2f}<br>({note})")
    specs: list[list[dict[str, str] | None]] = [
        [{"type": "scene"} if r * cols + c < n else None for c in range(cols)] for r in range(rows)
    ]
    fig = make_subplots(
        rows=rows, cols=cols, specs=specs, subplot_titles=sub_titles, horizontal_spacing=0.02, vertical_spacing=0.12
    )
    sx, sy, sz = _sphere_mesh()
    axis_line = [-1, 1, None]
    zeros = [0, 0, None]
    for i in range(n):
        r, c = divmod(i, cols)
        pos = {"row": r + 1, "col": c + 1}
        fig.add_trace(
            go.Surface(
                x=sx,
                y=sy,
                z=sz,
                opacity=0.15,
                showscale=False,
                colorscale=[[0, OKABE_ITO[5]], [1, OKABE_ITO[5]]],
                hoverinfo="skip",
                name="unit sphere",
            ),
            **pos,
        )
        fig.add_trace(
            go.Scatter3d(
                x=axis_line + zeros + zeros,
                y=zeros + axis_line + zeros,
                z=zeros + zeros + axis_line,
                mode="lines",
                line={"color": _REFERENCE_GRAY, "width": 2},
                hoverinfo="skip",
                name="axes",
            ),
            **pos,
        )
        fig.add_trace(
            go.Scatter3d(
                x=[0, 0],
                y=[0, 0],
                z=[1, -1],
                mode="text",
                text=["|0⟩", "|1⟩"],
                textposition=["top center", "bottom center"],
                textfont={"size": _FONT_SIZE},
                hoverinfo="skip",
                name="poles",
            ),
            **pos,
        )
        bx, by, bz = (float(v) for v in vec[i])
        fig.add_trace(
            go.Scatter3d(
                x=[0, bx],
                y=[0, by],
                z=[0, bz],
                mode="lines+markers",
                line={"color": OKABE_ITO[3], "width": 7},
                marker={"size": [2, 7], "color": OKABE_ITO[3]},
                name=f"q{i} Bloch vector",
                hovertemplate=(
                    f"q{i}<br>⟨X⟩ {bx:.3f}, ⟨Y⟩ {by:.3f}, ⟨Z⟩ {bz:.3f}<br>length {lengths[i]:.3f}<extra></extra>"
                ),
            ),
            **pos,
        )
    axis = {"range": [-1, 1], "showbackground": False, "tickvals": [-1, 0, 1]}
    fig.update_scenes(
        xaxis={**axis, "title": {"text": "⟨X⟩", "font": {"size": _FONT_SIZE}}},
        yaxis={**axis, "title": {"text": "⟨Y⟩", "font": {"size": _FONT_SIZE}}},
        zaxis={**axis, "title": {"text": "⟨Z⟩", "font": {"size": _FONT_SIZE}}},
        aspectmode="cube",
        camera={"eye": {"x": 1.5, "y": 1.5, "z": 0.9}},
    )
    fig.add_annotation(
        text="Length 1: the qubit is in a state of its own. Shorter: it is entangled with the other qubits.",
        x=0.0,
        y=-0.06,
        xref="paper",
        yref="paper",
        xanchor="left",
        showarrow=False,
        font={"size": _FONT_SIZE - 1, "color": _REFERENCE_GRAY},
    )
    fig.update_layout(height=320 * rows + 120, showlegend=False, margin={"b": 80})
    styled = apply_style(fig, title, None, None)
    # 3-D scenes put no tick labels in the side margins; the top one holds the figure title AND
    # the two-line subplot titles of the first row.
    styled.update_layout(margin={"l": 20, "r": 20, "t": 140})
    return styled


# --------------------------------------------------------------------------------------------
# Single prediction, model size
# --------------------------------------------------------------------------------------------


def class_probabilities(probs: np.ndarray, label_names: Sequence[str]) -> go.Figure:
    """Horizontal bars of the predicted class probabilities, the predicted class highlighted.

    The dotted line at 1/K marks "no information" (every class equally likely).
    """
    p = np.asarray(probs, dtype=float).reshape(-1)
    names = list(label_names)
    k = p.size
    pred = int(np.argmax(p)) if k else -1
    colors = [OKABE_ITO[0] if i == pred else _MUTED_GRAY for i in range(k)]
    text = [f"{v:.2f}" + (" (predicted)" if i == pred else "") for i, v in enumerate(p)]
    fig = go.Figure(
        go.Bar(
            x=p.tolist(),
            y=names[:k],
            orientation="h",
            text=text,
            textposition="outside",
            cliponaxis=False,
            marker_color=colors,
            hovertemplate="%{y}: probability %{x:.3f}<extra></extra>",
        )
    )
    if k:
        fig.add_vline(
            x=1.0 / k,
            line={"color": _REFERENCE_GRAY, "dash": "dot", "width": 2},
            annotation_text=f"equal chance 1/{k} = {1.0 / k:.2f}",
            annotation_position="top",
        )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(autorange="reversed", type="category")  # label order, top to bottom
    fig.update_layout(height=max(280, 45 * k + 180), showlegend=False)
    styled = apply_style(fig, "Predicted probability of each class", "probability", "class")
    styled.update_layout(margin={"r": 130})  # room for the "(predicted)" label beyond a bar near 1
    return styled


def parameter_counts(rows: Mapping[str, Mapping[str, int]]) -> go.Figure:
    """Stacked bars of trainable parameters per stage, one bar per model, total above each bar.

    Args:
        rows: {"hybrid": {"backbone", "quantum", "classical_middle", "head"}, "classical twin":
            {...}} as `ParamCounts.to_dict()` gives them; a "total" key is ignored (recomputed).
    """
    models = list(rows)
    stages = [s for s in _STAGE_LABELS if any(s in rows[m] for m in models)]
    stages += [s for m in models for s in rows[m] if s not in stages and s != "total"]
    stages = list(dict.fromkeys(stages))
    fig = go.Figure()
    for i, stage in enumerate(stages):
        values = [int(rows[m].get(stage, 0) or 0) for m in models]
        if not any(values):
            continue
        fig.add_trace(
            go.Bar(
                name=_STAGE_LABELS.get(stage, stage),
                x=models,
                y=values,
                text=[f"{v:,}" if v else "" for v in values],
                textposition="inside",
                insidetextanchor="middle",
                marker={"color": OKABE_ITO[i % len(OKABE_ITO)], "pattern": {"shape": ["", "/", "x", "."][i % 4]}},
                hovertemplate=f"%{{x}}<br>{_STAGE_LABELS.get(stage, stage)}: %{{y:,}} parameters<extra></extra>",
            )
        )
    totals = [sum(int(rows[m].get(s, 0) or 0) for s in stages) for m in models]
    for m, t in zip(models, totals, strict=True):
        fig.add_annotation(x=m, y=t, text=f"total {t:,}", showarrow=False, yanchor="bottom", yshift=4)
    fig.update_yaxes(range=[0, max(totals, default=1) * 1.15 or 1])
    fig.update_layout(barmode="stack", legend_title_text="stage", height=460)
    return apply_style(fig, "Trainable parameters per stage", "model", "trainable parameters")
