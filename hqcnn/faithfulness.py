"""Does an attribution map mean anything? Two checks of a map against the model it explains.

Faithfulness (Petsiuk et al. 2018, "RISE"): delete the pixels in the map's order, most important
first (set them to 0, the training mean after normalisation), and follow the explained class's
probability; the area under that curve is small when the map found what the model uses.
Insertion starts from the mean image and adds the pixels back; its area is large for a faithful
map. Both are compared with a random order. Faithfulness = insertion − deletion area (higher is
more faithful; a random order scores about 0).

Sanity check (Adebayo et al. 2018): re-randomise the middle layer alone (the circuit's angles for
the hybrid, the twin layer's weights for the twin) and compare the maps before and after by
Spearman rank correlation. A map that barely changes does not depend on that layer.

The Explain page shows both for one image; the interpretability study averages them over many
images and trainings. Like `hqcnn.explain`, everything here returns numbers and draws nothing.
torch (and the circuit code behind `hqcnn.explain`) is imported only when a function runs: the
study registry imports this module just for `STEPS` and should stay quick to import.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hqcnn.errors import HQCNNError

if TYPE_CHECKING:
    import torch
    from torch import nn

STEPS = 20  # points of each deletion / insertion curve after the start


def _check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise HQCNNError(f"A deletion curve needs a whole number of at least 1 step, got {steps!r}.")
    return int(steps)


def _image(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(C, H, W) or (1, C, H, W) → a float (C, H, W) copy on the model's device."""
    from hqcnn.explain import _single_image

    return _single_image(model, x)[0]


def map_order(attribution: np.ndarray) -> np.ndarray:
    """Flat H·W pixel indices, most important first (ties in reading order, so it is reproducible)."""
    a = np.asarray(attribution, dtype=np.float64)
    if a.ndim != 2:
        raise HQCNNError(f"Expected a 2-D attribution map, got shape {a.shape}.")
    a = np.where(np.isfinite(a), a, -np.inf)  # a broken value ranks last rather than first
    return np.argsort(-a, axis=None, kind="stable")


