"""Figures of the data set: how many images each class has, what they look like, and what the
network receives instead of the stored image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hqcnn.plots.images import _as_image, _axis_name, _downsample, _image_axes, _image_trace
from hqcnn.plots.style import (
    _FONT_SIZE,
    _REFERENCE_GRAY,
    OKABE_ITO,
    _labels_1d,
    _legend_below,
    _title_margin,
    _wrap,
    apply_style,
    plain,
)

_ROW_TITLE_CHARS = 22  # wrap width of the class names beside the sample grid
_TICK_CHARS = 14  # wrap width of category tick labels (long MedMNIST class names)


def class_balance(counts: Mapping[str, Sequence[int]], label_names: Sequence[str]) -> go.Figure:
    """Grouped bars: images per class in each split, hover shows the share of the split.

    Args:
        counts: {"train": [n per class], "val": [...], "test": [...]} (any split names).
        label_names: class names, in class-number order.
    """
    fig = go.Figure()
    names = plain(label_names)
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
    names = plain(label_names)
    k = len(names)
    per_class = max(1, int(per_class))
    layout = _grid_axes(k, per_class, h_spacing=0.01, v_spacing=0.02 if k > 1 else 0.0)
    # Row titles are written horizontally at the left rather than as plotly's row titles, which
    # are rotated 90 degrees: MedMNIST names such as BloodMNIST's "immature granulocytes
    # (myelocytes, ...)" would then run across the neighbouring rows.
    wrapped = [_wrap(name, _ROW_TITLE_CHARS) for name in names]
    longest = max((len(line) for w in wrapped for line in w.split("<br>")), default=0)
    annotations, traces = [], []
    for c in range(k):
        first_cell = _cell(c * per_class + 1)
        annotations.append(
            {
                "text": wrapped[c],
                "xref": "paper",
                "yref": f"y{first_cell} domain",
                "x": 0.0,
                "y": 0.5,
                "xanchor": "right",
                "xshift": -8,
                "align": "right",
                "showarrow": False,
            }
        )
        idx = np.flatnonzero(y == c)[:per_class]
        if idx.size == 0:
            # Say so, rather than leave a blank row that looks like a rendering glitch.
            annotations.append(
                {
                    "text": "no images of this class in this set",
                    "xref": f"x{first_cell} domain",
                    "yref": f"y{first_cell} domain",
                    "x": 0.0,
                    "y": 0.5,
                    "xanchor": "left",
                    "showarrow": False,
                    "font": {"color": _REFERENCE_GRAY},
                }
            )
        for j, i in enumerate(idx):
            cell = _cell(c * per_class + j + 1)
            trace = _image_trace(_downsample(_as_image(images[i]), max_side), name=names[c])
            traces.append(trace.update(xaxis=f"x{cell}", yaxis=f"y{cell}"))
    layout.update(annotations=annotations, height=max(260, 110 * k + 110), showlegend=False)
    # One construction of the whole figure: adding 30 subplots' traces and axes one by one costs
    # plotly a second of validation, paid on every first view of the Data page.
    fig = go.Figure(data=traces, layout=layout)
    styled = apply_style(fig, "Sample images per class", None, None)
    # Room for the row titles: about 9 px per character at the house font size.
    styled.update_layout(margin={"l": min(320, 20 + 9 * longest)})
    return styled


def _cell(index: int) -> str:
    """Suffix of the `index`-th (1-based) subplot's axis references: "", "2", "3", ..."""
    return "" if index == 1 else str(index)


def _grid_axes(rows: int, cols: int, h_spacing: float, v_spacing: float) -> dict:
    """Layout of a rows x cols grid of hidden image axes, numbered row by row from the top left
    as `make_subplots` numbers them, with square pixels and image rows running top to bottom."""
    width = (1.0 - h_spacing * (cols - 1)) / cols
    height = (1.0 - v_spacing * (rows - 1)) / rows
    common = {"visible": False, "constrain": "domain", "showgrid": False, "zeroline": False}
    layout = {}
    for r in range(rows):
        bottom = (rows - 1 - r) * (height + v_spacing)
        for c in range(cols):
            suffix = _cell(r * cols + c + 1)
            left = c * (width + h_spacing)
            layout[f"xaxis{suffix}"] = {**common, "anchor": f"y{suffix}", "domain": [left, left + width]}
            layout[f"yaxis{suffix}"] = {
                **common,
                "anchor": f"x{suffix}",
                "domain": [bottom, bottom + height],
                "autorange": "reversed",
                "scaleanchor": f"x{suffix}",
                "scaleratio": 1,
            }
    return layout


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
