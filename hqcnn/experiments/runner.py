"""The runner the studies share: training runs with progress, stop, and cached prepared data.

A study asks its `_Runner` for data and trained models and appends rows to it. The runner
reports progress, raises `Stopped` between (and, through `hqcnn.train.run`, inside) training
runs when the stop flag is set, and trims the recommended recipe to the preset's step budget.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hqcnn.config import ModelConfig
from hqcnn.experiments.presets import ExperimentConfig, Preset
from hqcnn.experiments.rows import HYBRID, METRICS, MODEL_NAMES, TWIN

Progress = Callable[[float, int, str], None]


class Stopped(Exception):
    """Raised inside an experiment when the stop flag is set; the rows so far are kept."""


class _Runner:
    def __init__(
        self,
        name: str,
        config: ExperimentConfig,
        preset: Preset,
        callback: Progress | None,
        stop: threading.Event | None,
    ) -> None:
        self.name = name
        self.config = config
        self.preset = preset
        self.callback = callback or (lambda done, total, message: None)
        self.stop = stop or threading.Event()
        self.total = 1
        self.done = 0.0
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self._data: dict[tuple, Any] = {}
        self._last_report = 0.0

    # progress -----------------------------------------------------------------------------
    def report(self, message: str, fraction: float = 0.0, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < 0.2:
            return
        self._last_report = now
        self.callback(min(self.done + fraction, self.total), self.total, message)

    def step(self, message: str) -> None:
        self.done += 1
        self.report(message)

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise Stopped

    # data ----------------------------------------------------------------------------------
    def data(self, train_per_class: int | None, seed: int) -> Any:
        """PreparedData; the low-data subset depends on the seed, the full set does not."""
        from hqcnn.config import DataConfig
        from hqcnn.data import prepare

        key = (train_per_class, seed if train_per_class else 0)
        if key not in self._data:
            self._data[key] = prepare(
                DataConfig(dataset=self.config.dataset, train_per_class=train_per_class, seed=key[1])
            )
        return self._data[key]

    # training ------------------------------------------------------------------------------
    def train_config(self, n_train: int, seed: int) -> Any:
        from hqcnn.recipes import recommended_train_config

        recipe = recommended_train_config(n_train, seed=seed, device=self.config.device, threads=self.config.threads)
        epochs = recipe.epochs
        if self.preset.step_budget:
            steps_per_epoch = math.ceil(n_train / recipe.batch_size)
            epochs = min(epochs, max(self.preset.min_epochs, math.ceil(self.preset.step_budget / steps_per_epoch)))
        if self.preset.max_epochs:
            epochs = min(epochs, self.preset.max_epochs)
        return replace(recipe, epochs=max(1, epochs))

    def train(self, model: ModelConfig, data: Any, seed: int, what: str) -> Any:
        """Train one model; the RunOutcome, or Stopped if the stop flag cut it short."""
        from hqcnn.config import RunConfig
        from hqcnn.train import Callback, run

        self.check_stop()
        runner = self
        message = f"{what} · seed {seed}"

        class _Forward(Callback):
            total_steps = 1

            def on_train_start(self, total_steps: int, steps_per_epoch: int) -> None:
                self.total_steps = max(total_steps, 1)
                runner.report(f"training {message}")

            def on_batch_end(self, step: int, loss: float, accuracy: float) -> None:
                runner.report(f"training {message}", fraction=step / self.total_steps, force=False)

        config = RunConfig(data=data.config, model=model, train=self.train_config(len(data.y_train), seed))
        outcome = run(config, data=data, callback=_Forward(), stop=self.stop)
        if outcome.result.stopped:
            raise Stopped
        self.step(f"trained {message}")
        return outcome

    def base_row(self, outcome: Any, condition: str, seed: int, **extra: Any) -> dict[str, Any]:
        test = outcome.test
        row: dict[str, Any] = {
            "experiment": self.name,
            "dataset": self.config.dataset,
            "model": MODEL_NAMES[outcome.config.model.kind],
            "condition": condition,
            "seed": seed,
            **extra,
        }
        row.update({m: test.get(m) for m in METRICS})
        row.update(
            {
                "majority_accuracy": test.get("majority_accuracy"),
                "n_test": test.get("n"),
                "n_train": len(outcome.data.y_train),
                "params": outcome.params.total,
                "quantum_params": outcome.params.quantum,
                "epochs": outcome.config.train.epochs,
                "best_epoch": outcome.result.best_epoch,
                "kept": outcome.result.kept,  # the best epoch or the averaged epochs that were tested
                "seconds": outcome.seconds,
                "seconds_per_epoch": outcome.result.seconds_per_epoch,
            }
        )
        return row

    def metrics_row(
        self, outcome: Any, metrics: dict[str, Any], condition: str, seed: int, **extra: Any
    ) -> dict[str, Any]:
        """A row for an evaluation of a trained model on other inputs (noise) than its test set."""
        row = self.base_row(outcome, condition, seed, **extra)
        row.update({m: metrics.get(m) for m in METRICS})
        row["n_test"] = metrics.get("n")
        row["majority_accuracy"] = metrics.get("majority_accuracy")
        return row


def twin_of(model: ModelConfig) -> ModelConfig:
    """The parameter-matched classical twin of a hybrid configuration."""
    return replace(model, kind="classical")


def _pair(model: ModelConfig) -> list[tuple[str, ModelConfig]]:
    return [(HYBRID, replace(model, kind="hybrid")), (TWIN, twin_of(model))]
