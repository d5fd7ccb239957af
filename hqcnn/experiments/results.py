"""Results and their files: `ExperimentResult`, save/load, CSV/JSON, and the run folders.

`save(folder)` writes results.csv (the tidy rows), summary.csv and results.json (rows, config,
preset, seeds, library versions, timestamps, the command that reproduces it). Reading a result
back keeps only the rows and what produced them: its summary and comparisons are recomputed.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hqcnn.errors import HQCNNError
from hqcnn.experiments.registry import EXPERIMENTS, ExperimentSpec
from hqcnn.experiments.rows import summarize

ROOT = Path(__file__).resolve().parents[2]  # the project folder
RUNS_ENV = "HQCNN_RUNS_DIR"  # folder that holds the experiment run folders (default runs/experiments)
# Folder of results published with the app, the only saved results the app lists: results that
# users run on a shared server stay in their own sessions (default: results/ in the project).
PUBLISHED_ENV = "HQCNN_PUBLISHED_DIR"
FORMAT = "hqcnn-experiment"
FORMAT_VERSION = 1


def runs_dir() -> Path:
    """Where experiment run folders live: $HQCNN_RUNS_DIR, else runs/experiments in the project."""
    custom = os.environ.get(RUNS_ENV)
    return Path(custom).expanduser() if custom else ROOT / "runs" / "experiments"


def published_dir() -> Path:
    """Where the app finds published experiment results: $HQCNN_PUBLISHED_DIR, else results/ in the project."""
    custom = os.environ.get(PUBLISHED_ENV)
    return Path(custom).expanduser() if custom else ROOT / "results"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def library_versions() -> dict[str, str]:
    """Versions of the libraries that determine the numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("torch", "pennylane", "numpy", "scipy", "scikit-learn", "medmnist"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    try:
        import torch

        out["torch_threads"] = str(torch.get_num_threads())
    except ImportError:  # pragma: no cover
        pass
    return out


@dataclass
class ExperimentResult:
    """One experiment's measurements and what is needed to reproduce them."""

    name: str
    config: dict[str, Any]
    preset: dict[str, Any]
    seeds: list[int]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    seconds: float = 0.0
    stopped: bool = False
    versions: dict[str, str] = field(default_factory=dict)
    command: str = ""

    @property
    def spec(self) -> ExperimentSpec:
        """The registry entry of this experiment."""
        return EXPERIMENTS[self.name]

    @property
    def title(self) -> str:
        """Human title."""
        return self.spec.title

    @property
    def dataset(self) -> str:
        """The dataset it ran on."""
        return str(self.config.get("dataset", "?"))

    @property
    def summary(self) -> list[dict[str, Any]]:
        """Mean and 95% CI of each metric per model × condition (computed from the rows)."""
        return summarize(self.rows)

    @property
    def comparisons(self) -> list[dict[str, Any]]:
        """Paired comparisons with verdicts (computed from the rows)."""
        return self.spec.compare(self.rows)

    def to_json(self) -> dict[str, Any]:
        """Everything, JSON-ready (strict JSON: no NaN)."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": self.name,
            "title": self.title,
            "config": self.config,
            "preset": self.preset,
            "seeds": self.seeds,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seconds": self.seconds,
            "stopped": self.stopped,
            "versions": self.versions,
            "command": self.command,
            "notes": self.notes,
            "rows": self.rows,
            "summary": self.summary,
            "comparisons": self.comparisons,
        }

    def json_text(self) -> str:
        """results.json as text."""
        return json.dumps(_jsonable(self.to_json()), indent=2, allow_nan=False)

    def csv_text(self) -> str:
        """results.csv as text: the tidy rows."""
        return rows_to_csv(self.rows)

    def summary_csv_text(self) -> str:
        """summary.csv as text."""
        return rows_to_csv(self.summary)

    def save(self, folder: str | Path) -> Path:
        """Write results.csv, summary.csv and results.json into `folder` (created); returns it."""
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "results.json").write_text(self.json_text(), encoding="utf-8")
            (folder / "results.csv").write_text(self.csv_text(), encoding="utf-8")
            (folder / "summary.csv").write_text(self.summary_csv_text(), encoding="utf-8")
        except OSError as err:
            raise HQCNNError(f"Cannot write the results to {folder}: {err.strerror or err}.") from err
        return folder

    @classmethod
    def from_json(cls, values: Any, source: str = "the file") -> ExperimentResult:
        """Rebuild a result from `to_json()` output, checking its shape (HQCNNError if wrong)."""
        if not isinstance(values, dict) or values.get("format") != FORMAT:
            raise HQCNNError(f"{source} is not an HQCNN experiment result (results.json written by this app).")
        if values.get("version") != FORMAT_VERSION:
            raise HQCNNError(
                f"{source} has result format version {values.get('version')!r}; this app reads version {FORMAT_VERSION}."
            )
        name = values.get("name")
        if name not in EXPERIMENTS:
            raise HQCNNError(f"{source} holds an unknown experiment {name!r}.")
        rows = values.get("rows")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise HQCNNError(f"{source} has no table of results (rows).")
        for row in rows:
            if not {"model", "condition", "seed", "accuracy"} <= set(row):
                raise HQCNNError(f"{source} has a result row without model, condition, seed or accuracy.")
            if not isinstance(row["accuracy"], (int, float)) or isinstance(row["accuracy"], bool):
                raise HQCNNError(f"{source} has a result row whose accuracy is not a number.")
        return cls(
            name=name,
            config=dict(values.get("config") or {}),
            preset=dict(values.get("preset") or {}),
            seeds=[int(s) for s in values.get("seeds") or []],
            rows=rows,
            notes=[str(n) for n in values.get("notes") or []],
            started_at=str(values.get("started_at", "")),
            finished_at=str(values.get("finished_at", "")),
            seconds=float(values.get("seconds") or 0.0),
            stopped=bool(values.get("stopped", False)),
            versions=dict(values.get("versions") or {}),
            command=str(values.get("command", "")),
        )

    @classmethod
    def from_json_text(cls, text: str | bytes, source: str = "the file") -> ExperimentResult:
        """Parse results.json text."""
        try:
            values = json.loads(text)
        except (ValueError, UnicodeDecodeError) as err:
            raise HQCNNError(f"{source} is not valid JSON ({err}).") from err
        return cls.from_json(values, source)

    @classmethod
    def load(cls, folder: str | Path) -> ExperimentResult:
        """Read a run folder written by `save` (or a results.json path)."""
        path = Path(folder)
        if path.is_dir():
            path = path / "results.json"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise HQCNNError(f"Cannot read {path}: {err.strerror or err}.") from err
        return cls.from_json_text(text, str(path))


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, tuples to lists, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in keys})
    return out.getvalue()


def list_runs(folder: str | Path | None = None) -> list[Path]:
    """Run folders (holding results.json) under `folder` (default `runs_dir()`), newest first."""
    root = Path(folder) if folder is not None else runs_dir()
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if (p / "results.json").is_file()]
    return sorted(found, key=lambda p: ((p / "results.json").stat().st_mtime, p.name), reverse=True)


def safe_name(text: str) -> str:
    """`text` usable inside a folder name: a dataset given as a folder path becomes its last part."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(text)).name).strip("._") or "data"


def default_folder(result: ExperimentResult, root: str | Path | None = None) -> Path:
    """runs/experiments/<name>-<preset>-<dataset>-<UTC time> (a new, unused name)."""
    root = Path(root) if root is not None else runs_dir()
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    base = f"{result.name}-{safe_name(result.preset.get('name', 'custom'))}-{safe_name(result.dataset)}-{stamp}"
    path, i = root / base, 1
    while path.exists():
        i += 1
        path = root / f"{base}-{i}"
    return path


def summary_table(result: ExperimentResult) -> list[dict[str, Any]]:
    """A compact, readable table: model, condition, seeds, accuracy and AUC with their 95% CIs."""
    from hqcnn.stats import fmt_ci

    out = []
    for s in result.summary:
        entry = {"model": s["model"], "condition": s["condition"], "seeds": s["n"]}
        if "params" in s:
            entry["parameters"] = s["params"]
        entry["accuracy (95% CI)"] = fmt_ci(s.get("accuracy_mean"), s.get("accuracy_ci_low"), s.get("accuracy_ci_high"))
        entry["ROC-AUC (95% CI)"] = fmt_ci(s.get("auc_mean"), s.get("auc_ci_low"), s.get("auc_ci_high"))
        out.append(entry)
    return out
