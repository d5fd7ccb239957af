"""Figures that explain one prediction: a relevance (saliency, Grad-CAM) map over the image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from hqcnn.plots.images import _as_image, _image_axes, _image_trace
from hqcnn.plots.style import apply_style


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
