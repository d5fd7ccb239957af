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
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hqcnn import schema
from hqcnn.cli_options import config_to_args
from hqcnn.config import ModelConfig, Option, options
from hqcnn.errors import HQCNNError
from hqcnn.experiments.presets import MODEL_FLAGS, PRESETS, ExperimentConfig, Preset
from hqcnn.experiments.registry import STUDIES, Study
from hqcnn.experiments.table import BOUNDED, KEYS, Comparison, summarize
from hqcnn.experiments.tasks import plain

ROOT = Path(__file__).resolve().parents[2]  # the project folder
RUNS_ENV = "HQCNN_RUNS_DIR"  # folder that holds the experiment run folders (default runs/experiments)
# Folder of results published with the app, the only saved results the app lists: results that
# users run on a shared server stay in their own sessions (default: results/ in the project).
PUBLISHED_ENV = "HQCNN_PUBLISHED_DIR"
FORMAT = "hqcnn-experiment"
FORMAT_VERSION = 2  # 2: rows name their study; presets hold per-study grids
_MARKUP = re.compile(r"[<>\[\]{}`|\\]")  # never in a label this project writes
# What one uploaded result may hold. A full-preset study writes at most 150 rows (input noise:
# 30 conditions × 5 seeds) and one or two notes; the caps leave room for 20 seeds, and bound the
# work of computing its summary, comparisons and figures (done once per result, see `memo`).
MAX_RESULT_BYTES = 5 * 2**20
MAX_ROWS = 2_000
MAX_COLUMNS = 128
MAX_NOTES = 50
MAX_LABEL_CHARS = 200
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet reads such a cell as a formula


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
    # What is computed from the table (summary, comparisons, figures), kept while the table is the same object.
    _memo: dict[tuple[str, int, int], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def memo(self, what: str, compute: Callable[[], Any]) -> Any:
        """`compute()` once per table: a page redrawn on every click does not recompute what it shows."""
        table = (id(self.table), len(self.table))
        key = (what, *table)
        if key not in self._memo:
            # a replaced table makes every earlier value stale
            self._memo = {k: v for k, v in self._memo.items() if k[1:] == table}
            self._memo[key] = compute()
        return self._memo[key]

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
        if not len(self.table):
            return pd.DataFrame()
        return self.memo("summary", lambda: summarize(self.table, study.metrics, study.bounded)).copy()

    @property
    def comparisons(self) -> list[Comparison]:
        """The study's paired comparisons with verdicts (computed from the table)."""
        return list(self.memo("comparisons", lambda: self.study.compare(self.table))) if len(self.table) else []

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
        return safe_csv(self.table)

    def summary_csv_text(self) -> str:
        """summary.csv as text."""
        return safe_csv(self.summary)

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
        """Rebuild a result from `to_json()` output, checking every field (HQCNNError if one is wrong).

        The table and what produced it are kept; the summary and comparisons are recomputed from
        the table, and the command from the checked settings (`reproduce_command`), never taken
        from the file.
        """
        if not isinstance(values, dict) or values.get("format") != FORMAT:
            raise HQCNNError(f"{source} is not an HQCNN experiment result (results.json written by this app).")
        version = values.get("version")
        if version != FORMAT_VERSION:
            shown = version if isinstance(version, int) and not isinstance(version, bool) else "unknown"
            raise HQCNNError(f"{source} has result format version {shown}; this app reads version {FORMAT_VERSION}.")
        name = values.get("name")
        if not isinstance(name, str) or name not in STUDIES:
            raise HQCNNError(f"{source} holds an unknown study '{schema.shown_name(name)}'.")
        raw_config = values.get("config")
        dataset = raw_config.get("dataset") if isinstance(raw_config, dict) else None
        rows = _checked_rows(values.get("rows"), name, dataset, source)
        checked = schema.validate(values, _RESULT_SCHEMA, source)
        config = _settings(ExperimentConfig, checked["config"], "settings", source)
        preset = _settings(Preset, checked["preset"], "preset", source)
        return cls(
            name=name,
            config=config.to_dict(),
            preset=preset.to_dict(),
            seeds=checked.get("seeds", []),
            table=table_of(rows),
            notes=checked.get("notes", []),
            started_at=checked.get("started_at", ""),
            finished_at=checked.get("finished_at", ""),
            seconds=checked.get("seconds", 0.0),
            stopped=checked.get("stopped", False),
            versions=checked.get("versions", {}),
            compute=checked.get("compute", {}),
            command=reproduce_command(name, config, preset),
            executor=checked.get("executor", {}),
        )

    @classmethod
    def from_json_text(cls, text: str | bytes, source: str = "the file") -> ExperimentResult:
        """Parse results.json text (at most MAX_RESULT_BYTES, nesting bounded)."""
        return cls.from_json(schema.parse(text, source, MAX_RESULT_BYTES), source)

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


_COLUMN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # the table's column names, as the studies write them
_LABEL = schema.scalar(MAX_LABEL_CHARS)  # a value of a preset's grid
_IGNORED = schema.list_of(schema.mapping(lambda value, path: None, 256), 100_000)  # recomputed from the rows
_GRID_VALUE = schema.one_of(
    _LABEL,
    schema.list_of(schema.one_of(_LABEL, schema.list_of(_LABEL, 10), expected="must be a value or a short list"), 100),
    expected="must be a value or a list of values",
)


def _option_check(opt: Option) -> schema.Check:
    """The schema of one declared model setting, from its declaration (type, bounds, choices)."""
    if opt.type is bool:
        return schema.boolean
    if opt.choices is not None:
        pattern = re.compile("^(" + "|".join(re.escape(str(c)) for c in opt.choices) + ")$")
        return schema.text(40, pattern=pattern, what="one of " + ", ".join(map(str, opt.choices)))
    low, high = opt.bounds
    if opt.type is tuple:
        return schema.list_of(schema.number(low, high, integer=True), 8, 1)
    return schema.number(low, high, integer=opt.type is int)


_MODEL = schema.fields({}, {name: _option_check(opt) for name, opt in options(ModelConfig).items()})
_CONFIG = schema.fields(
    {"dataset": schema.text(4096), "model": _MODEL},
    {
        "seeds": schema.optional(schema.count(100)),
        "base_seed": schema.count(2**31),
        "threads": schema.optional(schema.count(1024)),
        "device": schema.text(20),
    },
)
_PRESET = schema.fields(
    {
        "name": schema.text(40, pattern=re.compile(r"^[A-Za-z0-9_-]+$"), what="letters, digits, - and _"),
        "seeds": schema.count(100),
    },
    {
        "step_budget": schema.optional(schema.count()),
        "min_epochs": schema.count(1000),
        "max_epochs": schema.optional(schema.count(1000)),
        "base": schema.optional(schema.text(40)),
        "grids": schema.mapping(schema.mapping(_GRID_VALUE, 32), 32),
        "description": schema.text(1000),
    },
)
_RESULT_SCHEMA = schema.fields(
    {
        "format": schema.text(40),
        "version": schema.count(),
        "name": schema.text(40),
        "config": _CONFIG,
        "preset": _PRESET,
        "rows": lambda value, path: None,  # checked by _checked_rows, with messages of its own
    },
    {
        "title": schema.text(200),
        "seeds": schema.list_of(schema.count(2**31), 1000),
        "started_at": schema.text(40),
        "finished_at": schema.text(40),
        "seconds": schema.number(0.0, 1e9),
        "stopped": schema.boolean,
        "versions": schema.mapping(schema.text(200), 32, key=re.compile(r"^[A-Za-z0-9_.-]{1,64}$")),
        "compute": schema.COMPUTE,
        "command": schema.text(2000),  # checked for size only: the command shown is rebuilt from the settings
        "executor": schema.mapping(schema.scalar(100), 16),
        "notes": schema.list_of(schema.text(2000), MAX_NOTES),
        "summary": _IGNORED,
        "comparisons": _IGNORED,
    },
)


def _checked_rows(rows: Any, name: str, dataset: Any, source: str) -> list[dict[str, Any]]:
    """The result rows of study `name` on `dataset`: bounded in number and size, every value a finite
    number or a short label without markup, the scores between 0 and 1 (HQCNNError otherwise)."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise HQCNNError(f"{source} has no table of results (rows).")
    if len(rows) > MAX_ROWS:
        raise HQCNNError(
            f"{source} has {len(rows):,} result rows; this app shows at most {MAX_ROWS:,} (a study with 20 seeds has"
            " a few hundred). Split it, or run it with fewer seeds."
        )
    bounded = {*BOUNDED, *STUDIES[name].bounded}
    for i, row in enumerate(rows):
        if not {"model", "condition", "seed", "accuracy"} <= set(row):
            raise HQCNNError(f"{source} has a result row without model, condition, seed or accuracy.")
        if len(row) > MAX_COLUMNS or not all(isinstance(k, str) and _COLUMN.match(k) for k in row):
            raise HQCNNError(f"{source}: result row {i + 1} has a column that is not one this app writes.")
        for key, value in row.items():
            if isinstance(value, str):
                if len(value) > MAX_LABEL_CHARS or _MARKUP.search(value):
                    raise HQCNNError(
                        f"{source} has a result row with an unexpected label (markup or over {MAX_LABEL_CHARS} characters)."
                    )
            elif value is not None and not _is_number(value):
                raise HQCNNError(
                    f"{source}: result row {i + 1}, column '{key}', holds something other than a number (at most"
                    f" {schema.BIG:g} in size) or a short label."
                )
            if key in bounded and value is not None and (isinstance(value, (bool, str)) or not 0 <= value <= 1):
                raise HQCNNError(f"{source}: result row {i + 1} has a {key} that is not a score from 0 to 1.")
        if not isinstance(row["accuracy"], (int, float)) or isinstance(row["accuracy"], bool):
            raise HQCNNError(f"{source} has a result row whose accuracy is not a number.")
        if not isinstance(row["seed"], int) or isinstance(row["seed"], bool) or not 0 <= row["seed"] < 2**31:
            raise HQCNNError(f"{source}: result row {i + 1} has a seed that is not a whole number.")
        if not all(isinstance(row.get(k, ""), str) for k in KEYS if k != "seed"):
            raise HQCNNError(f"{source}: result row {i + 1} has a study, dataset, condition or model that is not text.")
        if row.get("dataset", dataset) != dataset:
            raise HQCNNError(f"{source} has result rows of another dataset than its configuration's.")
        if row.get("study", name) != name:
            raise HQCNNError(f"{source} has result rows of another study than its own.")
    return rows


def _is_number(value: Any) -> bool:
    """A finite JSON number of at most schema.BIG in size (true and false count, as a table's flags)."""
    return isinstance(value, (bool, int, float)) and -schema.BIG <= value <= schema.BIG


def _settings(cls: type, values: dict[str, Any], what: str, source: str) -> Any:
    """An ExperimentConfig or Preset from checked JSON; the config's own rules give the message."""
    try:
        return cls.from_dict(values)
    except HQCNNError as err:
        reason = str(err)
        reason = reason if len(reason) <= 300 else reason[:299] + "…"
        raise HQCNNError(f"{source} holds invalid {what}: {reason}") from err


def reproduce_command(name: str, config: ExperimentConfig, preset: Preset) -> str:
    """The command line that runs study `name` with `config` and `preset`, quoted for a shell.

    Settings the command line cannot set (other backbone widths, a preset of one's own) are named
    in a comment that points to results.json.
    """
    parts = ["python", "-m", "hqcnn", "experiment", name, "--preset", preset.name, "--dataset", config.dataset]
    if config.seeds is not None:
        parts += ["--seeds", str(config.seeds)]
    parts += ["--seed", str(config.base_seed)]
    comments = []
    try:
        parts += config_to_args(config.model, names=MODEL_FLAGS)
    except ValueError:
        comments.append("  # custom model: see 'config' in results.json")
    if preset.name not in PRESETS or PRESETS[preset.name] != preset:
        comments.append("  # custom preset: see 'preset' in results.json")
    return shlex.join(parts) + "".join(comments)


def table_of(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The tidy table of result rows (columns in the order they first appear)."""
    return pd.DataFrame.from_records(list(rows))


def records_to_csv(records: Sequence[dict[str, Any]]) -> str:
    """CSV text of a list of records (e.g. Table 2)."""
    return safe_csv(pd.DataFrame.from_records(list(records)))


def _inert(value: Any) -> Any:
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def safe_csv(frame: pd.DataFrame) -> str:
    """CSV text of `frame` in which no text cell can run as a spreadsheet formula.

    A text cell beginning with = + - @, a tab or a carriage return gets a leading ' (OWASP's
    advice against CSV injection); numbers are written as they are, negative ones included.
    """
    safe = frame.rename(columns=_inert)  # a new frame: the caller's is left as it is
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):  # text, or a mix (numbers in it stay numbers)
            safe[column] = safe[column].map(_inert)
    return safe.to_csv(index=False, lineterminator="\n")


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