def curves(
    model: nn.Module, x: torch.Tensor, order: np.ndarray, target: int, steps: int = STEPS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fractions, deletion, insertion): the target probability as pixels follow `order`.

    x: one normalised image, (C, H, W) or (1, C, H, W); order: flat H·W indices (every channel
    of a pixel goes at once). fractions[k] is the share of pixels deleted (inserted) at point k,
    0 to 1 in `steps` steps; all 2·(steps + 1) images go through the model in one batch.
    """
    import torch

    from hqcnn.explain import _check_target, _eval_mode

    steps = _check_steps(steps)
    target = _check_target(model, target)
    x = _image(model, x)
    _, h, w = x.shape
    order = np.asarray(order).reshape(-1)
    if order.size != h * w or not np.array_equal(np.sort(order), np.arange(h * w)):
        raise HQCNNError(f"A pixel order must list each of the image's {h * w} pixels once, got {order.size} values.")
    counts = [math.ceil(k * h * w / steps) for k in range(steps + 1)]
    masks = torch.zeros(steps + 1, h * w, dtype=torch.bool)
    for k, n in enumerate(counts):
        masks[k, torch.as_tensor(order[:n], dtype=torch.long)] = True
    masks = masks.view(steps + 1, 1, h, w).to(x.device)
    zero = x.new_zeros(())  # 0 = the training mean after normalisation
    deleted = torch.where(masks, zero, x.unsqueeze(0))
    inserted = torch.where(masks, x.unsqueeze(0), zero)
    with torch.no_grad(), _eval_mode(model):
        probs = torch.softmax(model(torch.cat([deleted, inserted])), dim=1)[:, target].double().cpu().numpy()
    return np.array(counts) / (h * w), probs[: steps + 1], probs[steps + 1 :]


def curve_areas(
    model: nn.Module, x: torch.Tensor, order: np.ndarray, target: int, steps: int = STEPS
) -> tuple[float, float]:
    """(deletion, insertion) areas under the target probability as pixels follow `order` (flat H·W indices)."""
    fractions, deletion, insertion = curves(model, x, order, target, steps)
    return float(np.trapezoid(deletion, fractions)), float(np.trapezoid(insertion, fractions))


@dataclass(frozen=True)
class Faithfulness:
    """How well one map ranks one image's pixels for one class, next to a random ranking.

    Areas are in units of probability (0 to 1): the mean probability along the curve.
    """

    target: int
    fractions: tuple[float, ...]  # share of pixels deleted (inserted) at each point, 0 to 1
    deletion_curve: tuple[float, ...]  # target probability, pixels deleted in the map's order
    insertion_curve: tuple[float, ...]  # target probability, pixels added to the mean image in the map's order
    random_deletion_curve: tuple[float, ...]
    random_insertion_curve: tuple[float, ...]
    deletion: float  # area under deletion_curve: lower is more faithful
    insertion: float  # area under insertion_curve: higher is more faithful
    random_deletion: float
    random_insertion: float

    @property
    def faithfulness(self) -> float:
        """Insertion area − deletion area: higher is more faithful."""
        return self.insertion - self.deletion

    @property
    def random_faithfulness(self) -> float:
        """The same for the random order: about 0."""
        return self.random_insertion - self.random_deletion


def faithfulness(
    model: nn.Module,
    x: torch.Tensor,
    attribution: np.ndarray,
    target: int,
    seed: int | np.random.Generator = 0,
    steps: int = STEPS,
) -> Faithfulness:
    """Deletion and insertion of one image's pixels in the order of `attribution` (H, W), and in a random order.

    seed: the random order's seed, or a numpy Generator to draw it from (one permutation is taken).
    """
    a = np.asarray(attribution)
    image = _image(model, x)
    if a.shape != tuple(image.shape[-2:]):
        raise HQCNNError(f"The map is {a.shape} but the image is {tuple(image.shape[-2:])}: they must match.")
    rng = np.random.default_rng(seed)  # a Generator passed in is used as it is
    fractions, deletion, insertion = curves(model, image, map_order(a), target, steps)
    _, random_deletion, random_insertion = curves(model, image, rng.permutation(a.size), target, steps)

    def area(curve: np.ndarray) -> float:
        return float(np.trapezoid(curve, fractions))

    return Faithfulness(
        target=int(target),
        fractions=tuple(fractions.tolist()),
        deletion_curve=tuple(deletion.tolist()),
        insertion_curve=tuple(insertion.tolist()),
        random_deletion_curve=tuple(random_deletion.tolist()),
        random_insertion_curve=tuple(random_insertion.tolist()),
        deletion=area(deletion),
        insertion=area(insertion),
        random_deletion=area(random_deletion),
        random_insertion=area(random_insertion),
    )


def randomised_middle(model: nn.Module, seed: int) -> nn.Module:
    """A copy of `model` whose middle layer alone is random, in evaluation mode; `model` is left as it is.

    The hybrid's circuit angles become uniform in [0, 2π); the twin layer gets a fresh default
    initialisation. The same seed gives the same copy, and torch's global random state is kept.
    """
    import torch

    kind = getattr(getattr(model, "cfg", None), "kind", None)
    if kind not in ("hybrid", "classical"):
        raise HQCNNError("This model has no quantum (or twin) layer, so there is no middle layer to re-randomise.")
    other = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if kind == "hybrid":
            other.middle.weights.copy_(torch.rand(other.middle.weights.shape, generator=generator) * 2 * math.pi)
        else:
            cuda = sorted({p.device.index or 0 for p in other.middle.parameters() if p.device.type == "cuda"})
            with torch.random.fork_rng(devices=cuda):
                torch.manual_seed(seed)
                for layer in other.middle.modules():
                    if hasattr(layer, "reset_parameters"):
                        layer.reset_parameters()
    return other.eval()


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ between two maps' pixels; nan when either is constant (a map of nothing has no ranking)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise HQCNNError(f"Two maps of {a.size} and {b.size} pixels cannot be compared.")
    with warnings.catch_warnings():  # scipy warns about a constant input, and returns nan
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)
