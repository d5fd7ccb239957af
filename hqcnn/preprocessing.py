"""The preprocessing the models see: uint8 images to 0..1 tensors, seeded noise, normalisation.

Shared by the datasets (hqcnn.data) and by single uploaded images (hqcnn.imageio), so an upload is
prepared exactly as the training images were. Knows nothing about where images come from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from hqcnn.config import DataConfig
from hqcnn.datasets_base import SPLITS
from hqcnn.errors import ConfigError, DataError


def split_seed(seed: int, split: str) -> int:
    """An independent, reproducible noise seed for each split."""
    return int(np.random.SeedSequence([seed, SPLITS.index(split)]).generate_state(1)[0])


def add_gaussian_noise(x01: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    """`x01` (values in 0..1) plus seeded Gaussian noise of standard deviation `std`, clipped to [0, 1]."""
    if not std >= 0:
        raise ConfigError(f"Noise level must be at least 0, got {std!r}.")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(x01.shape, generator=generator, dtype=x01.dtype)
    return (x01 + std * noise.to(x01.device)).clamp_(0.0, 1.0)


def add_salt_pepper(x01: torch.Tensor, amount: float, seed: int) -> torch.Tensor:
    """Seeded salt-and-pepper noise on (..., C, H, W) images in 0..1.

    Each pixel independently, with probability `amount`, becomes black or white (all channels alike).
    """
    if not 0 <= amount <= 1:
        raise ConfigError(f"Salt-and-pepper amount must be between 0 and 1, got {amount!r}.")
    if x01.dim() < 3:
        raise DataError(f"Expected images shaped (..., C, H, W), got shape {tuple(x01.shape)}.")
    generator = torch.Generator().manual_seed(seed)
    mask_shape = (*x01.shape[:-3], 1, *x01.shape[-2:])
    hit = torch.rand(mask_shape, generator=generator) < amount
    white = torch.rand(mask_shape, generator=generator) < 0.5
    hit, white = hit.to(x01.device), white.to(x01.device)
    return torch.where(hit, white.to(x01.dtype), x01)


def to_unit_range(images: np.ndarray, grayscale: bool, image_size: int) -> torch.Tensor:
    """uint8 (N,H,W[,C]) -> float32 (N,C,H,W) in 0..1, converted to gray and resized as asked."""
    images = np.asarray(images)
    layout_ok = images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (1, 3))
    if images.dtype != np.uint8 or not layout_ok:
        raise DataError(f"Expected uint8 images shaped (N, H, W) or (N, H, W, 3), got {images.dtype} {images.shape}.")
    unit = images.astype(np.float32)  # a copy, so read-only inputs are fine
    unit /= 255.0
    x = torch.from_numpy(unit)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    if grayscale and x.shape[1] == 3:
        luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)  # ITU-R BT.601
        x = (x * luma).sum(dim=1, keepdim=True)
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return x.contiguous()


def noise_and_normalise(
    x01: torch.Tensor, cfg: DataConfig, mean: Sequence[float], std: Sequence[float], noise_seed: int
) -> torch.Tensor:
    """0..1 images (N,C,H,W) with the configured noise added, then normalised with `mean`/`std`."""
    if cfg.noise_std > 0:
        x01 = add_gaussian_noise(x01, cfg.noise_std, noise_seed)
    if not cfg.normalize:
        return x01
    if len(mean) != x01.shape[1] or len(std) != x01.shape[1]:
        raise DataError(f"The images have {x01.shape[1]} channel(s) but the normalisation statistics {len(mean)}.")
    mean_t = torch.tensor(mean, dtype=x01.dtype).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=x01.dtype).view(1, -1, 1, 1)
    return (x01 - mean_t) / std_t


def preprocess(
    images: np.ndarray,
    cfg: DataConfig,
    mean: Sequence[float],
    std: Sequence[float],
    noise_seed: int | None = None,
) -> torch.Tensor:
    """uint8 images (N,H,W) or (N,H,W,3) -> float32 (N,C,H,W) exactly as the model is fed.

    Scales to 0..1, converts RGB to gray if `cfg.grayscale`, resizes to `cfg.image_size`, adds
    Gaussian noise of `cfg.noise_std` (seeded by `noise_seed`, else `cfg.seed`) and normalises
    with `mean`/`std` if `cfg.normalize`.
    """
    x01 = to_unit_range(images, cfg.grayscale, cfg.image_size)
    return noise_and_normalise(x01, cfg, mean, std, cfg.seed if noise_seed is None else noise_seed)
