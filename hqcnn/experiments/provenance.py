"""How a results set was made: the provenance.json written beside its run folders.

`python -m hqcnn experiment all --datasets A B --out SET` writes one run folder per study and
dataset (SET/<study>-<preset>-<dataset>/) and SET/provenance.json: the code (git commit, and
whether the tree had uncommitted changes), the library versions, the machine, the executor, the
exact command, when it ran, the wall time of each run and of the whole set, and the studies that
were skipped, with the reason. The file is rewritten after every run with `complete: false`, so
that `--resume` carries the earlier sessions' times forward; the last run sets `complete: true`.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hqcnn import determinism
from hqcnn.errors import HQCNNError
from hqcnn.experiments.results import ROOT, _now, library_versions, safe_name

PROVENANCE_FILE = "provenance.json"
FORMAT = "hqcnn-results-set"
FORMAT_VERSION = 1
UNKNOWN = "unknown"


def git_state(root: str | Path = ROOT) -> dict[str, Any]:
    """The commit checked out in `root` and whether tracked files differ from it; "unknown" when
    `root` is no git checkout or git is missing (a set computed from a copy of the code still records)."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": UNKNOWN, "dirty": UNKNOWN}
        # --no-optional-locks: read the state without refreshing the index (a write); untracked
        # files are left out, since the set being written is one of them.
        changes = git("--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"commit": UNKNOWN, "dirty": UNKNOWN}
    dirty: bool | str = bool(changes.stdout.strip()) if changes.returncode == 0 else UNKNOWN
    return {"commit": head.stdout.strip(), "dirty": dirty}


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, OSError, ValueError):  # no sysconf (Windows) or no such name
        return None


