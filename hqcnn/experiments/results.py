"""Results and their files: `ExperimentResult`, save/load, CSV/JSON, and the run folders.

`save(folder)` writes results.csv (the tidy table), summary.csv and results.json (rows, config,
preset, seeds, library versions, timestamps, the command that reproduces it). Reading a result
back keeps only the table and what produced it: its summary and comparisons are recomputed.
A run folder also holds tasks.jsonl, the rows of each finished task, from which an interrupted
run resumes (`hqcnn.experiments.run`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hqcnn.errors import HQCNNError
from hqcnn.experiments.registry import STUDIES, Study
from hqcnn.experiments.table import Comparison, summarize
from hqcnn.experiments.tasks import plain

ROOT = Path(__file__).resolve().parents[2]  # the project folder
RUNS_ENV = "HQCNN_RUNS_DIR"  # folder that holds the experiment run folders (default runs/experiments)
# Folder of results published with the app, the only saved results the app lists: results that
# users run on a shared server stay in their own sessions (default: results/ in the project).
PUBLISHED_ENV = "HQCNN_PUBLISHED_DIR"
FORMAT = "hqcnn-experiment"
FORMAT_VERSION = 2  # 2: rows name their study; presets hold per-study grids
_MARKUP = re.compile(r"[<>\[\]{}`|\\]")  # never in a label this project writes


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
    return out


@dataclass
class ExperimentResult:
    """One study's measurements (a tidy table) and what is needed to reproduce them."""

    name: str
    config: dict[str, Any]
    preset: dict[str, Any]
    seeds: list[int]
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    seconds: float = 0.0
    stopped: bool = False
    versions: dict[str, str] = field(default_factory=dict)
    compute: dict[str, Any] = field(default_factory=dict)  # hqcnn.determinism.record() of the trainings
    command: str = ""
    executor: dict[str, Any] = field(default_factory=dict)  # how it ran: executor, workers (not part of the result)

    @property
    def study(self) -> Study:
        """The registered study."""
        return STUDIES[self.name]

    @property
    def title(self) -> str:
        return self.study.title

    @property
    def dataset(self) -> str:
        return str(self.config.get("dataset", "?"))

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The table as plain records (None where a column does not apply)."""
        return plain(self.table.astype(object).where(self.table.notna(), None).to_dict("records"))

    @property
    def summary(self) -> pd.DataFrame:
        """Mean and 95% CI of each metric per model × condition (computed from the table)."""
        study = self.study
        return summarize(self.table, study.metrics, study.bounded) if len(self.table) else pd.DataFrame()

    @property
    def comparisons(self) -> list[Comparison]:
        """The study's paired comparisons with verdicts (computed from the table)."""
        return self.study.compare(self.table) if len(self.table) else []

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
            "compute": self.compute,
            "command": self.command,
            "executor": self.executor,
            "notes": self.notes,
            "rows": self.rows,
            "summary": plain(self.summary.to_dict("records")),
            "comparisons": [plain(c.to_dict()) for c in self.comparisons],
        }

    def json_text(self) -> str:
        """results.json as text."""
        return json.dumps(plain(self.to_json()), indent=2, allow_nan=False)

    def csv_text(self) -> str:
        """results.csv as text: the tidy table."""
        return self.table.to_csv(index=False, lineterminator="\n")

    def summary_csv_text(self) -> str:
        """summary.csv as text."""
        return self.summary.to_csv(index=False, lineterminator="\n")

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
        if name not in STUDIES:
            raise HQCNNError(f"{source} holds an unknown study {name!r}.")
        rows = values.get("rows")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise HQCNNError(f"{source} has no table of results (rows).")
        dataset = (values.get("config") or {}).get("dataset")
        for row in rows:
            if not {"model", "condition", "seed", "accuracy"} <= set(row):
                raise HQCNNError(f"{source} has a result row without model, condition, seed or accuracy.")
            if not isinstance(row["accuracy"], (int, float)) or isinstance(row["accuracy"], bool):
                raise HQCNNError(f"{source} has a result row whose accuracy is not a number.")
            if row.get("dataset", dataset) != dataset:
                raise HQCNNError(f"{source} has result rows of another dataset than its configuration's.")
            # Labels reach the charts and the verdicts: no markup, no links, nothing long.
            if any(isinstance(v, str) and (len(v) > 200 or _MARKUP.search(v)) for v in row.values()):
                raise HQCNNError(f"{source} has a result row with an unexpected label (markup or over 200 characters).")
        return cls(
            name=name,
            config=dict(values.get("config") or {}),
            preset=dict(values.get("preset") or {}),
            seeds=[int(s) for s in values.get("seeds") or []],
            table=table_of(rows),
            notes=[str(n) for n in values.get("notes") or []],
            started_at=str(values.get("started_at", "")),
            finished_at=str(values.get("finished_at", "")),
            seconds=float(values.get("seconds") or 0.0),
            stopped=bool(values.get("stopped", False)),
            versions=dict(values.get("versions") or {}),
            compute=dict(values.get("compute") or {}),
            command=str(values.get("command", "")),
            executor=dict(values.get("executor") or {}),
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


def table_of(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The tidy table of result rows (columns in the order they first appear)."""
    return pd.DataFrame.from_records(list(rows))


def records_to_csv(records: Sequence[dict[str, Any]]) -> str:
    """CSV text of a list of records (e.g. Table 2)."""
    return pd.DataFrame.from_records(list(records)).to_csv(index=False, lineterminator="\n")


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


def default_folder(name: str, preset: str, dataset: str, root: str | Path | None = None) -> Path:
    """runs/experiments/<study>-<preset>-<dataset>-<UTC time> (a new, unused name)."""
    root = Path(root) if root is not None else runs_dir()
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    base = f"{name}-{safe_name(preset)}-{safe_name(dataset)}-{stamp}"
    path, i = root / base, 1
    while path.exists():
        i += 1
        path = root / f"{base}-{i}"
    return path


def summary_table(result: ExperimentResult) -> pd.DataFrame:
    """A compact, readable table: model, condition, seeds, accuracy and AUC with their 95% CIs."""
    from hqcnn.stats import fmt_ci

    s = result.summary
    if s.empty:
        return s
    out = s[["model", "condition", "n"]].rename(columns={"n": "seeds"})
    if "params" in s:
        out["parameters"] = s["params"]

    def ci(metric: str) -> pd.Series:
        cols = [f"{metric}_{k}" for k in ("mean", "ci_low", "ci_high")]
        return s.reindex(columns=cols).apply(lambda r: fmt_ci(*(None if pd.isna(v) else v for v in r)), axis=1)

    out = out.assign(**{"accuracy (95% CI)": ci("accuracy"), "ROC-AUC (95% CI)": ci("auc")})
    if "ece_mean" in s:  # a calibration study
        out = out.assign(**{"ECE (95% CI)": ci("ece"), "Brier (95% CI)": ci("brier")})
    return out
