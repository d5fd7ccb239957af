"""Figures of the quantum layer: each qubit's ⟨Z⟩ readout for one image and per class, each
qubit's Bloch vector, and the diagram of the circuit itself."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hqcnn.plots.style import (
    _FONT_SIZE,
    _MUTED_GRAY,
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
    """Bars of each qubit's ⟨Z⟩ on the fixed range [-1, 1]: the numbers the classifier head reads.

    +1: the qubit is always measured 0 (|0⟩); −1: always measured 1 (|1⟩); 0: either, equally often.
    """
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
        ticktext=["−1 (always 1)", "−0.5", "0", "0.5", "+1 (always 0)"],
        zeroline=True,
        zerolinecolor=_REFERENCE_GRAY,
        zerolinewidth=2,
    )
    fig.update_layout(height=420, showlegend=False)
    return apply_style(fig, title, "qubit", "⟨Z⟩: what the classifier head reads")


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


# --------------------------------------------------------------------------------------------
# The circuit diagram
# --------------------------------------------------------------------------------------------

# The diagram is laid out for this width and never drawn wider, so a page shows it at its own
# size (an <img> only ever shrinks to its column) and every label keeps its font size in pixels.
# 720 px is the main column of the wide layout on a 1280-px screen with the sidebar open.
DIAGRAM_WIDTH_PX = 720
_DIAGRAM_FONT = "Arial, Helvetica, 'DejaVu Sans', sans-serif"
_WIRE_GAP = 44  # px between wires
_BOX_H = 30
_LEFT = 44  # wire labels
_MEASURE_W = 52
_ROLE_COLORS = {  # (fill, outline): light fills keep the black labels readable
    "encoding": ("#D6EAF8", OKABE_ITO[0]),
    "trainable": ("#FBE3C0", OKABE_ITO[1]),
    "fixed": ("#EEEEEE", _REFERENCE_GRAY),
}


@dataclass(frozen=True)
class CircuitDiagram:
    """A drawn circuit: `svg` (text), `png()` on demand, and the sizes a reader sees.

    A gate diagram is not a chart, so unlike the other builders this is no plotly figure: it is
    drawn from simple shapes that an SVG and a PNG render alike.
    """

    shapes: tuple[tuple, ...]
    width: int
    height: int
    title: str

    @property
    def font_sizes(self) -> list[int]:
        """The font size in px of every label."""
        return [s[4] for s in self.shapes if s[0] == "text"]

    @property
    def svg(self) -> str:
        """The diagram as a standalone SVG document."""
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" font-family="{_DIAGRAM_FONT}">',
            f"<title>{html.escape(self.title)}</title>",
            f'<rect width="{self.width}" height="{self.height}" fill="white"/>',
        ]
        for kind, *a in self.shapes:
            if kind == "line":
                x1, y1, x2, y2, color, width, dashed = a
                dash = ' stroke-dasharray="4 4"' if dashed else ""
                out.append(
                    f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{color}" stroke-width="{width}"{dash}/>'
                )
            elif kind == "rect":
                x, y, w, h, fill, stroke = a
                out.append(
                    f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="4" fill="{fill}" stroke="{stroke}" '
                    'stroke-width="1.5"/>'
                )
            elif kind == "circle":
                cx, cy, r, fill, stroke = a
                out.append(f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>')
            else:
                x, y, text, size, color, anchor, bold = a
                weight = ' font-weight="bold"' if bold else ""
                out.append(
                    f'<text x="{x}" y="{y}" font-size="{size}" fill="{color}" text-anchor="{anchor}" '
                    f'dominant-baseline="central"{weight}>{html.escape(text)}</text>'
                )
        out.append("</svg>")
        return "\n".join(out)

    def png(self, scale: int = 2) -> bytes:
        """The diagram as a PNG, `scale` device pixels per px (sharp on high-density screens)."""
        import io

        from PIL import Image, ImageDraw

        image = Image.new("RGB", (self.width * scale, self.height * scale), "white")
        draw = ImageDraw.Draw(image)

        def px(*values: float) -> list[float]:
            return [v * scale for v in values]

        for kind, *a in self.shapes:
            if kind == "line":
                x1, y1, x2, y2, color, width, dashed = a
                if not dashed:
                    draw.line(px(x1, y1, x2, y2), fill=color, width=max(1, round(width * scale)))
                    continue
                length = math.hypot(x2 - x1, y2 - y1)
                for start in np.arange(0.0, length, 8.0):
                    f0, f1 = start / length, min(start + 4.0, length) / length
                    draw.line(
                        px(x1 + (x2 - x1) * f0, y1 + (y2 - y1) * f0, x1 + (x2 - x1) * f1, y1 + (y2 - y1) * f1),
                        fill=color,
                        width=max(1, round(width * scale)),
                    )
            elif kind == "rect":
                x, y, w, h, fill, stroke = a
                draw.rounded_rectangle(px(x, y, x + w, y + h), radius=4 * scale, fill=fill, outline=stroke, width=scale)
            elif kind == "circle":
                cx, cy, r, fill, stroke = a
                draw.ellipse(px(cx - r, cy - r, cx + r, cy + r), fill=fill, outline=stroke, width=scale)
            else:
                x, y, text, size, color, anchor, bold = a
                draw.text(
                    px(x, y),
                    text,
                    fill=color,
                    font=_png_font(size * scale, bold),
                    anchor="mm" if anchor == "middle" else "lm",
                )
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()


def _png_font(size: int, bold: bool) -> Any:
    """DejaVu Sans, which matplotlib ships: PIL's own font has no ⟨, ⟩ or π."""
    from PIL import ImageFont

    try:
        import matplotlib

        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        return ImageFont.truetype(f"{matplotlib.get_data_path()}/fonts/ttf/{name}", size)
    except (ImportError, OSError):
        return ImageFont.load_default(size)


