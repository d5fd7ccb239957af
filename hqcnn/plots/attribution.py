"""Figures that explain one prediction: a relevance (saliency, Grad-CAM) map over the image, or a
signed map of evidence for and against a class on a diverging colour scale centred at 0."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from hqcnn.plots.images import _as_image, _image_axes, _image_trace
from hqcnn.plots.style import apply_style, plain


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


def _fade_in_diverging(colorscale: Sequence[str], solid_from: float = 0.35) -> list[list[Any]]:
    """`colorscale` (evenly spaced colours, a diverging scale) transparent at its middle (0 evidence).

    Alpha grows with the distance from the middle, solid from `solid_from` of the half-range on,
    so weak evidence either way leaves the image underneath as it is.
    """
    from plotly.colors import hex_to_rgb, unlabel_rgb

    stops = np.linspace(0.0, 1.0, len(colorscale))
    out: list[list[Any]] = []
    for t, colour in zip(stops, colorscale, strict=True):
        r, g, b = hex_to_rgb(colour) if colour.startswith("#") else unlabel_rgb(colour)
        alpha = min(1.0, abs(2 * float(t) - 1) / solid_from)
        out.append([float(t), f"rgba({int(r)},{int(g)},{int(b)},{alpha:.2f})"])
    return out


def _overlay(
    image: np.ndarray,
    values: np.ndarray,
    title: str,
    opacity: float,
    heatmap: dict[str, Any],
) -> go.Figure:
    """The image with heat map `values` stretched over it; `heatmap` holds the trace's scale settings."""
    img = _as_image(image)
    if values.ndim != 2:
        raise ValueError(f"Expected a 2-D attribution map, got shape {values.shape}.")
    h, w = img.shape[:2]
    dx, dy = w / values.shape[1], h / values.shape[0]
    colorbar = {
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
        "outlinewidth": 0,
        **heatmap.pop("colorbar"),
    }
    fig = go.Figure(_image_trace(img, "image"))
    fig.add_trace(
        go.Heatmap(
            z=values.astype(np.float32),  # float32: half the bytes, far finer than the colour bar
            # Pixel centres of the image sit at 0..W-1, so its extent is [-0.5, W-0.5].
            x0=-0.5 + dx / 2,
            dx=dx,
            y0=-0.5 + dy / 2,
            dy=dy,
            opacity=float(np.clip(opacity, 0.0, 1.0)),
            colorbar=colorbar,
            **heatmap,
        )
    )
    _image_axes(fig, 1, visible=True)
    fig.update_layout(height=500, showlegend=False)
    styled = apply_style(fig, title, "x (pixels)", "y (pixels)")
    styled.update_layout(margin={"b": 60})
    return styled


def evidence_overlay(
    image: np.ndarray, evidence: np.ndarray, title: str, class_name: str, opacity: float = 0.6
) -> go.Figure:
    """An image with a signed attribution map on top: red where a pixel is evidence for `class_name`,
    blue where it is evidence against it (plotly's RdBu, reversed, centred at 0).

    Weak evidence either way is transparent, so the image shows through; the colour bar is the
    same thin horizontal strip as `saliency_overlay`'s, titled "evidence for / against '<class>'".

    Args:
        image: (H, W) gray or (H, W, 3) RGB in [0, 1] (uint8 accepted).
        evidence: (h, w) signed map in [−1, 1] (e.g. `explain.normalise_signed`): +1 the strongest
            evidence for the class, −1 the strongest against, 0 neither.
        title: figure title (say which method and which class it explains).
        class_name: the explained class, for the colour bar (made literal text here).
        opacity: opacity of the heat map where evidence is strong, 0..1.
    """
    from plotly.colors import diverging

    values = np.clip(np.nan_to_num(np.asarray(evidence, dtype=float)), -1.0, 1.0)
    name = plain([class_name])[0]
    return _overlay(
        image,
        values,
        title,
        opacity,
        {
            "zmin": -1.0,
            "zmax": 1.0,
            "zmid": 0.0,
            # RdBu runs red → blue; reversed, the high (for) end is red and the low (against) end blue.
            "colorscale": _fade_in_diverging(diverging.RdBu[::-1]),
            "name": "evidence",
            "colorbar": {
                "title": {"text": f"evidence for / against '{name}'", "side": "top"},
                "tickvals": [-1, -0.5, 0, 0.5, 1],
                "ticktext": ["−1 against", "−0.5", "0", "0.5", "+1 for"],
            },
            "hovertemplate": f"x %{{x:.0f}}, y %{{y:.0f}}<br>evidence for '{name}' %{{z:+.2f}}<extra></extra>",
        },
    )


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

    att = np.clip(np.nan_to_num(np.asarray(attribution, dtype=float)), 0.0, 1.0)
    return _overlay(
        image,
        att,
        title,
        opacity,
        {
            "zmin": 0.0,
            "zmax": 1.0,
            "colorscale": _fade_in(sequential.Inferno),
            "name": "relevance",
            "colorbar": {"title": {"text": "relevance (0–1)", "side": "top"}, "tickvals": [0, 0.25, 0.5, 0.75, 1]},
            "hovertemplate": "x %{x:.0f}, y %{y:.0f}<br>relevance %{z:.2f}<extra></extra>",
        },
    )
