"""What a background job does inside its worker process: train models, or run an experiment.

The app runs every long job in a separate operating-system process (see ui/jobs.py), so that a
training never competes with the page scripts for the server's interpreter lock, and runs it at a
lower scheduling priority, so that pages stay responsive while every core trains. This module is
the worker's side: plain library code, no Streamlit. It reports through `events`, the
sending end of a multiprocessing pipe, as plain tuples, and checks `stop` (a multiprocessing
Event) between batches, exactly like the in-process loop does with a threading.Event:

    ("train_start", name, total_steps, steps_per_epoch)
    ("batch", name, step, loss, accuracy)
    ("epoch", name, epoch, metrics)
    ("model", name, checkpoint zip bytes)          a finished model, loaded back by the app
    ("progress", done, total, message)             an experiment's progress
    ("experiment", results JSON text)              an experiment's result
    ("error", message for the user)
    ("done",)                                      always the last event

Models travel back as checkpoint archives (safetensors + JSON) and experiment results as their
JSON, so the app reads them with the same strict loaders as an upload.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Mapping
from typing import Any

from hqcnn.errors import HQCNNError

log = logging.getLogger(__name__)

NICE = 10  # added to the worker's niceness: the server's page scripts get the CPU first
# Modules a fork server imports once, so that each worker it forks starts in milliseconds.
# torch._dynamo is what the first Adam optimiser of a process imports (about 5 s here).
PRELOAD = (
    "torch",
    "torch._dynamo",
    "sklearn.metrics",
    "pennylane",
    "hqcnn.train",
    "hqcnn.checkpoint",
    "hqcnn.experiments",
    "hqcnn.decode_worker",  # an uploaded image is decoded in a worker too (hqcnn/decode_worker.py)
    "hqcnn.dicom",
)


class _Reporter:
    """The training callback of one model: forwards progress as events."""

    def __init__(self, events: Any, name: str) -> None:
        self.events, self.name = events, name

    def on_train_start(self, total_steps: int, steps_per_epoch: int) -> None:
        self.events.send(("train_start", self.name, total_steps, steps_per_epoch))

    def on_batch_end(self, step: int, loss: float, accuracy: float) -> None:
        self.events.send(("batch", self.name, step, loss, accuracy))

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None:
        self.events.send(("epoch", self.name, epoch, metrics))


def _settle(env: Mapping[str, str]) -> None:
    """Make this process a polite worker: the app's settings, low priority, one torch thread."""
    from hqcnn import determinism

    os.environ.update(env)  # e.g. HQCNN_DATA_DIR, as the app had it when the job was submitted
    try:
        os.nice(NICE)
    except OSError:  # not allowed on this system: run at the normal priority
        pass
    # One job per core (the server's parallelism comes from the slots), under the determinism
    # contract's kernels: a model trained here equals `python -m hqcnn train`'s for its config and seed.
    determinism.apply_torch(threads=1)
    _exit_with_parent()


def _exit_with_parent() -> None:
    """End this worker when the app server ends, even if it was killed without cleaning up."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(0)

    threading.Thread(target=watch, name="hqcnn-parent-watch", daemon=True).start()


def train_models(runs: list[tuple[str, dict[str, Any]]], events: Any, stop: Any) -> None:
    """Train each (name, RunConfig dict) in turn and send back each finished model."""
    from hqcnn import checkpoint
    from hqcnn.config import RunConfig
    from hqcnn.data import prepare
    from hqcnn.datasets_base import ModelMeta
    from hqcnn.train import run

    data = None
    for name, raw in runs:
        if stop.is_set():
            break
        config = RunConfig.from_dict(raw)
        data = data if data is not None and data.config == config.data else prepare(config.data)
        outcome = run(config, data, _Reporter(events, name), stop, posthoc=True)
        meta = ModelMeta.from_data(outcome.data)
        files = checkpoint.to_zip(outcome.result.model, config, meta, outcome.metrics_json(), outcome.posthoc)
        events.send(("model", name, files))


def run_experiment(name: str, config: Any, preset: Any, events: Any, stop: Any) -> None:
    """Run one study (its trainings one after another: the app's parallelism is its job slots)."""
    from hqcnn import experiments as ex

    def report(done: float, total: int, message: str) -> None:
        events.send(("progress", done, total, message))

    result = ex.run_study(name, config, preset, report, stop)
    events.send(("experiment", result.json_text()))


TASKS = {"train": train_models, "experiment": run_experiment}


def main(task: str, args: tuple, env: Mapping[str, str], events: Any, stop: Any) -> None:
    """A worker process's entry point: run `task`, turning every failure into an ("error", …) event."""
    failure = None
    try:
        _settle(env)
        TASKS[task](*args, events, stop)
    except HQCNNError as err:
        failure = str(err)
    except Exception as err:  # the page shows one plain line; the details go to the server's log
        log.exception("a background job failed")
        failure = f"The job failed unexpectedly ({type(err).__name__}). The details are in the server log."
    try:
        if failure is not None:
            events.send(("error", failure))
        events.send(("done",))
    except OSError:  # the app has gone: there is nobody left to tell
        pass
    events.close()