def _processor() -> str:
    """The CPU's model name where the system says it (Linux), else platform's guess (may be empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine() -> dict[str, Any]:
    """What computed the set: operating system, processor, CPU count, memory, Python."""
    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "processor": _processor(),
        "cpus": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
    }


def read_provenance(folder: str | Path) -> dict[str, Any]:
    """The provenance.json of the set in `folder`, checked for its shape (HQCNNError naming the file)."""
    path = Path(folder) / PROVENANCE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise HQCNNError(
            f"{path} is missing: {folder} is not a finished results set (an interrupted one continues with --resume)."
        ) from err
    except OSError as err:
        raise HQCNNError(f"Cannot read {path}: {err.strerror or err}.") from err
    try:
        values = json.loads(text)
    except ValueError as err:
        raise HQCNNError(f"{path} is not valid JSON ({err}).") from err
    if not isinstance(values, dict) or values.get("format") != FORMAT:
        raise HQCNNError(f"{path} is not the provenance of an HQCNN results set.")
    if values.get("version") != FORMAT_VERSION:
        raise HQCNNError(
            f"{path} has format version {values.get('version')!r}; this app reads version {FORMAT_VERSION}."
        )
    runs = values.get("runs")
    if not isinstance(runs, list) or not all(
        isinstance(r, dict) and all(isinstance(r.get(k), str) for k in ("study", "dataset", "folder")) for r in runs
    ):
        raise HQCNNError(f"{path} has no list of runs (study, dataset, folder).")
    if not isinstance(values.get("settings"), dict) or not isinstance(values.get("sessions"), list):
        raise HQCNNError(f"{path} has no settings or sessions.")
    return values


class SetRecord:
    """The provenance of a set being computed; `add` and `skip` record, `write` saves.

    `settings` are what every run of the set shares (preset, datasets, studies, the experiment
    configuration): a resumed set must be given the same, or its runs would not belong together.
    """

    def __init__(self, folder: str | Path, settings: dict[str, Any], *, command: str, executor: dict[str, Any],
                 resume: bool) -> None:  # fmt: skip
        self.folder = Path(folder)
        self.settings = json.loads(json.dumps(settings))
        self.runs: dict[tuple[str, str], dict[str, Any]] = {}
        self.skipped: list[dict[str, str]] = []
        self.sessions: list[dict[str, Any]] = []
        self.compute: dict[str, Any] = {}  # hqcnn.determinism.record() shared by every run of the set
        if (self.folder / PROVENANCE_FILE).exists():
            if not resume:
                raise HQCNNError(
                    f"{self.folder} already holds a results set: resume it (--resume) or choose another folder."
                )
            earlier = read_provenance(self.folder)
            if earlier["settings"] != self.settings:
                raise HQCNNError(
                    f"The results set in {self.folder} was started with other settings (preset, datasets, studies, "
                    "model or seeds); resume it with the same settings, or choose another folder."
                )
            self.runs = {(r["study"], r["dataset"]): r for r in earlier["runs"]}
            self.sessions = list(earlier["sessions"])
            self.compute = dict(earlier.get("compute") or {})
        self.session = {
            "command": command,
            "started_at": _now(),
            "finished_at": None,
            "wall_seconds": 0.0,
            "git": git_state(),
            "executor": executor,
        }
        self._started = time.perf_counter()

    def skip(self, study: str, dataset: str, reason: str) -> None:
        """A study that cannot run here (a missing optional package, ...)."""
        self.skipped.append({"study": study, "dataset": dataset, "reason": reason})

    def add(self, study: str, dataset: str, folder: Path, seconds: float, result: Any) -> None:
        """A run of this session: its wall time is added to any earlier session's for the same run.

        Every run of a set must compute under one determinism contract, or the set would not re-run.
        """
        if self.compute and result.compute and determinism.differences(self.compute, result.compute):
            raise HQCNNError(
                f"{study} on {dataset} ran under other kernel settings than the rest of the set in {self.folder} ("
                + "; ".join(determinism.differences(self.compute, result.compute))
                + "). Resume the set under the settings it was started with."
            )
        self.compute = self.compute or dict(result.compute)
        earlier = self.runs.get((study, dataset), {})
        self.runs[(study, dataset)] = {
            "study": study,
            "dataset": dataset,
            "folder": folder.name,
            "seconds": round(float(earlier.get("seconds", 0.0)) + seconds, 3),
            "tasks": result.executor.get("tasks"),
            "resumed_tasks": result.executor.get("resumed", 0),
            "finished": not result.stopped,
        }

    def keep(self, study: str, dataset: str, folder: Path, result: Any) -> None:
        """A run an earlier session finished: its record stays (or is made from its result, when the
        earlier session ended before writing it)."""
        if not self.runs.get((study, dataset), {}).get("finished"):
            self.runs.pop((study, dataset), None)
            self.add(study, dataset, folder, result.seconds, result)

    def to_json(self, complete: bool) -> dict[str, Any]:
        """Everything, JSON-ready; this session's end is now."""
        session = {**self.session, "finished_at": _now(), "wall_seconds": round(time.perf_counter() - self._started, 3)}
        sessions = [*self.sessions, session]
        order = {
            (s, d): (i, j)
            for i, d in enumerate(self.settings["datasets"])
            for j, s in enumerate(self.settings["studies"])
        }
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "complete": complete,
            "command": session["command"],
            "settings": self.settings,
            "git": session["git"],
            "versions": library_versions(),
            "machine": machine(),
            "compute": self.compute,
            "executor": session["executor"],
            "started_at": sessions[0]["started_at"],
            "finished_at": session["finished_at"],
            # The sessions' own times: the pause between an interruption and --resume is not counted.
            "wall_seconds": round(sum(float(s.get("wall_seconds") or 0.0) for s in sessions), 3),
            "runs": [self.runs[k] for k in sorted(self.runs, key=lambda k: order.get(k, (len(order), 0)))],
            "skipped": self.skipped,
            "sessions": sessions,
            "task_logs": "kept while the set is incomplete (--resume reads them)" if not complete else (
                "removed: each run's results.json holds the same rows, and a finished run is not resumed"
            ),
        }  # fmt: skip

    def write(self, complete: bool = False) -> Path:
        """Save provenance.json (replacing it in one step, so an interruption never leaves half a file)."""
        path = self.folder / PROVENANCE_FILE
        temporary = path.with_suffix(".json.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(self.to_json(complete), indent=2, allow_nan=False), encoding="utf-8")
            os.replace(temporary, path)
        except OSError as err:
            raise HQCNNError(f"Cannot write {path}: {err.strerror or err}.") from err
        return path

    def finish(self, log_name: str) -> Path:
        """The set is complete: drop each run's task log (a copy of its results.json's rows), then save."""
        for run in self.runs.values():
            (self.folder / run["folder"] / log_name).unlink(missing_ok=True)
        return self.write(complete=True)


def run_folder_name(study: str, preset: str, dataset: str) -> str:
    """The name of a set's run folder: <study>-<preset>-<dataset>."""
    return f"{study}-{safe_name(preset)}-{safe_name(dataset)}"


def settings(preset: str, datasets: Sequence[str], studies: Sequence[str], config: dict[str, Any]) -> dict[str, Any]:
    """What the runs of one set share (the experiment configuration without its dataset)."""
    return {
        "preset": preset,
        "datasets": list(datasets),
        "studies": list(studies),
        "config": {k: v for k, v in config.items() if k != "dataset"},
    }
