"""Training jobs of the app: the hybrid model (and optionally its classical twin) in a worker process.

A `TrainingJob` lives in the session's st.session_state: one per session, never shared. It runs
in a worker process with the server's other jobs (ui/jobs.py: slots, queue, session ownership);
the worker's progress events are recorded here under a lock, and the page draws a snapshot of
them from the script thread (a fragment that reruns every second).
"""

from __future__ import annotations

import copy
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from hqcnn import determinism
from hqcnn.config import RunConfig
from hqcnn.train import averaging_start
from ui.jobs import Job, Owner

if TYPE_CHECKING:
    from hqcnn.train import RunOutcome

# The server process itself only renders pages and explains single images: one torch thread each,
# so that page scripts never oversubscribe the cores the training workers use; and the kernels of
# the determinism contract, so that a model explained here computes as it did in its worker.
determinism.apply_torch(threads=1)

HYBRID, TWIN = "hybrid", "classical twin"


@dataclass
class Progress:
    """Live record of one model's training, as the charts need it."""

    total_steps: int = 0
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    averaged_from_step: int | None = None  # weights from this step on are averaged into the kept model
    started_s: float | None = None  # time.monotonic() at the first batch's start
    last_batch_s: float | None = None  # time.monotonic() when the latest batch ended


class TrainingJob(Job):
    """One training run (the hybrid model, then optionally its classical twin) in a worker process."""

    task = "train"
    what = "training"

    def __init__(self, config: RunConfig, with_twin: bool, owner: Owner | None = None) -> None:
        self.config = config
        self.names = [HYBRID, TWIN] if with_twin else [HYBRID]
        runs = [(name, self._config_for(name).to_dict()) for name in self.names]
        super().__init__(owner, (runs,))
        self.progress = {name: Progress() for name in self.names}
        self.models: dict[str, TrainedModel] = {}

    def snapshot(self) -> dict[str, Progress]:
        """A consistent copy of the progress for drawing."""
        with self.lock:
            return copy.deepcopy(self.progress)

    def latest(self) -> dict[str, tuple[int, int, dict[str, Any] | None]]:
        """Per model: (steps done, total steps, last epoch's metrics or None); cheap, for progress bars."""
        with self.lock:
            return {
                name: (p.steps[-1] if p.steps else 0, p.total_steps, p.epochs[-1] if p.epochs else None)
                for name, p in self.progress.items()
            }

    def seconds_left(self) -> float | None:
        """Seconds until the job ends, from the pace of the steps so far; None before the first batch.

        A model that has not started yet (the twin) trains on the same batches as the one before,
        and is expected to take as long.
        """
        with self.lock:
            left, pace, steps = 0.0, None, 0
            for p in self.progress.values():
                if p.steps and p.started_s is not None and p.last_batch_s is not None:
                    pace, steps = (p.last_batch_s - p.started_s) / p.steps[-1], p.total_steps
                    left += (p.total_steps - p.steps[-1]) * pace
                elif pace is not None:
                    left += steps * pace
            return left if pace is not None else None

    def _config_for(self, name: str) -> RunConfig:
        if name == HYBRID:
            return self.config
        return replace(self.config, model=replace(self.config.model, kind="classical"))

    def on_event(self, event: tuple) -> None:
        """Record the worker's progress; load each finished model with the strict checkpoint loader."""
        kind, name, *rest = event
        if kind == "model":
            from hqcnn.checkpoint import from_zip

            trained = TrainedModel.from_checkpoint(from_zip(rest[0]), source="trained")
            with self.lock:
                self.models[name] = trained
            return
        with self.lock:
            p = self.progress[name]
            if kind == "train_start":
                total_steps, steps_per_epoch = rest
                p.total_steps = total_steps
                p.started_s = time.monotonic()
                first_averaged = averaging_start(self.config.train)
                if first_averaged is not None:
                    p.averaged_from_step = (first_averaged - 1) * steps_per_epoch
            elif kind == "batch":
                step, loss, accuracy = rest
                p.steps.append(step)
                p.losses.append(loss)
                p.accuracies.append(accuracy)
                p.last_batch_s = time.monotonic()
            elif kind == "epoch":
                _, metrics = rest
                p.epochs.append({**metrics, "step": p.steps[-1] if p.steps else 0})


@dataclass
class TrainedModel:
    """A model the session can explore: trained here or uploaded."""

    model: Any  # HybridNet, in eval mode
    config: RunConfig
    meta: Any  # hqcnn.datasets_base.ModelMeta
    metrics: dict[str, Any]  # as in metrics.json: "test", "params", "seconds_per_epoch", ...
    source: str  # "trained" or "uploaded"
    posthoc: Any = None  # hqcnn.posthoc.PostHoc: temperature, decision threshold, out-of-distribution detector
    # A name for this model that is never reused (unlike id(), which Python recycles once an object
    # is freed): per-model caches, such as the Explain page's, are keyed by it.
    key: str = field(default_factory=lambda: secrets.token_hex(8), compare=False)

    def __post_init__(self) -> None:
        if self.posthoc is None:  # a model without one reads its answers as trained (T = 1, 0.5, no check)
            from hqcnn.posthoc import PostHoc

            self.posthoc = PostHoc.neutral(self.meta.dataset, self.meta.n_classes)

    @classmethod
    def from_outcome(cls, outcome: RunOutcome) -> TrainedModel:
        """Wrap a finished run."""
        from hqcnn.datasets_base import ModelMeta

        return cls(
            outcome.result.model,
            outcome.config,
            ModelMeta.from_data(outcome.data),
            outcome.metrics_json(),
            "trained",
            outcome.posthoc,
        )

    @classmethod
    def from_checkpoint(cls, saved: Any, source: str = "uploaded") -> TrainedModel:
        """Wrap a loaded checkpoint."""
        return cls(saved.model, saved.config, saved.meta, saved.metrics, source, saved.posthoc)

    def zip_bytes(self, card: str | None = None) -> bytes:
        """The checkpoint as a zip (safetensors + JSON), with its model card when given."""
        from hqcnn.checkpoint import to_zip
        from hqcnn.model_card import FILE_NAME

        extra = {FILE_NAME: card.encode()} if card else None
        return to_zip(self.model, self.config, self.meta, self.metrics, self.posthoc, extra)
