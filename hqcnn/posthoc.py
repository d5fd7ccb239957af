"""What is fitted after training, on data the training never saw, so that a model's answers can be
read as what they are: calibrated probabilities, a decision threshold, and a warning for images
unlike the training data.

- **Temperature** (Guo et al. 2017): one number T > 0 fitted on the validation split; the logits
  are divided by it before the softmax. It never changes the most probable class.
- **Decision threshold** (binary tasks): the calibrated probability of the positive class above
  which an image is called positive. 0.5 until the user moves it; the Youden-optimal point
  (max sensitivity + specificity − 1) on the validation split is kept beside it.
- **Out-of-distribution detector** (Lee et al. 2018): the Mahalanobis distance of the last
  convolution block's channel means (global average pooling of its feature maps) to the nearest
  class mean, with one shared covariance (Ledoit–Wolf shrinkage, scikit-learn), fitted on the
  training split. Its threshold is the validation split's (1 − rate) quantile, so about `rate` of
  images like the training data are flagged by mistake (the false-alarm rate). Measured on models
  trained on one bundled set and shown another's test images, these channel means flagged 100% of
  them, where the n_features projection the circuit encodes missed 80% of chest X-rays shown to a
  BreastMNIST model: the projection keeps what separates the classes, not what the images look like.

`PostHoc` round-trips through JSON (`to_dict` / `from_dict`); `from_dict` validates every field,
because a model file is untrusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from hqcnn.datasets_base import positive_class
from hqcnn.errors import CheckpointError

FALSE_ALARM_RATE = 0.05  # share of in-distribution validation images the warning may flag
DEFAULT_THRESHOLD = 0.5
# The decision thresholds a user can choose (the Train page's slider); a file may hold no other.
MIN_THRESHOLD, MAX_THRESHOLD = 0.01, 0.99
MAX_SCORE = 1e12  # an unusual-image threshold beyond it flags nothing a float can hold apart
MAX_FEATURES = 256  # the most channels ModelConfig.channels allows; a file claiming more is refused
MAX_CLASSES = 100


def channel_means(maps: torch.Tensor) -> np.ndarray:
    """(B, c2, h, w) feature maps → (B, c2) their spatial means (float64): what the detector measures."""
    return maps.mean(dim=(2, 3)).double().cpu().numpy()


@torch.no_grad()
def detector_features(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """(N, c2) the detector's features of images `x`, in evaluation mode."""
    model.eval()
    device = next(model.parameters()).device
    parts = [
        channel_means(model.backbone.feature_maps(x[i : i + batch_size].to(device)))
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, model.cfg.channels[1]))


