"""`run_study`: one study from its configuration to an `ExperimentResult`, on either executor.

The study lists its tasks; the executor runs those not yet done; each finished task's rows are
recorded (in the run folder's tasks.jsonl when there is one, so that `resume=True` continues an
interrupted run) and the table is assembled in task order, so it is the same whichever executor
ran the tasks, in whatever order they finished.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hqcnn import determinism
from hqcnn.errors import ConfigError, HQCNNError
from hqcnn.experiments import executors
from hqcnn.experiments.presets import PRESETS, ExperimentConfig, Preset
from hqcnn.experiments.registry import Task, get_study
from hqcnn.experiments.results import ExperimentResult, _now, library_versions, reproduce_command, table_of
from hqcnn.experiments.tasks import Stopped, plain

Progress = Callable[[float, int, str], None]  # (tasks done, tasks in all, message)
LOG_NAME = "tasks.jsonl"


class RunLog:
    """A run folder's tasks.jsonl: a header line (what runs), then one line per finished task."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOG_NAME

    def open(self, header: dict[str, Any], resume: bool) -> dict[str, list[dict[str, Any]]]:
        """Start the log, or with `resume` read the rows of the tasks it has (key → rows)."""
        header = json.loads(json.dumps(plain(header)))
        if not self.path.exists():
            if resume and not self.folder.exists():
                raise HQCNNError(f"There is no run to resume in {self.folder}.")
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                self.path.write_text(json.dumps(header) + "\n", encoding="utf-8")
            except OSError as err:
                raise HQCNNError(f"Cannot write the run folder {self.folder}: {err.strerror or err}.") from err
            return {}
        if not resume:
            raise HQCNNError(f"{self.folder} already holds a run: resume it (--resume) or choose another folder.")
        lines = self.path.read_text(encoding="utf-8").splitlines()
        if not lines or _parse(lines[0]) != header:
            raise HQCNNError(
                f"The run in {self.folder} was started with other settings (study, dataset, model, preset, seeds, "
                "or the kernels and threads it computed with); resume it with the same settings, or start a new folder."
            )
        finished = {}
        for line in lines[1:]:
            record = _parse(line)  # a line cut short by an interruption is skipped: its task runs again
            if isinstance(record, dict) and isinstance(record.get("rows"), list):
                finished[str(record.get("key"))] = record["rows"]
        return finished

    def record(self, key: str, rows: list[dict[str, Any]]) -> None:
        """Append a finished task, on disk before the next one starts."""
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"key": key, "rows": rows}, allow_nan=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _parse(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Set torch's threads for a local run, on the main thread only (a worker thread must not)."""
    import torch

    if not threads or threading.current_thread() is not threading.main_thread():
        yield  # the process's owner set them (the command line, the app's worker process)
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _contract(config: ExperimentConfig, executor: str) -> dict[str, Any]:
    """The hqcnn.determinism record the run's trainings compute under: this process's kernels and the
    threads each training gets (a Ray worker: the config's, else 1; in-process: what `_torch_threads` sets)."""
    import torch

    determinism.apply_torch()
    if executor == "ray":
        threads = config.threads or 1
    elif config.threads and threading.current_thread() is threading.main_thread():
        threads = config.threads
    else:
        threads = torch.get_num_threads()
    return {**determinism.record(), "threads": threads}


def finished_run(folder: str | Path, name: str, config: ExperimentConfig, preset: Preset) -> ExperimentResult | None:
    """The result saved in `folder` if it is a finished run of exactly this study, configuration and
    preset (a set resumed with --resume keeps it as it is); None otherwise."""
    if not (Path(folder) / "results.json").is_file():
        return None
    try:
        result = ExperimentResult.load(folder)
    except HQCNNError:
        return None  # damaged: run_study's own checks decide what happens to the folder
    same = (
        result.name == name
        and result.config == json.loads(json.dumps(plain(config.to_dict())))
        and result.preset == json.loads(json.dumps(plain(preset.to_dict())))
    )
    return result if same and not result.stopped else None


def resolve_preset(preset: Preset | str) -> Preset:
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise ConfigError(f"Unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}.")
    return PRESETS[preset]


def run_study(
    name: str,
    config: ExperimentConfig | None = None,
    preset: Preset | str = "quick",
    callback: Progress | None = None,
    stop: Any = None,
    *,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    folder: str | Path | None = None,
    resume: bool = False,
) -> ExperimentResult:
    """Run study `name`; its result (partial, with `stopped` True, if `stop` was set).

    `folder`: a run folder that records each finished task (`resume=True` continues it).
    """
    from hqcnn.data import get_info

    study, preset = get_study(name), resolve_preset(preset)
    executors.check_executor(executor)
    config = config or ExperimentConfig()
    get_info(config.dataset)  # a clear DataError for an unknown dataset, before anything runs
    tasks: list[Task] = study.tasks(config, preset)
    keys = [t.key for t in tasks]
    assert len(set(keys)) == len(keys), f"{name}: two tasks share a key"
    callback = callback or (lambda done, total, message: None)
    log = RunLog(folder) if folder is not None else None
    compute = _contract(config, executor)
    # The kernels and threads are part of what a resumed run must share: tasks computed under others
    # would not re-run to the same rows.
    header = {
        "format": "hqcnn-run",
        "study": name,
        "config": config.to_dict(),
        "preset": preset.to_dict(),
        "compute": {k: compute[k] for k in determinism.CONTRACT_FIELDS},
    }
    earlier = log.open(header, resume) if log else {}
    done = {i: earlier[t.key] for i, t in enumerate(tasks) if t.key in earlier}
    base = len(done)

    def on_done(index: int, rows: list[dict[str, Any]]) -> None:
        done[index] = rows
        if log:
            log.record(tasks[index].key, rows)

    def progress(n: float, message: str) -> None:
        callback(min(base + n, len(tasks)), len(tasks), f"{study.title}: {message}")

    todo = [(i, t) for i, t in enumerate(tasks) if i not in done]
    started_at, started = _now(), time.perf_counter()
    stopped = False
    try:
        if executor == "ray" and todo:
            executors.run_ray(
                todo, on_done, progress, stop, threads=config.threads or 1, workers=workers, address=address,
                device=config.device, contract=compute,
            )  # fmt: skip
        elif todo:
            with _torch_threads(config.threads):
                executors.run_local(todo, on_done, progress, stop)
    except Stopped:
        stopped = True
    result = ExperimentResult(
        name=name,
        config=config.to_dict(),
        preset=preset.to_dict(),
        seeds=study.seeds(config, preset),
        table=table_of([row for i in sorted(done) for row in done[i]]),
        started_at=started_at,
        finished_at=_now(),
        seconds=time.perf_counter() - started,
        stopped=stopped,
        versions=library_versions(),
        compute=compute,
        command=reproduce_command(name, config, preset),
        executor={"executor": executor, "workers": workers, "tasks": len(tasks), "resumed": base},
    )
    result.notes = study.notes(result) if len(result.table) else []
    if preset.step_budget:
        result.notes.append(
            f"{preset.name.capitalize()} preset: each model trained for at most about {preset.step_budget} optimiser "
            "steps (the recommended recipe uses about 600). A model that learns more slowly is disadvantaged, so "
            "treat these numbers as a demonstration; the full preset is the fair test."
        )
    if base:
        result.notes.append(f"Resumed: {base} of {len(tasks)} trainings were read from the earlier run.")
    if stopped:
        result.notes.append("Stopped by the user: only the trainings that finished are recorded.")
    callback(len(done), len(tasks), "stopped" if stopped else "done")
    if folder is not None:
        result.save(folder)
    return result
