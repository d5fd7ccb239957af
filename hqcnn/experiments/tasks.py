"""The worker's side of a study: train one `Task`'s model and turn it into rows.

`run_task` is all an executor calls, in-process or in a Ray worker: it trains the task's model on
the prepared data it is handed (the executor prepares each DataConfig once and shares it), then
asks the study for the rows. Everything is fixed by the task's seed, so the rows do not depend on
where, in which order or next to what the task runs.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hqcnn.experiments.registry import Budget, Task, get_study
from hqcnn.experiments.table import METRICS, MODEL_NAMES

StepReport = Callable[[float], None]  # fraction of the task's optimiser steps done


class Stopped(Exception):
    """Raised when the stop flag cut a training short; the rows of finished tasks are kept."""


def train_config(n_train: int, seed: int, budget: Budget) -> Any:
    """The recommended recipe for `n_train` images, trimmed to the budget.

    threads stays None: the process running the task sets torch's threads once, on its main thread.
    """
    from hqcnn.recipes import recommended_train_config

    recipe = recommended_train_config(n_train, seed=seed, device=budget.device, threads=None)
    epochs = recipe.epochs
    if budget.step_budget:
        steps_per_epoch = math.ceil(n_train / recipe.batch_size)
        epochs = min(epochs, max(budget.min_epochs, math.ceil(budget.step_budget / steps_per_epoch)))
    if budget.max_epochs:
        epochs = min(epochs, budget.max_epochs)
    return replace(recipe, epochs=max(1, epochs))


def run_task(task: Task, data: Any, stop: Any = None, report: StepReport | None = None) -> list[dict[str, Any]]:
    """Train the task's model on `data` (its prepared DataConfig) and return the study's rows."""
    from hqcnn.config import RunConfig
    from hqcnn.train import Callback, run

    stop = stop if stop is not None else threading.Event()
    if stop.is_set():
        raise Stopped

    class _Steps(Callback):
        total = 1

        def on_train_start(self, total_steps: int, steps_per_epoch: int) -> None:
            self.total = max(total_steps, 1)

        def on_batch_end(self, step: int, loss: float, accuracy: float) -> None:
            if report is not None:
                report(step / self.total)

    config = RunConfig(data=data.config, model=task.model, train=train_config(len(data.y_train), task.seed, task.budget))
    outcome = run(config, data=data, callback=_Steps(), stop=stop)
    if outcome.result.stopped:
        raise Stopped
    rows = get_study(task.study).evaluate(task, outcome)
    return [plain(row) for row in rows]


def base_row(task: Task, outcome: Any, **extra: Any) -> dict[str, Any]:
    """The row of a trained model's test metrics, with the task's condition columns."""
    test = outcome.test
    return {
        "study": task.study,
        "dataset": task.data.dataset,
        "condition": task.columns.get("condition", ""),
        "model": MODEL_NAMES[task.model.kind],
        "seed": task.seed,
        **{k: v for k, v in task.columns.items() if k != "condition"},
        **extra,
        **{m: test.get(m) for m in METRICS},
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


def metrics_row(task: Task, outcome: Any, metrics: dict[str, Any], **columns: Any) -> dict[str, Any]:
    """A row for a trained model measured on other inputs than its test set (noise, a simulator)."""
    row = base_row(task, outcome, **columns)
    row |= {m: metrics.get(m) for m in METRICS}
    row |= {"n_test": metrics.get("n"), "majority_accuracy": metrics.get("majority_accuracy")}
    return row


def plain(value: Any) -> Any:
    """Plain Python values (numpy scalars become floats and ints; NaN becomes None)."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
