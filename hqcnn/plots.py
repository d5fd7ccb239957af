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
- figures stay light: images are quantised and thumbnails downsampled, long curves thinned;
- figures stay readable in a half-width (about 560 px) or one-third-width (about 370 px) column:
  legends run horizontally below the plot (or sit inside it) rather than taking a right-hand
  strip, long titles break onto a second line, and heights default to about 380-480 px.
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
_TICK_CHARS = 14  # wrap width of category tick labels (long MedMNIST class names)
# Longest title line before `apply_style` breaks it (about 620 px of 20 px type). Builders whose
# figures go into narrow columns break their titles themselves, at about 32 characters.
_TITLE_CHARS = 56
_TITLE_LINE_PX = 26  # height of one title line at _FONT_SIZE + 5, with leading
_GRAY_SCALE = [[0.0, "black"], [1.0, "white"]]  # explicit: plotly's "Greys" runs white -> black
_LABEL_AT = 1.22  # where a Bloch sphere's "X" and "Y" labels sit, just beyond the sphere
_SCENE_HALF_WIDTH = 1.3  # Bloch scene range: room for those labels without clipping them

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

# Two short lines each, so four stages fit side by side under the bars of a narrow column.
_STAGE_TICKS: dict[str, str] = {
    "backbone": "CNN<br>backbone",
    "quantum": "quantum<br>circuit",
    "classical_middle": "classical<br>stand-in",
    "head": "classifier<br>head",
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
    if "<br>" not in title and len(title) > _TITLE_CHARS:
        # Plotly does not wrap titles: a long one is cut off at the edge of the figure.
        title = _wrap(title, _TITLE_CHARS, max_lines=6)
    multi_line = "<br>" in title
    fig.update_layout(
        template="plotly_white",
        # Anchored to the top of the figure, so a second title line grows downwards into the
        # margin sized for it below, instead of upwards out of the figure.
        title={
            "text": title,
            "x": 0.0,
            "xanchor": "left",
            "y": 1.0,
            "yanchor": "top",
            "yref": "container",
            # Plotly drops the 0.71 em "top" shift for a title of several lines (its first
            # baseline lands on the anchor), so the pad makes up for it there.
            "pad": {"t": 14 + (round(0.71 * (_FONT_SIZE + 5)) if multi_line else 0), "l": 6},
            "font": {"size": _FONT_SIZE + 5},
        },
        font={"size": _FONT_SIZE, "family": "Arial, Helvetica, sans-serif"},
        colorway=OKABE_ITO,
        margin={"l": 70, "r": 24, "t": _title_margin(title), "b": 60},
        hoverlabel={"font": {"size": _FONT_SIZE}},
        legend={"font": {"size": _FONT_SIZE - 1}},
    )
    if x_title is not None:
        fig.update_layout(xaxis_title={"text": x_title})
    if y_title is not None:
        fig.update_layout(yaxis_title={"text": y_title})
    return fig


def _title_margin(title: str, extra: int = 0) -> int:
    """Top margin (px) that holds `title` (one line per "<br>") plus `extra` px beneath it."""
    return 34 + _TITLE_LINE_PX * (title.count("<br>") + 1) + extra


def _legend_below(fig: go.Figure, title: str | None = None) -> None:
    """A horizontal legend at the bottom of the figure, under the x-axis title.

    A vertical legend on the right takes a fixed strip of about 200 px, which leaves a half- or
    one-third-width column almost no plot. Placed against the bottom edge of the figure (container
    coordinates), plotly grows the bottom margin to fit it and wraps its entries onto more rows
    when the column is narrow, so it never covers the tick labels or the axis title.
    """
    fig.update_layout(
        legend={
            "orientation": "h",
            "xref": "container",
            "x": 0.0,
            "xanchor": "left",
            "yref": "container",
            "y": 0.0,
            "yanchor": "bottom",
            "title": {"text": f"{title}:" if title else None, "side": "left"},
            "font": {"size": _FONT_SIZE - 1},
        }
    )


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
    # Words are never split ("sens-itivity" is harder to read than a slightly long line).
    lines = textwrap.wrap(str(text), width=width, break_long_words=False) or [""]
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
        bgcolor="rgba(255,255,255,0.9)",  # readable where it crosses a reference line
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
                name=f"{split} ({total:,} images)",
                x=names[: len(n)],
                y=n.tolist(),
                text=n.tolist(),
                textposition="outside",
                textangle=0,
                cliponaxis=False,
                customdata=np.round(share, 1).tolist(),
                marker_color=OKABE_ITO[i % len(OKABE_ITO)],
                hovertemplate=(
                    f"<b>{split}</b><br>%{{x}}: %{{y}} images<br>%{{customdata}}% of the {split} split<extra></extra>"
                ),
            )
        )
    # Long class names (BloodMNIST) are broken onto lines instead of being rotated across their
    # neighbours; the categories themselves stay the full names (hover, tests, other code).
    fig.update_xaxes(tickvals=names, ticktext=[_wrap(name, _TICK_CHARS, max_lines=2) for name in names])
    fig.update_yaxes(rangemode="tozero")
    # In a narrow column plotly would shrink the count above each bar to the bar's width, down to
    # an unreadable 5 px: below 12 px it is hidden instead (hover still gives count and share).
    fig.update_layout(barmode="group", height=420, uniformtext={"minsize": 12, "mode": "hide"})
    _legend_below(fig, "split")
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

    Built for a one-third-width column (about 370 px): each subplot title gives the name on one
    line and the size in pixels on the next, the pixel ticks stay visible on both x axes (a change
    of resolution is often the point), and only the left image has a titled y axis, so nothing
    sits between the two images but a gap.

    Args:
        before, after: (H, W) gray or (H, W, 3) RGB images in [0, 1] (uint8 accepted); they may
            differ in size.
        titles: the two subplot titles.
    """
    a, b = _as_image(before), _as_image(after)
    sub = [f"{titles[0]}<br>{a.shape[1]}×{a.shape[0]} px", f"{titles[1]}<br>{b.shape[1]}×{b.shape[0]} px"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=sub, horizontal_spacing=0.1)
    for annotation in fig.layout.annotations:
        annotation.font.size = _FONT_SIZE
    fig.add_trace(_image_trace(a, titles[0]), row=1, col=1)
    fig.add_trace(_image_trace(b, titles[1]), row=1, col=2)
    for index in (1, 2):
        _image_axes(fig, index, visible=True)
        # Images sit right under their titles, whatever the height left over.
        fig.layout[_axis_name("y", index)].constraintoward = "top"
        fig.layout[_axis_name("x", index)].update(title_text="x (pixels)", nticks=4)
    fig.layout.yaxis.update(title_text="y (pixels)", nticks=4)
    # The right image's rows are read off its x ticks and its title; y ticks there would sit on
    # the left image.
    fig.layout.yaxis2.showticklabels = False
    fig.update_layout(height=340, showlegend=False)
    title = f"{titles[0]} vs {titles[1]}"
    styled = apply_style(fig, title, None, None)
    # Room for the figure title and, under it, the two-line subplot titles.
    styled.update_layout(margin={"l": 60, "r": 12, "t": _title_margin(styled.layout.title.text, 48), "b": 56})
    return styled


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
            annotation_bgcolor="rgba(255,255,255,0.8)",
            row=2,
            col=1,
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
    )
    ticks: dict[str, Any] = {"tickformat": ",d", "rangemode": "nonnegative"}
    if last_step <= 25:
        ticks.update(tickmode="linear", tick0=0, dtick=1 if last_step <= 10 else (2 if last_step <= 16 else 5))
    fig.update_xaxes(**ticks)
    fig.update_layout(height=600, hovermode="closest", legend={"groupclick": "toggleitem"})
    _legend_below(fig)
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
) -> go.Figure:
    """ROC curve(s) with the chance diagonal, AUC in the title, optional published reference.

    Args:
        roc: the "roc" entry of `hqcnn.metrics.classification_metrics`: binary {"fpr", "tpr",
            "thresholds"} (or None when undefined) or multi-class {"0": {...} | None, ...}.
        label_names: class names; for binary tasks the positive class is label_names[1].
        auc: the overall AUC (binary, or macro one-vs-rest); None when undefined.
        reference_auc: e.g. the MedMNIST ResNet-18 test AUC, shown as a note above the plot.
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