def _text_px(text: str, size: int) -> float:
    """A generous width estimate of `text` in Arial/DejaVu at `size` px (bold included)."""
    return 0.62 * size * len(text)


def _gate_label(gate: Any) -> str:
    if gate.role == "encoding":
        return f"{gate.name}(x{gate.feature})"
    return gate.name[:6]


def _layer_columns(gates: Sequence[Any]) -> list[list[Any]]:
    """Gates of one layer in columns: each as early as its wires allow, a new stage (encoding,
    trainable, fixed) starting a new column so that the stages read left to right."""
    columns: list[list[Any]] = []
    free: dict[int, int] = {}  # wire → first column it is free in
    stage_start, previous_role = 0, None
    for gate in gates:
        if gate.role != previous_role:
            stage_start, previous_role = len(columns), gate.role
        span = range(min(gate.wires), max(gate.wires) + 1)  # a CNOT's line crosses the wires between
        column = max([stage_start, *(free.get(w, 0) for w in span)])
        while len(columns) <= column:
            columns.append([])
        columns[column].append(gate)
        for w in span:
            free[w] = column + 1
    return columns


def _column_pitch(column: Sequence[Any]) -> float:
    widths = [30.0 if len(g.wires) > 1 else _text_px(_gate_label(g), _FONT_SIZE) + 14 for g in column]
    return max(widths) + 10


