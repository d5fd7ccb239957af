"""Figures of the quantum layer: each qubit's ⟨Z⟩ readout for one image and per class, and each
qubit's Bloch vector."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hqcnn.plots.style import (
    _FONT_SIZE,
    _REFERENCE_GRAY,
    OKABE_ITO,
    _labels_1d,
    _legend_below,
    _title_margin,
    apply_style,
    plain,
)

_LABEL_AT = 1.22  # where a Bloch sphere's "X" and "Y" labels sit, just beyond the sphere
_SCENE_HALF_WIDTH = 1.3  # Bloch scene range: room for those labels without clipping them


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
    for c, cname in enumerate(plain(label_names)):
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