# --------------------------------------------------------------------------------------------
# Explanations
# --------------------------------------------------------------------------------------------


def _fade_in(colorscale: Sequence[str], solid_from: float = 0.35) -> list[list[Any]]:
    """`colorscale` (evenly spaced colours) whose low end fades to transparent.

    Below `solid_from` the colours keep their hue but become ever more transparent, down to fully
    transparent at 0: low relevance leaves the image underneath as it is, instead of covering it
    with the scale's darkest colour.
    """
    from plotly.colors import hex_to_rgb, unlabel_rgb

    stops = np.linspace(0.0, 1.0, len(colorscale))
    out: list[list[Any]] = []
    for t, colour in zip(stops, colorscale, strict=True):
        r, g, b = hex_to_rgb(colour) if colour.startswith("#") else unlabel_rgb(colour)
        alpha = min(1.0, float(t) / solid_from)
        out.append([float(t), f"rgba({int(r)},{int(g)},{int(b)},{alpha:.2f})"])
    return out


def saliency_overlay(image: np.ndarray, attribution: np.ndarray, title: str, opacity: float = 0.45) -> go.Figure:
    """An image with a semi-transparent relevance heat map on top.

    Low relevance is fully transparent (the colour scale fades in from 0), so the image shows
    through wherever the model did not look; the colour bar is a thin horizontal strip centred
    under the image, where it stays next to the map at any column width.

    The heat map may have a different resolution from the image (e.g. attribution at the model's
    input size over the original image): it is stretched over the same extent by its coordinates,
    not resampled, so no relevance values are invented.

    Args:
        image: (H, W) gray or (H, W, 3) RGB in [0, 1] (uint8 accepted).
        attribution: (h, w) relevance in [0, 1].
        title: figure title (say which method and which class it explains).
        opacity: opacity of the heat map where relevance is high, 0..1.
    """
    from plotly.colors import sequential

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
            colorscale=_fade_in(sequential.Inferno),
            opacity=float(np.clip(opacity, 0.0, 1.0)),
            name="relevance",
            colorbar={
                "title": {"text": "relevance (0–1)", "side": "top"},
                "orientation": "h",
                # Centred under the image (which is centred in the plot), a fixed 260 px long.
                "x": 0.5,
                "xanchor": "center",
                "lenmode": "pixels",
                "len": 260,
                "thickness": 12,
                "yref": "container",
                "y": 0.0,
                "yanchor": "bottom",
                "ypad": 8,
                "tickvals": [0, 0.25, 0.5, 0.75, 1],
                "outlinewidth": 0,
            },
            hovertemplate="x %{x:.0f}, y %{y:.0f}<br>relevance %{z:.2f}<extra></extra>",
        )
    )
    _image_axes(fig, 1, visible=True)
    fig.update_layout(height=500, showlegend=False)
    styled = apply_style(fig, title, "x (pixels)", "y (pixels)")
    styled.update_layout(margin={"b": 60})
    return styled


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
    fig.update_layout(boxmode="group", height=480)
    _legend_below(fig, "true class")
    # Two short lines: the full sentence was cut off in a half-width column.
    return apply_style(fig, "Each qubit's ⟨Z⟩ per class<br>(test set)", "qubit", "⟨Z⟩ expectation value")


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
        # 0.99 leaves room for float32 rounding of a state that is in fact pure. Two short lines:
        # four spheres share a row, about 130 px each in a half-width column.
        note = "entangled" if length < 0.99 else "not entangled"
        sub_titles.append(f"q{i}: length {length:.2f}<br>{note}")
    specs: list[list[dict[str, str] | None]] = [
        [{"type": "scene"} if r * cols + c < n else None for c in range(cols)] for r in range(rows)
    ]
    fig = make_subplots(
        rows=rows, cols=cols, specs=specs, subplot_titles=sub_titles, horizontal_spacing=0.02, vertical_spacing=0.12
    )
    for annotation in fig.layout.annotations:
        annotation.font.size = _FONT_SIZE
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
        # The axes are labelled at their ends, on the sphere itself: the scene's own axis titles
        # sit on the far edges of its bounding box, away from the axes they name.
        fig.add_trace(
            go.Scatter3d(
                x=[_LABEL_AT, 0, 0, 0],
                y=[0, _LABEL_AT, 0, 0],
                z=[0, 0, 1, -1],
                mode="text",
                text=["X", "Y", "|0⟩", "|1⟩"],
                textposition=["middle center", "middle center", "top center", "bottom center"],
                textfont={"size": _FONT_SIZE, "color": "#333333"},
                hoverinfo="skip",
                name="axis labels",
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
    # No ticks, grid, zero lines, background panes or spikes: at this size they were stray "0"s
    # and letter fragments around the spheres. The axis titles keep their text (screen readers,
    # exports) but are drawn transparent: plotly puts them on the far edges of the scene's box,
    # and the text trace above already labels each axis where it is.
    hidden_title = {"size": _FONT_SIZE, "color": "rgba(0,0,0,0)"}
    axis = {
        "range": [-_SCENE_HALF_WIDTH, _SCENE_HALF_WIDTH],
        "showticklabels": False,
        "ticks": "",
        "showgrid": False,
        "zeroline": False,
        "showbackground": False,
        "showline": False,
        "showspikes": False,
    }
    fig.update_scenes(
        xaxis={**axis, "title": {"text": "⟨X⟩", "font": hidden_title}},
        yaxis={**axis, "title": {"text": "⟨Y⟩", "font": hidden_title}},
        zaxis={**axis, "title": {"text": "⟨Z⟩", "font": hidden_title}},
        aspectmode="cube",
        camera={"eye": {"x": 1.25, "y": 1.25, "z": 0.75}},
        dragmode="orbit",
    )
    fig.add_annotation(
        # Two lines, so it fits a half-width column too.
        text="Length 1: the qubit is in a state of its own.<br>Shorter: it is entangled with the other qubits.",
        x=0.0,
        y=0.0,
        xref="paper",
        yref="paper",
        xanchor="left",
        yanchor="top",
        yshift=-4,
        align="left",
        showarrow=False,
        font={"size": _FONT_SIZE - 1, "color": _REFERENCE_GRAY},
    )
    # Scenes about as tall as they are wide in a full-width row of four (a 3-D scene is scaled to
    # its height, so a tall narrow one cuts the sphere off at the sides).
    fig.update_layout(height=230 * rows + 170, showlegend=False)
    styled = apply_style(fig, title, None, None)
    # 3-D scenes put no tick labels in the side margins; the top one holds the figure title AND
    # the two-line subplot titles of the first row, the bottom one the two-line note.
    styled.update_layout(margin={"l": 16, "r": 16, "t": _title_margin(styled.layout.title.text, 48), "b": 60})
    return styled


# --------------------------------------------------------------------------------------------
# Single prediction, model size
# --------------------------------------------------------------------------------------------


def class_probabilities(probs: np.ndarray, label_names: Sequence[str]) -> go.Figure:
    """Horizontal bars of the predicted class probabilities, the predicted class highlighted.

    The dotted line at 1/K marks "no information" (every class equally likely); its label sits
    above the plot. Each bar's probability is written just past its end on a white box, drawn
    over the dotted line, so a value close to 1/K (e.g. 0.42 beside the 0.5 line of a binary
    task) stays readable instead of being struck through.
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
    title = "Predicted probability of each class"
    styled = apply_style(fig, title, "probability", "class")
    # Room for the "(predicted)" label beyond a bar near 1, and for the chance label above.
    styled.update_layout(margin={"r": 120, "t": _title_margin(title, 22)})
    return styled


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
