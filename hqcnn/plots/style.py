"""The house style every figure shares, and the small helpers the builders have in common.

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

import html
import textwrap
from collections.abc import Iterable

import numpy as np
import plotly.graph_objects as go

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
# Longest title line before `apply_style` breaks it (about 620 px of 20 px type). Builders whose
# figures go into narrow columns break their titles themselves, at about 32 characters.
_TITLE_CHARS = 56
_TITLE_LINE_PX = 26  # height of one title line at _FONT_SIZE + 5, with leading


def plain(names: Iterable[object]) -> list[str]:
    """Names from users (class folders, datasets) as literal text for Plotly, which reads a subset of
    HTML in every label (<a href>, <b>, <br>, <span style>): '<', '>' and '&' become entities."""
    return [html.escape(str(name), quote=False) for name in names]


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


def _wrap(text: str, width: int, max_lines: int = 3) -> str:
    """`text` broken into lines of about `width` characters (plotly annotations do not wrap)."""
    # Words are never split ("sens-itivity" is harder to read than a slightly long line).
    lines = textwrap.wrap(str(text), width=width, break_long_words=False) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(1, width - 1)] + "…"
    return "<br>".join(lines)


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


def _labels_1d(labels: np.ndarray) -> np.ndarray:
    """Labels as a flat int array (MedMNIST stores them as (N, 1))."""
    return np.asarray(labels).reshape(-1).astype(np.int64)
