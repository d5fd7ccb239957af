"""Experiment jobs of the app: one experiment in a worker process, with the training jobs' slots."""

from __future__ import annotations

from typing import Any

from ui.jobs import Job, Owner


class ExperimentJob(Job):
    """One study (hqcnn.experiments.run_study) in a worker process; see ui/jobs.py."""

    task = "experiment"
    what = "experiment"

    def __init__(self, name: str, config: Any, preset: Any, owner: Owner | None = None) -> None:
        super().__init__(owner, (name, config, preset))
        self.name = name
        self.progress: tuple[float, int, str] = (0.0, 1, "waiting for a free slot…")
        self.result: Any = None  # hqcnn.experiments.ExperimentResult, once finished

    def snapshot(self) -> tuple[float, int, str]:
        """(done, total, message) of the latest progress report."""
        with self.lock:
            return self.progress

    def on_event(self, event: tuple) -> None:
        """Record progress; read the finished result with the same parser as an uploaded results.json."""
        if event[0] == "progress":
            with self.lock:
                self.progress = tuple(event[1:])
        elif event[0] == "experiment":
            from hqcnn import experiments as ex

            self.result = ex.ExperimentResult.from_json_text(event[1], "the experiment's result")
