"""The training loop: Adam, optional cosine schedule and augmentation, and the model it returns.

The returned model is either the epoch with the best validation AUC (as the MedMNIST benchmark
chooses), or, with `TrainConfig.average_last`, the average of the weights of the last epochs
(stochastic weight averaging, Izmailov et al. 2018). On the small sets the average is steadier
than any one epoch picked on a tiny validation split. BreastMNIST (546 training images, 78 for
validation), seeds 10–17, test ACC/AUC: best epoch at lr 3e-3 0.801/0.837; second half averaged
at lr 1e-2 (the recipe) 0.842/0.867. RetinaMNIST: 0.501/0.699 → 0.517/0.727. Measured with
`python benchmarks/recipe.py --datasets breastmnist retinamnist --first-seed 10 --seeds 8`
(add `--set average_last=0 --set lr=0.003` for the first figures).

Progress leaves the loop only through callbacks, so the CLI (tqdm) and the app (st.progress)
share it. A `threading.Event` stops it cleanly between batches; a usable model is always kept.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, update_bn

from hqcnn import determinism
from hqcnn.config import RunConfig, TrainConfig
from hqcnn.metrics import classification_metrics
from hqcnn.model import HybridNet, ParamCounts, build_model, parameter_counts


class Callback:
    """Receives progress from `train_model`; override what you need. Called on the training thread."""

    def on_train_start(self, total_steps: int, steps_per_epoch: int) -> None:
        """Before the first batch."""

    def on_batch_end(self, step: int, loss: float, accuracy: float) -> None:
        """After every optimiser step: global step (from 1), batch loss, batch accuracy."""

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        """After each epoch's validation: see `TrainResult.history` for the keys."""


@dataclass
class TrainResult:
    """What a training run produced. `model` holds the kept weights: an average or the best epoch."""

    model: HybridNet
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0  # the epoch with the best validation AUC
    averaged_epochs: tuple[int, int] | None = None  # first and last epoch averaged into `model`, if any
    val: dict[str, Any] = field(default_factory=dict)  # validation metrics of the kept model
    stopped: bool = False  # the stop flag ended training early
    stop_reason: str | None = None  # a message for the user when training ended early
    seconds_per_epoch: float = 0.0  # mean wall time of the training part of an epoch

    @property
    def best(self) -> dict[str, Any]:
        """The history row of the best epoch."""
        return next((row for row in self.history if row["epoch"] == self.best_epoch), {})

    @property
    def kept(self) -> str:
        """Which weights `model` holds, in words."""
        if self.averaged_epochs:
            first, last = self.averaged_epochs
            return (
                f"the average of epochs {first}–{last}" if first != last else f"epoch {last}, the only epoch averaged"
            )
        if not self.full_epochs:
            return "the weights reached when it stopped, before any epoch had finished"
        if self.best.get("partial"):
            return f"epoch {self.best_epoch} as far as it got before the stop, the best on validation AUC"
        return f"epoch {self.best_epoch}, the best on validation AUC"

    @property
    def full_epochs(self) -> int:
        """Epochs that went over every training image (a stop cuts the last one short)."""
        return sum(1 for row in self.history if not row["partial"])


