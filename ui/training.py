"""Training in a background thread, so that reruns (widget clicks, page switches) never stop it.

A `TrainingJob` lives in the session's st.session_state: one per session, never shared. The
worker thread calls no Streamlit function; it only records progress under a lock, and the page
reads a snapshot of it from the script thread (a fragment that reruns every half second).

Many sessions share one server: at most `MAX_CONCURRENT` trainings run at once (one per core, each
on one torch thread) and the others wait for a slot, so that a classroom's sessions share the CPU
instead of oversubscribing it (see benchmarks/bench_concurrency.py for the measured effect).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from hqcnn.config import RunConfig
from hqcnn.errors import HQCNNError
from hqcnn.train import Callback, RunOutcome, averaging_start, run

log = logging.getLogger(__name__)

MAX_CONCURRENT = max(1, os.cpu_count() or 1)
# One intra-op thread per training: the server's parallelism comes from one training per core.
torch.set_num_threads(1)
_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT)
SLOT_POLL_S = 0.2  # how often a waiting job checks its stop flag

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


class _Recorder(Callback):
    def __init__(self, job: TrainingJob, name: str) -> None:
        self.job, self.name = job, name

    def on_train_start(self, total_steps: int, steps_per_epoch: int) -> None:
        first_averaged = averaging_start(self.job.config.train)
        with self.job.lock:
            p = self.job.progress[self.name]
            p.total_steps = total_steps
            if first_averaged is not None:
                p.averaged_from_step = (first_averaged - 1) * steps_per_epoch

    def on_batch_end(self, step: int, loss: float, accuracy: float) -> None:
        with self.job.lock:
            p = self.job.progress[self.name]
            p.steps.append(step)
            p.losses.append(loss)
            p.accuracies.append(accuracy)

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        with self.job.lock:
            p = self.job.progress[self.name]
            p.epochs.append({**metrics, "step": p.steps[-1] if p.steps else 0})


class TrainingJob:
    """One training run (the hybrid model, then optionally its classical twin) on a worker thread."""

    def __init__(self, config: RunConfig, data: Any, with_twin: bool) -> None:
        self.config = config
        self.data = data
        self.names = [HYBRID, TWIN] if with_twin else [HYBRID]
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.progress = {name: Progress() for name in self.names}
        self.outcomes: dict[str, RunOutcome] = {}
        self.error: str | None = None
        self.waiting = True  # until a training slot is free
        self.started_at = time.time()
        self.finished_at: float | None = None
        self._thread = threading.Thread(target=self._work, name="hqcnn-training", daemon=True)

    def start(self) -> TrainingJob:
        """Begin training; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the loop to stop after the current batch; a usable model is kept (see hqcnn.train)."""
        self.stop_event.set()

    @property
    def running(self) -> bool:
        """True while the worker thread is alive."""
        return self._thread.is_alive()

    def snapshot(self) -> dict[str, Progress]:
        """A consistent copy of the progress for drawing."""
        with self.lock:
            return copy.deepcopy(self.progress)

    def _config_for(self, name: str) -> RunConfig:
        if name == HYBRID:
            return self.config
        return replace(self.config, model=replace(self.config.model, kind="classical"))

    def _acquire_slot(self) -> bool:
        """Wait for a free training slot; False if the user pressed Stop meanwhile."""
        while not _SLOTS.acquire(timeout=SLOT_POLL_S):
            if self.stop_event.is_set():
                return False
        self.waiting = False
        return True

    def _work(self) -> None:
        if not self._acquire_slot():
            self.finished_at = time.time()
            return
        try:
            for name in self.names:
                if self.stop_event.is_set():
                    break
                outcome = run(self._config_for(name), self.data, _Recorder(self, name), self.stop_event)
                with self.lock:
                    self.outcomes[name] = outcome
        except HQCNNError as err:
            self.error = str(err)
        except Exception as err:  # the page must show a message, never a traceback
            log.exception("training failed")
            self.error = f"Training failed unexpectedly ({type(err).__name__}). The details are in the server log."
        finally:
            _SLOTS.release()
            self.finished_at = time.time()


@dataclass
class TrainedModel:
    """A model the session can explore: trained here or uploaded."""

    model: Any  # HybridNet, in eval mode
    config: RunConfig
    meta: Any  # checkpoint.ModelMeta
    metrics: dict[str, Any]  # as in metrics.json: "test", "params", "seconds_per_epoch", ...
    source: str  # "trained" or "uploaded"

    @classmethod
    def from_outcome(cls, outcome: RunOutcome) -> TrainedModel:
        """Wrap a finished run."""
        from hqcnn.checkpoint import ModelMeta

        return cls(
            outcome.result.model, outcome.config, ModelMeta.from_data(outcome.data), outcome.metrics_json(), "trained"
        )

    @classmethod
    def from_checkpoint(cls, saved: Any) -> TrainedModel:
        """Wrap a loaded checkpoint."""
        return cls(saved.model, saved.config, saved.meta, saved.metrics, "uploaded")

    def zip_bytes(self) -> bytes:
        """The checkpoint as a zip (safetensors + JSON)."""
        from hqcnn.checkpoint import to_zip

        return to_zip(self.model, self.config, self.meta, self.metrics)