def circuit_diagram(
    n_qubits: int, gates: Sequence[Any], title: str, max_width: int = DIAGRAM_WIDTH_PX
) -> CircuitDiagram:
    """The circuit drawn as rows of whole layers, each row at most `max_width` px wide.

    Args:
        n_qubits: number of wires.
        gates: in order, each with `name`, `wires`, `role` ("encoding", "trainable" or "fixed"),
            `layer` and, for encoding gates, `feature` (as `hqcnn.circuit.circuit_gates` gives).
        title: the heading drawn above the circuit.
        max_width: widest the drawing may be; layers wrap onto further rows to stay within it.
    """
    layers: dict[int, list[Any]] = {}
    for gate in gates:
        layers.setdefault(gate.layer, []).append(gate)
    blocks = []  # (layer, columns, pitches, width)
    for layer, members in sorted(layers.items()):
        columns = _layer_columns(members)
        pitches = [_column_pitch(c) for c in columns]
        blocks.append((layer, columns, pitches, sum(pitches) + 16))
    room = max_width - _LEFT - _MEASURE_W - 8
    rows: list[list[tuple]] = [[]]
    for block in blocks:
        if rows[-1] and sum(b[3] for b in rows[-1]) + block[3] > room:
            rows.append([])
        rows[-1].append(block)
    content = _LEFT + max(sum(b[3] for b in row) for row in rows) + _MEASURE_W + 8
    legend = [
        ("encoding", "RY(x3)", "encoding: feature 3's angle"),
        ("trainable", "RY", "trainable angle"),
        (None, "", "CNOT: ● control, ⊕ target"),
    ]
    legend_w = sum(_text_px(label, _FONT_SIZE) + _text_px(text, _FONT_SIZE - 1) + 40 for _, label, text in legend)
    width = int(min(max_width, max(content, _text_px(title, _FONT_SIZE + 3) + 16, min(legend_w, max_width) + 16)))

    shapes: list[tuple] = [("text", 8, 18, title, _FONT_SIZE + 3, "#222222", "start", True)]
    x, y = 8.0, 48.0
    for role, label, text in legend:
        item_w = _text_px(label, _FONT_SIZE) + _text_px(text, _FONT_SIZE - 1) + 40
        if x > 8 and x + item_w > width:
            x, y = 8.0, y + 30
        box_w = _text_px(label, _FONT_SIZE) + 14 if role else -6.0
        if role:
            fill, stroke = _ROLE_COLORS[role]
            shapes += [
                ("rect", x, y - 13, box_w, 26, fill, stroke),
                ("text", x + box_w / 2, y, label, _FONT_SIZE, "#111111", "middle", False),
            ]
        shapes.append(("text", x + box_w + 6, y, text, _FONT_SIZE - 1, "#333333", "start", False))
        x += item_w
    top = y + 26
    for r, row in enumerate(rows):
        first_wire = top + 24 + _WIRE_GAP / 2
        wire_y = [first_wire + q * _WIRE_GAP for q in range(n_qubits)]
        end = _LEFT + sum(b[3] for b in row) + (_MEASURE_W if r == len(rows) - 1 else 8)
        for q, wy in enumerate(wire_y):
            shapes.append(("text", 8, wy, f"q{q}", _FONT_SIZE, "#222222", "start", False))
            shapes.append(
                ("line", _LEFT, wy, end - (_MEASURE_W / 2 if r == len(rows) - 1 else 0), wy, "#444444", 1.2, False)
            )
        x = float(_LEFT)
        for layer, columns, pitches, block_w in row:
            if x > _LEFT:  # a dashed line between two layers
                shapes.append(("line", x, top + 14, x, wire_y[-1] + _WIRE_GAP / 2, _MUTED_GRAY, 1, True))
            shapes.append(
                ("text", x + block_w / 2, top + 10, f"layer {layer + 1}", _FONT_SIZE - 1, "#333333", "middle", False)
            )
            cx = x + 8
            for column, pitch in zip(columns, pitches, strict=True):
                mid = cx + pitch / 2
                for gate in column:
                    shapes += _gate_shapes(gate, mid, wire_y)
                cx += pitch
            x += block_w
        if r == len(rows) - 1:
            for wy in wire_y:
                shapes += [
                    ("rect", x + 4, wy - _BOX_H / 2, _MEASURE_W - 8, _BOX_H, "white", "#222222"),
                    ("text", x + _MEASURE_W / 2, wy, "⟨Z⟩", _FONT_SIZE, "#111111", "middle", False),
                ]
        top = wire_y[-1] + _WIRE_GAP / 2 + 16
    return CircuitDiagram(tuple(shapes), width, int(top), title)


def _gate_shapes(gate: Any, mid: float, wire_y: Sequence[float]) -> list[tuple]:
    """The shapes of one gate centred at x = `mid`."""
    if gate.name == "CNOT":
        control, target = (wire_y[w] for w in gate.wires)
        return [
            ("line", mid, control, mid, target, "#222222", 1.5, False),
            ("circle", mid, control, 4.5, "#222222", "#222222"),
            ("circle", mid, target, 10, "white", "#222222"),
            ("line", mid - 10, target, mid + 10, target, "#222222", 1.5, False),
            ("line", mid, target - 10, mid, target + 10, "#222222", 1.5, False),
        ]
    fill, stroke = _ROLE_COLORS.get(gate.role, _ROLE_COLORS["fixed"])
    label = _gate_label(gate)
    ys = [wire_y[w] for w in gate.wires]
    box_w = _text_px(label, _FONT_SIZE) + 14
    top, bottom = min(ys) - _BOX_H / 2, max(ys) + _BOX_H / 2
    return [
        ("rect", mid - box_w / 2, top, box_w, bottom - top, fill, stroke),
        ("text", mid, (top + bottom) / 2, label, _FONT_SIZE, "#111111", "middle", False),
    ]