def pick_device(name: str) -> torch.device:
    """ "auto" takes CUDA when present; "cuda" without a GPU falls back to the CPU."""
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed torch and numpy so that a config and seed give identical results on the CPU."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Small random shifts (±2 px at 28), rotations (±10°) and zooms (±10%), done per sample.

    One batched affine warp; no flips, since left and right matter in chest and retina images.
    """
    b = x.shape[0]
    rand = torch.rand(b, 4, generator=generator, device="cpu").to(x.device) * 2 - 1  # (B, 4) in [-1, 1)
    angle = rand[:, 0] * math.radians(10)
    scale = 1 + rand[:, 1] * 0.1
    shift = rand[:, 2:] * (4 / 28)  # normalised coordinates span 2, so 4/28 is 2 px at 28×28
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


@torch.no_grad()
def predict_proba(model: HybridNet, x: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Class probabilities (N, n_classes) in evaluation mode."""
    model.eval()
    device = next(model.parameters()).device
    chunks = [torch.softmax(model(x[i : i + batch_size].to(device)), 1).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(chunks).double().numpy()


def evaluate(model: HybridNet, x: torch.Tensor, y: torch.Tensor, positive: int | None = 1) -> dict[str, Any]:
    """All classification metrics of `model` on (x, y); `positive`: a binary task's screened-for class."""
    return classification_metrics(y.numpy(), predict_proba(model, x), positive)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each batch of an epoch of `n` images.

    A last batch of a single image joins the one before: batch norm cannot normalise one value.
    """
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def averaging_start(cfg: TrainConfig) -> int | None:
    """The first epoch whose weights enter the average, or None when `cfg` keeps the best epoch."""
    if cfg.average_last <= 0:
        return None
    return cfg.epochs - max(1, round(cfg.epochs * cfg.average_last)) + 1


def _class_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    counts = torch.bincount(y, minlength=n_classes).float().clamp(min=1)
    return counts.sum() / (n_classes * counts)


def train_model(
    model: HybridNet,
    data: Any,
    cfg: TrainConfig,
    callback: Callback | None = None,
    stop: threading.Event | None = None,
) -> TrainResult:
    """Train `model` on `data` (a PreparedData) and return it with the kept weights loaded.

    Kept: the average of the last epochs when `cfg.average_last` > 0 (if training stopped before
    the averaging began, the best epoch instead); otherwise the epoch with the highest validation
    ROC-AUC (accuracy breaks ties and stands in when AUC is undefined), as the MedMNIST benchmark
    chooses models.
    """
    callback = callback or Callback()
    stop = stop or threading.Event()
    device = pick_device(cfg.device)
    determinism.apply_torch(cfg.threads)  # threads are process-wide: only the main thread changes them
    model.to(device)
    generator = torch.Generator().manual_seed(cfg.seed)
    x_train, y_train = data.x_train, data.y_train
    n = len(x_train)
    bounds = batch_bounds(n, cfg.batch_size)
    steps_per_epoch = len(bounds)
    total_steps = steps_per_epoch * cfg.epochs
    average_from = averaging_start(cfg)
    averaged: AveragedModel | None = None  # created at the first averaged epoch
    averaged_epochs: list[int] = []

    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps) if cfg.schedule == "cosine" else None
    )
    weight = _class_weights(y_train, data.n_classes).to(device) if cfg.class_weights else None

    result = TrainResult(model=model)
    best_score: tuple[float, float] = (-math.inf, -math.inf)
    best_state = copy.deepcopy(model.state_dict())
    train_seconds: list[float] = []
    callback.on_train_start(total_steps, steps_per_epoch)
    step = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(n, generator=generator)
        loss_sum, correct, seen = 0.0, 0, 0
        for start, end in bounds:
            if stop.is_set():
                break
            idx = order[start:end]
            xb, yb = x_train[idx].to(device), y_train[idx].to(device)
            if cfg.augment:
                xb = augment(xb, generator)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, weight=weight)
            if not torch.isfinite(loss):
                result.stop_reason = (
                    f"Training stopped at epoch {epoch}: the loss became {loss.item()} (not a number). "
                    "Try a smaller learning rate. The best model so far was kept."
                )
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler:
                scheduler.step()
            step += 1
            batch_correct = int((logits.argmax(1) == yb).sum())
            loss_sum += loss.item() * len(idx)
            correct += batch_correct
            seen += len(idx)
            callback.on_batch_end(step, loss.item(), batch_correct / len(idx))
        train_seconds.append(time.perf_counter() - started)
        if result.stop_reason:
            break
        if seen == 0:  # stopped before this epoch trained anything
            break

        val = evaluate(model, data.x_val, data.y_val, data.info.positive)
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / seen,
            "train_accuracy": correct / seen,
            "val_accuracy": val["accuracy"],
            "val_auc": val["auc"],
            "seconds": train_seconds[-1],
            "partial": seen < n,  # the stop flag cut this epoch short
        }
        result.history.append(row)
        score = (val["auc"] if val["auc"] is not None else -1.0, val["accuracy"])
        if score > best_score:
            best_score, result.best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
        if average_from is not None and epoch >= average_from and not row["partial"]:
            averaged = averaged or AveragedModel(model)
            averaged.update_parameters(model)
            averaged_epochs.append(epoch)
        callback.on_epoch_end(epoch, row)
        if stop.is_set():
            break

    result.stopped = stop.is_set()
    failed = result.stop_reason is not None  # a non-finite loss: keep the best epoch, whatever the config
    if averaged is not None and not failed:
        model.load_state_dict(averaged.module.state_dict())
        # Averaged weights never ran during training, so batch norm needs statistics that match
        # them: one pass over the training images, without augmentation.
        update_bn((x_train[a:b] for a, b in bounds), model, device)
        result.averaged_epochs = (averaged_epochs[0], averaged_epochs[-1])
        val = evaluate(model, data.x_val, data.y_val, data.info.positive)
        result.val = {"accuracy": val["accuracy"], "auc": val["auc"]}
    else:
        model.load_state_dict(best_state)
        if result.history:  # the best epoch was validated already
            result.val = {"accuracy": result.best["val_accuracy"], "auc": result.best["val_auc"]}
    if result.stopped and not failed:
        result.stop_reason = f"Stopped by the user after {step} of {total_steps} steps; kept {result.kept}."
        if not result.full_epochs:
            result.stop_reason += (
                " No epoch was completed and validated, so this model has hardly trained: "
                "expect it to be no better than guessing."
            )
    model.eval()
    full_epochs = [s for s, row in zip(train_seconds, result.history, strict=False) if not row["partial"]]
    result.seconds_per_epoch = float(np.mean(full_epochs or train_seconds or [0.0]))
    return result


@dataclass
class RunOutcome:
    """A whole run: the data it used, the trained model, and its test metrics."""

    config: RunConfig
    data: Any  # PreparedData
    result: TrainResult
    test: dict[str, Any]
    params: ParamCounts
    seconds: float  # wall time of training, validation included
    posthoc: Any = None  # hqcnn.posthoc.PostHoc fitted after training, when asked for
    calibration: dict[str, Any] | None = None  # hqcnn.calibration.report of the test split
    test_ci: dict[str, Any] | None = None  # 95% bootstrap intervals of test accuracy and AUC
    compute: dict[str, Any] = field(default_factory=dict)  # hqcnn.determinism.record() of the training

    def metrics_json(self) -> dict[str, Any]:
        """What `metrics.json` holds."""
        extra = {"calibration": self.calibration, "test_ci": self.test_ci} if self.posthoc is not None else {}
        return {
            **extra,
            "test": self.test,
            "params": self.params.to_dict(),
            "seconds": self.seconds,
            "seconds_per_epoch": self.result.seconds_per_epoch,
            "best_epoch": self.result.best_epoch,
            "averaged_epochs": list(self.result.averaged_epochs) if self.result.averaged_epochs else None,
            "kept": self.result.kept,
            "val": self.result.val,
            "history": self.result.history,
            "stopped": self.result.stopped,
            "stop_reason": self.result.stop_reason,
            "compute": self.compute,
        }


def run(
    config: RunConfig,
    data: Any | None = None,
    callback: Callback | None = None,
    stop: threading.Event | None = None,
    backend: str = "auto",
    posthoc: bool = False,
) -> RunOutcome:
    """Prepare the data (unless given), build the model, train it, and test the kept weights.

    With `posthoc`, also fit what reads its answers (hqcnn.posthoc: temperature, threshold,
    out-of-distribution detector) and measure the test split's calibration and intervals; the
    app and the CLI ask for it, the experiments (which measure these themselves) do not.
    """
    from hqcnn.data import prepare

    data = data if data is not None else prepare(config.data)
    seed_everything(config.train.seed)
    model = build_model(config.model, data.in_channels, data.n_classes, backend=backend)
    started = time.perf_counter()
    result = train_model(model, data, config.train, callback, stop)
    seconds = time.perf_counter() - started
    test = evaluate(result.model, data.x_test, data.y_test, data.info.positive)
    outcome = RunOutcome(config, data, result, test, parameter_counts(result.model), seconds)
    outcome.compute = determinism.record()
    if posthoc and len(data.y_test):
        from hqcnn import calibration
        from hqcnn import posthoc as fitting
        from hqcnn.metrics import test_intervals

        outcome.posthoc = fitting.fit(result.model, data)
        test_logits = calibration.logits(result.model, data.x_test)
        labels = data.y_test.numpy().reshape(-1)
        outcome.calibration = calibration.report(test_logits, labels, outcome.posthoc.temperature, config.train.seed)
        outcome.test_ci = test_intervals(labels, calibration.softmax(test_logits), config.train.seed)
    return outcome
