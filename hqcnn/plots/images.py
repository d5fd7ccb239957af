"""Images as the builders draw them: normalised to [0, 1], thumbnailed, and shown as light traces
on subplots with square pixels and rows running top to bottom."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

_GRAY_SCALE = [[0.0, "black"], [1.0, "white"]]  # explicit: plotly's "Greys" runs white -> black


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
