"""How far a model's probabilities can be taken at their word: calibration error, Brier score,
reliability bins, and temperature scaling.

A model is calibrated when, among the images it gives 80% confidence, 80% are right. The
expected calibration error (ECE) is torchmetrics' top-label ECE over equal-width confidence bins;
its confidence interval is a seeded bootstrap over test images (the test sets here are small).
Temperature scaling divides the logits by one number T fitted on the validation split; it never
changes which class is predicted, so accuracy and ROC-AUC stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

N_BINS = 10
BOOTSTRAP = 200  # resamples for the ECE's confidence interval


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> float:
    """Top-label expected calibration error (L1), equal-width bins (torchmetrics)."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    p = torch.as_tensor(probs, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    return float(multiclass_calibration_error(p, y, num_classes=p.shape[1], n_bins=n_bins, norm="l1"))


def ece_interval(probs: np.ndarray, labels: np.ndarray, seed: int, n_boot: int = BOOTSTRAP) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the ECE over test images (seeded)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels).reshape(-1)
    values = [ece(probs[i], labels[i]) for i in (rng.integers(0, len(labels), len(labels)) for _ in range(n_boot))]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Brier score: mean over images of Σ_k (p_k − [y = k])², from 0 (perfect) to 2."""
    onehot = np.eye(probs.shape[1])[np.asarray(labels).reshape(-1)]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class."""
    p = probs[np.arange(len(probs)), np.asarray(labels).reshape(-1)]
    return float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))


@dataclass(frozen=True)
class Reliability:
    """Per confidence bin (equal width): mean confidence, accuracy and number of images."""

    confidence: tuple[float | None, ...]
    accuracy: tuple[float | None, ...]
    count: tuple[int, ...]


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> Reliability:
    """The reliability diagram's bins (a bin holds confidences in (k/n, (k+1)/n], as torchmetrics)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels).reshape(-1)
    index = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    conf, acc, count = [], [], []
    for k in range(n_bins):
        members = index == k
        count.append(int(members.sum()))
        conf.append(float(confidence[members].mean()) if members.any() else None)
        acc.append(float(correct[members].mean()) if members.any() else None)
    return Reliability(tuple(conf), tuple(acc), tuple(count))


def logits(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The model's logits in evaluation mode (float64, on the CPU)."""
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        return torch.cat([model(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]).double()


def fit_temperature(val_logits: torch.Tensor, val_labels: torch.Tensor) -> float:
    """The temperature T > 0 that minimises the validation NLL of softmax(logits / T)."""
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)  # T = exp(log_t) stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")
    y = val_labels.reshape(-1).long()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(val_logits / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def softmax(z: torch.Tensor, temperature: float = 1.0) -> np.ndarray:
    return torch.softmax(z / temperature, dim=1).numpy()


def report(test_logits: torch.Tensor, labels: np.ndarray, temperature: float, seed: int = 0) -> dict:
    """JSON-ready calibration of the test split, as trained and after temperature scaling.

    Each of "as_trained" and "scaled": ECE with its bootstrap interval, Brier score, NLL and the
    reliability bins; "temperature" is the T used.
    """
    labels = np.asarray(labels).reshape(-1)
    out: dict = {"temperature": temperature}
    for name, t in (("as_trained", 1.0), ("scaled", temperature)):
        probs = softmax(test_logits, t)
        bins = reliability(probs, labels)
        low, high = ece_interval(probs, labels, seed)
        out[name] = {
            "ece": ece(probs, labels),
            "ece_ci": [low, high],
            "brier": brier(probs, labels),
            "nll": nll(probs, labels),
            "reliability": {"confidence": list(bins.confidence), "accuracy": list(bins.accuracy), "count": list(bins.count)},
        }
    return out