@dataclass(frozen=True, eq=False)
class OODDetector:
    """Mahalanobis distance of backbone features to the nearest class mean, and its threshold."""

    class_means: np.ndarray  # (K, D)
    precision: np.ndarray  # (D, D), inverse of the shared (shrunk) covariance
    threshold: float  # a score above it is "unlike the training data"
    rate: float  # the intended false-alarm rate on in-distribution images
    val_rate: float  # the share of validation images above the threshold (≈ rate)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OODDetector) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # holds arrays

    def scores(self, features: np.ndarray) -> np.ndarray:
        """(N,) squared Mahalanobis distance of each feature row to its nearest class mean."""
        d = np.asarray(features, dtype=np.float64)[:, None, :] - self.class_means[None]  # (N, K, D)
        return np.einsum("nkd,de,nke->nk", d, self.precision, d).min(axis=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "class_means": self.class_means.tolist(),
            "precision": self.precision.tolist(),
            "threshold": self.threshold,
            "rate": self.rate,
            "val_rate": self.val_rate,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> OODDetector:
        """Validated: shapes consistent and bounded, every number finite."""
        if not isinstance(raw, dict) or set(raw) != {"class_means", "precision", "threshold", "rate", "val_rate"}:
            raise CheckpointError("config.json: the out-of-distribution detector is not in the expected form.")
        means = _matrix(raw["class_means"], "class means")
        precision = _matrix(raw["precision"], "precision matrix")
        k, d = means.shape
        if not (2 <= k <= MAX_CLASSES and 1 <= d <= MAX_FEATURES and precision.shape == (d, d)):
            raise CheckpointError("config.json: the out-of-distribution detector's sizes do not fit together.")
        return cls(
            means,
            precision,
            _number(raw["threshold"], "threshold", 0, MAX_SCORE),
            _number(raw["rate"], "rate", 0, 1),
            _number(raw["val_rate"], "val_rate", 0, 1),
        )


def fit_ood(
    train_features: np.ndarray, train_labels: np.ndarray, val_features: np.ndarray, rate: float = FALSE_ALARM_RATE
) -> OODDetector:
    """Class means and shrunk shared covariance from the training split; threshold from validation."""
    from sklearn.covariance import LedoitWolf

    y = np.asarray(train_labels).reshape(-1)
    classes = np.unique(y)
    n_classes = int(y.max()) + 1
    means = np.zeros((n_classes, train_features.shape[1]))
    for k in classes:
        means[k] = train_features[y == k].mean(axis=0)
    # A class absent from the training subset gets no mean: a far-away point no image is nearest to.
    means[np.setdiff1d(np.arange(n_classes), classes)] = 1e6
    precision = LedoitWolf().fit(train_features - means[y]).precision_
    detector = OODDetector(means, precision, math.inf, rate, 0.0)
    val_scores = detector.scores(val_features)
    threshold = float(np.quantile(val_scores, 1 - rate, method="higher")) if len(val_scores) else math.inf
    return replace(detector, threshold=threshold, val_rate=float(np.mean(val_scores > threshold)))


def youden_threshold(probs_positive: np.ndarray, is_positive: np.ndarray) -> float | None:
    """The threshold on P(positive) that maximises sensitivity + specificity − 1 (None: one class only)."""
    from sklearn.metrics import roc_curve

    is_positive = np.asarray(is_positive, dtype=bool)
    if is_positive.all() or not is_positive.any():
        return None
    fpr, tpr, thresholds = roc_curve(is_positive, probs_positive)
    best = int(np.argmax(tpr - fpr))
    return float(min(max(thresholds[best], 0.0), 1.0))  # roc_curve's first threshold is +inf


@dataclass(frozen=True)
class PostHoc:
    """Everything fitted after training that changes how an answer is read (see the module doc)."""

    temperature: float = 1.0
    positive: int | None = None  # binary tasks: the class screened for
    threshold: float | None = None  # binary tasks: called positive when P(positive) ≥ threshold
    youden: float | None = None  # the Youden-optimal threshold on the validation split
    ood: OODDetector | None = None

    @classmethod
    def neutral(cls, dataset: str, n_classes: int) -> PostHoc:
        """What a model saved without one gets: T = 1, the 0.5 threshold (binary), no detector."""
        positive = positive_class(dataset, n_classes)
        return cls(positive=positive, threshold=DEFAULT_THRESHOLD if positive is not None else None)

    def probabilities(self, logits: torch.Tensor) -> np.ndarray:
        """(N, K) calibrated class probabilities: softmax(logits / T)."""
        return torch.softmax(logits.double() / self.temperature, dim=-1).cpu().numpy()

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """(N,) the predicted class: P(positive) ≥ threshold for binary tasks, else the most probable."""
        probs = np.atleast_2d(probs)
        if self.positive is None or self.threshold is None:
            return probs.argmax(axis=1)
        other = 1 - self.positive
        return np.where(probs[:, self.positive] >= self.threshold, self.positive, other)

    def with_threshold(self, threshold: float) -> PostHoc:
        """The same, with another decision threshold (binary tasks only), kept to the range a file may hold."""
        if self.positive is None:
            raise ValueError("only binary tasks have a decision threshold")
        return replace(self, threshold=float(min(max(threshold, MIN_THRESHOLD), MAX_THRESHOLD)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "temperature": self.temperature,
            "positive": self.positive,
            "threshold": self.threshold,
            "youden": self.youden,
            "ood": self.ood.to_dict() if self.ood else None,
        }

    @classmethod
    def from_dict(cls, raw: Any, n_classes: int) -> PostHoc:
        """Validated against the model's class count; raises CheckpointError."""
        if not isinstance(raw, dict) or set(raw) != {"temperature", "positive", "threshold", "youden", "ood"}:
            raise CheckpointError("config.json: the calibration section is not in the expected form.")
        positive = raw["positive"]
        if n_classes == 2:
            if positive not in (0, 1) or isinstance(positive, bool):
                raise CheckpointError("config.json: a binary model's positive class must be 0 or 1.")
        elif positive is not None:
            raise CheckpointError("config.json: only a binary model has a positive class.")
        binary = positive is not None
        ood = OODDetector.from_dict(raw["ood"]) if raw["ood"] is not None else None
        if ood is not None and ood.class_means.shape[0] != n_classes:
            raise CheckpointError("config.json: the out-of-distribution detector has another number of classes.")
        return cls(
            temperature=_number(raw["temperature"], "temperature", 0.01, 100),
            positive=positive,
            threshold=_optional(raw["threshold"], "decision threshold", binary, MIN_THRESHOLD, MAX_THRESHOLD),
            youden=_optional(raw["youden"], "Youden threshold", binary),
            ood=ood,
        )


def fit(model: torch.nn.Module, data: Any, rate: float = FALSE_ALARM_RATE) -> PostHoc:
    """Temperature, threshold and detector of a trained `model` on its PreparedData `data`."""
    from hqcnn.calibration import fit_temperature, logits

    val_logits = logits(model, data.x_val)
    temperature = fit_temperature(val_logits, data.y_val) if len(data.y_val) else 1.0
    positive = positive_class(data.info.key, data.n_classes)
    youden = None
    if positive is not None:
        probs = torch.softmax(val_logits / temperature, dim=1).numpy()
        youden = youden_threshold(probs[:, positive], data.y_val.numpy().reshape(-1) == positive)
    ood = None
    if len(data.x_val) and len(data.x_train) > model.cfg.channels[1]:
        ood = fit_ood(
            detector_features(model, data.x_train), data.y_train.numpy(), detector_features(model, data.x_val), rate
        )
    return PostHoc(
        temperature=temperature,
        positive=positive,
        threshold=DEFAULT_THRESHOLD if positive is not None else None,
        youden=youden,
        ood=ood,
    )


def _number(value: Any, name: str, low: float, high: float) -> float:
    """A finite number from `low` to `high` (NaN fails the comparison; an infinite one the bound)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
        raise CheckpointError(f"config.json: the calibration's {name} must be a number from {low:g} to {high:g}.")
    return float(value)


def _optional(value: Any, name: str, allowed: bool, low: float = 0.0, high: float = 1.0) -> float | None:
    if value is None:
        return None
    if not allowed:
        raise CheckpointError(f"config.json: only a binary model has a {name}.")
    return _number(value, name, low, high)


def _matrix(raw: Any, name: str) -> np.ndarray:
    """A list of equal-length lists of finite numbers, at most MAX_CLASSES × MAX_FEATURES or so."""
    if (
        not isinstance(raw, list)
        or not 1 <= len(raw) <= max(MAX_CLASSES, MAX_FEATURES)
        or not all(isinstance(row, list) and 1 <= len(row) <= MAX_FEATURES for row in raw)
        or len({len(row) for row in raw}) != 1
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for row in raw for v in row)
    ):
        raise CheckpointError(f"config.json: the out-of-distribution detector's {name} is not a table of numbers.")
    out = np.asarray(raw, dtype=np.float64)
    if not np.isfinite(out).all():
        raise CheckpointError(
            f"config.json: the out-of-distribution detector's {name} holds values that are not numbers."
        )
    return out


@dataclass(frozen=True)
class Answer:
    """A model's answer for a batch of images, read through its PostHoc."""

    probabilities: np.ndarray  # (N, K) calibrated (softmax of logits / T)
    predicted: np.ndarray  # (N,) class called: by the threshold for binary tasks, else the most probable
    ood_score: np.ndarray | None  # (N,) Mahalanobis score; None without a detector
    unusual: np.ndarray | None  # (N,) bool: score above the detector's threshold


@torch.no_grad()
def answer(model: torch.nn.Module, posthoc: PostHoc, x: torch.Tensor) -> Answer:
    """Calibrated probabilities, the decision and the out-of-distribution score of images `x`."""
    model.eval()
    device = next(model.parameters()).device
    maps = model.backbone.feature_maps(x.to(device))
    logits = model.head(model.middle(model.backbone.project_maps(maps)))
    probs = posthoc.probabilities(logits)
    scores = posthoc.ood.scores(channel_means(maps)) if posthoc.ood else None
    return Answer(
        probabilities=probs,
        predicted=posthoc.decide(probs),
        ood_score=scores,
        unusual=scores > posthoc.ood.threshold if posthoc.ood else None,
    )
