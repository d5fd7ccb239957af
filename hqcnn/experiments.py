"""Experiments that measure what the paper's Table 2 only expects of the hybrid model.

Each experiment trains the hybrid model AND its parameter-matched classical twin on the same data
with the same seeds, so that every seed gives a paired comparison:

=================  ==========================================================================
low_data           test ACC/AUC against training images per class (10, 25, ..., all)
input_noise        accuracy as Gaussian or salt-and-pepper noise is added to the test images
hardware_noise     the trained hybrid on a noisy quantum simulator (depolarising p, finite shots)
param_efficiency   accuracy against trainable parameters (circuit sizes; backbone widths)
ablations          circuit variants: entangler, depth (0 = no circuit), encoding
paired             the default hybrid against its twin over several seeds: accuracy, AUC,
                   train–test gap, training time
=================  ==========================================================================

An experiment is `run_experiment(name, ExperimentConfig, Preset, callback, stop)`; it returns an
`ExperimentResult` whose `rows` are a tidy table (one row per model × condition × seed). The
summary (means with 95% confidence intervals) and the paired comparisons (t-test, Wilcoxon,
Cohen's d_z, a verdict in words) are computed from the rows, so a result loaded from disk is
summarised exactly as a fresh one. `save(folder)` writes results.csv, summary.csv and
results.json (rows, config, preset, seeds, library versions, timestamps, the command that
reproduces it). Seeds fix everything: the same config and preset give the same rows (timings
aside). `table2(results)` puts the paper's expectations beside the measured verdicts.

Progress goes to `callback(done, total, message)`; a `threading.Event` stops an experiment between
(and, through `hqcnn.train.run`, inside) training runs. A run cut short is not recorded.
Nothing here imports streamlit; plotly is imported only by the figure builders.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import io
import json
import math
import os
import platform
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hqcnn.config import ModelConfig
from hqcnn.config import from_dict as config_from_dict
from hqcnn.config import to_dict as config_to_dict
from hqcnn.errors import ConfigError, HQCNNError

ROOT = Path(__file__).resolve().parent.parent
RUNS_ENV = "HQCNN_RUNS_DIR"  # folder that holds the experiment run folders (default runs/experiments)
FORMAT = "hqcnn-experiment"
FORMAT_VERSION = 1

HYBRID, TWIN, BACKBONE = "hybrid", "classical twin", "backbone only"
MODEL_NAMES = {"hybrid": HYBRID, "classical": TWIN, "backbone": BACKBONE}
METRICS = ("accuracy", "auc", "precision", "recall", "specificity", "f1")
TIMING_KEYS = ("seconds", "seconds_per_epoch")  # the only row values that differ between identical runs

Progress = Callable[[float, int, str], None]


def runs_dir() -> Path:
    """Where experiment run folders live: $HQCNN_RUNS_DIR, else runs/experiments in the project."""
    custom = os.environ.get(RUNS_ENV)
    return Path(custom).expanduser() if custom else ROOT / "runs" / "experiments"


# ---------------------------------------------------------------------------------------------
# Presets and configuration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """How big each experiment is. `quick` is for a classroom; `full` for a report."""

    name: str
    seeds: int  # seeds per condition (the paired experiment uses `paired_seeds`)
    paired_seeds: int
    step_budget: int | None  # cap on optimiser steps per training run; None = the recipe's
    min_epochs: int = 3
    max_epochs: int | None = None  # hard cap (tests use 1)
    train_per_class: int | None = None  # training subset of input_noise, hardware_noise, paired; None = all
    sweep_train_per_class: int | None = None  # training subset of the many-run param_efficiency and ablations
    low_data_sizes: tuple[int | None, ...] = (10, 25, 50, 100, 250, None)  # None = all images
    gaussian_sigmas: tuple[float, ...] = (0.0, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5)
    salt_pepper_amounts: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
    depolarizing: tuple[float, ...] = (0.0, 0.001, 0.01, 0.05)
    shots: tuple[int | None, ...] = (None, 1000, 100)  # None = exact expectation values
    hardware_images: int = 1000  # test images evaluated on the noisy simulator
    circuit_sizes: tuple[tuple[int, int], ...] = ((2, 1), (2, 2), (4, 1), (4, 2), (4, 4), (6, 2), (8, 2))
    widths: tuple[tuple[int, int], ...] = ((4, 8), (8, 16), (16, 32))
    ablations: tuple[str, ...] = (
        "baseline",
        "entangler_none",
        "entangler_chain",
        "no_circuit",
        "depth_1",
        "depth_3",
        "depth_4",
        "encoding_ry",
        "encoding_reupload",
        "twin",
    )
    description: str = ""

    def __post_init__(self) -> None:
        for name in ("seeds", "paired_seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
                raise ConfigError(f"Preset {name} must be a whole number from 1 to 100, got {value!r}.")
        unknown = [a for a in self.ablations if a not in ABLATIONS]
        if unknown:
            raise ConfigError(f"Unknown ablation(s) {', '.join(unknown)}; choose from {', '.join(ABLATIONS)}.")
        for p in self.depolarizing:
            if not 0 <= p <= 1:
                raise ConfigError(f"Depolarising probabilities must lie in [0, 1], got {p}.")
        # JSON gives lists; the frozen dataclass keeps tuples so that presets compare and hash.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
                object.__setattr__(self, f.name, value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: Any) -> Preset:
        """Inverse of `to_dict`; unknown keys are a ConfigError."""
        if not isinstance(values, dict):
            raise ConfigError("A preset must be a mapping of settings.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Unknown preset setting(s): {', '.join(unknown)}.")
        try:
            return cls(**values)
        except TypeError as err:
            raise ConfigError(f"Invalid preset: {err}.") from err


PRESETS: dict[str, Preset] = {}  # filled below, after ABLATIONS exists


@dataclass(frozen=True)
class ExperimentConfig:
    """What to run the experiments on: dataset, base hybrid model, seeds."""

    dataset: str = "pneumoniamnist"
    seeds: int | None = None  # None: the preset's number of seeds
    base_seed: int = 0  # seeds used: base_seed, base_seed + 1, ...
    model: ModelConfig = field(default_factory=ModelConfig)  # the hybrid; its twin is derived
    # torch threads. 1 by default: these models are small, and on a shared 2-core machine two
    # threads made runs up to 10× slower (measured: low_data quick 283 s with 2, 55 s with 1).
    threads: int | None = 1
    device: str = "cpu"  # the experiments are meant for, and timed on, CPUs

    def __post_init__(self) -> None:
        if self.seeds is not None and (isinstance(self.seeds, bool) or not isinstance(self.seeds, int)):
            raise ConfigError(f"seeds must be a whole number, got {self.seeds!r}.")
        if self.seeds is not None and not 1 <= self.seeds <= 100:
            raise ConfigError(f"seeds must be between 1 and 100, got {self.seeds}.")
        if (
            isinstance(self.base_seed, bool)
            or not isinstance(self.base_seed, int)
            or not 0 <= self.base_seed < 2**31 - 200
        ):
            raise ConfigError(f"The base seed must be a whole number from 0 to 2^31 - 200, got {self.base_seed!r}.")
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", config_from_dict(ModelConfig, self.model))
        if self.model.kind != "hybrid":
            object.__setattr__(self, "model", replace(self.model, kind="hybrid"))

    def seed_list(self, preset: Preset, paired: bool = False) -> list[int]:
        """The seeds an experiment uses."""
        k = self.seeds if self.seeds is not None else (preset.paired_seeds if paired else preset.seeds)
        return list(range(self.base_seed, self.base_seed + k))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "dataset": self.dataset,
            "seeds": self.seeds,
            "base_seed": self.base_seed,
            "model": config_to_dict(self.model),
            "threads": self.threads,
            "device": self.device,
        }

    @classmethod
    def from_dict(cls, values: Any) -> ExperimentConfig:
        """Inverse of `to_dict`."""
        if not isinstance(values, dict):
            raise ConfigError("An experiment configuration must be a mapping.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Unknown experiment setting(s): {', '.join(unknown)}.")
        values = dict(values)
        if "model" in values:
            values["model"] = config_from_dict(ModelConfig, values["model"])
        return cls(**values)


# ---------------------------------------------------------------------------------------------
# Ablations: named variants of the base hybrid
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ablation:
    """One variant: a label, a group for the charts, and how to derive its ModelConfig."""

    label: str
    group: str
    derive: Callable[[ModelConfig], ModelConfig]


def _depth(d: int) -> Callable[[ModelConfig], ModelConfig]:
    return lambda m: replace(m, depth=d)


ABLATIONS: dict[str, Ablation] = {
    "baseline": Ablation("baseline (as configured)", "baseline", lambda m: m),
    "entangler_none": Ablation("entangler: none", "entangler", lambda m: replace(m, entangler="none")),
    "entangler_chain": Ablation("entangler: chain", "entangler", lambda m: replace(m, entangler="chain")),
    "entangler_ring": Ablation("entangler: ring", "entangler", lambda m: replace(m, entangler="ring")),
    "no_circuit": Ablation("no circuit (backbone only)", "depth", lambda m: replace(m, kind="backbone")),
    **{f"depth_{d}": Ablation(f"depth {d}", "depth", _depth(d)) for d in range(1, 5)},
    "encoding_layered": Ablation("encoding: layered", "encoding", lambda m: replace(m, encoding="layered")),
    "encoding_ry": Ablation("encoding: ry", "encoding", lambda m: replace(m, encoding="ry")),
    "encoding_reupload": Ablation("encoding: reupload", "encoding", lambda m: replace(m, encoding="reupload")),
    "twin": Ablation("classical twin (reference)", "reference", lambda m: replace(m, kind="classical")),
}

PRESETS.update(
    {
        "quick": Preset(
            name="quick",
            seeds=3,
            paired_seeds=5,
            step_budget=150,
            min_epochs=3,
            train_per_class=None,
            sweep_train_per_class=250,
            low_data_sizes=(10, 50, None),
            gaussian_sigmas=(0.0, 0.025, 0.05, 0.1, 0.2, 0.5),
            salt_pepper_amounts=(0.0, 0.01, 0.02, 0.05, 0.1, 0.2),
            depolarizing=(0.0, 0.001, 0.01, 0.05),
            shots=(None, 1000, 100),
            hardware_images=300,
            circuit_sizes=((2, 1), (4, 2), (6, 3)),
            widths=((4, 8), (16, 32)),
            ablations=(
                "baseline",
                "entangler_none",
                "no_circuit",
                "depth_1",
                "depth_4",
                "encoding_ry",
                "encoding_reupload",
                "twin",
            ),
            description="classroom size: about a minute per experiment on 2 CPU cores; at most ~150 optimiser "
            "steps per model, 3 seeds (5 for paired), 250 images per class for the size and ablation sweeps",
        ),
        "full": Preset(
            name="full",
            seeds=5,
            paired_seeds=10,
            step_budget=None,
            train_per_class=None,
            sweep_train_per_class=None,
            description="report size: the recommended recipe on every training image, 5 seeds (10 for paired); "
            "tens of minutes per experiment",
        ),
    }
)


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Summaries and comparisons (pure functions of the rows)
# ---------------------------------------------------------------------------------------------

# Columns that describe a condition (copied into the summary) rather than a measurement.
_CONDITION_KEYS = (
    "x",
    "train_per_class",
    "n_train",
    "noise",
    "level",
    "p",
    "shots",
    "simulator",
    "family",
    "group",
    "variant",
    "n_qubits",
    "depth",
    "channels",
    "params",
    "quantum_params",
    "n_test",
    "majority_accuracy",
)
_BOUNDED = (*METRICS, "train_accuracy")  # scores in [0, 1]
_SUMMARY_METRICS = (*METRICS, "train_accuracy", "generalisation_gap", "seconds_per_epoch", "seconds")


def _groups(rows: Iterable[dict[str, Any]], keys: Sequence[str]) -> dict[tuple, list[dict[str, Any]]]:
    out: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    return out


def _ci(values: Sequence[float]) -> tuple[float, float, float]:
    from hqcnn.metrics import mean_ci

    return mean_ci(values)


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, condition): n seeds, and mean / ci_low / ci_high of every metric.

    The interval is the two-sided 95% Student-t interval over seeds (`hqcnn.metrics.mean_ci`), clipped
    to [0, 1] for scores that cannot leave it (accuracy, AUC, ...).
    """
    out = []
    for (model, condition), members in _groups(rows, ("model", "condition")).items():
        entry: dict[str, Any] = {"model": model, "condition": condition, "n": len(members)}
        for key in _CONDITION_KEYS:
            if key in members[0]:
                entry[key] = members[0][key]
        for metric in _SUMMARY_METRICS:
            values = [r[metric] for r in members if isinstance(r.get(metric), (int, float)) and r[metric] is not None]
            if not values:
                continue
            mean, low, high = _ci(values)
            if metric in _BOUNDED:  # a t-interval can pass 0 or 1; a score cannot
                low, high = max(low, 0.0), min(high, 1.0)
            entry[f"{metric}_mean"], entry[f"{metric}_ci_low"], entry[f"{metric}_ci_high"] = mean, low, high
        out.append(entry)
    return out


def _paired_values(
    rows: Sequence[dict[str, Any]], a: dict[str, Any], b: dict[str, Any], metric: str
) -> tuple[list[int], list[float], list[float]]:
    """Seeds and values of `metric` for rows matching `a` and rows matching `b`, paired by seed."""

    def pick(match: dict[str, Any]) -> dict[int, float]:
        return {
            r["seed"]: float(r[metric])
            for r in rows
            if all(r.get(k) == v for k, v in match.items()) and isinstance(r.get(metric), (int, float))
        }

    va, vb = pick(a), pick(b)
    seeds = sorted(set(va) & set(vb))
    return seeds, [va[s] for s in seeds], [vb[s] for s in seeds]


def compare(
    rows: Sequence[dict[str, Any]],
    a: dict[str, Any],
    b: dict[str, Any],
    label: str,
    metric: str = "accuracy",
    subject: str = "The hybrid",
    other: str = "the classical twin",
    **verdict_options: Any,
) -> dict[str, Any]:
    """Paired comparison of `metric` between the rows matching `a` and `b` (a − b per seed)."""
    from hqcnn.stats import paired_comparison, verdict

    seeds, va, vb = _paired_values(rows, a, b, metric)
    diffs = [x - y for x, y in zip(va, vb, strict=True)]
    stats = paired_comparison(diffs)
    options = {"scale": 100.0, "unit": "points", **verdict_options}
    return {
        "comparison": label,
        "metric": metric,
        "a": a,
        "b": b,
        "seeds": seeds,
        "a_values": va,
        "b_values": vb,
        "diffs": diffs,
        **stats.to_dict(),
        "scale": options["scale"],
        "unit": options["unit"],
        "verdict": verdict(diffs, subject=subject, other=other, **options),
    }


def _conditions(rows: Sequence[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for r in rows:
        if r["condition"] not in seen:
            seen.append(r["condition"])
    return seen


def _hybrid_vs_twin(
    rows: Sequence[dict[str, Any]], metrics: Sequence[str] = ("accuracy", "auc")
) -> list[dict[str, Any]]:
    out = []
    for condition in _conditions(rows):
        models = {r["model"] for r in rows if r["condition"] == condition}
        if not {HYBRID, TWIN} <= models:
            continue
        for metric in metrics:
            out.append(
                compare(
                    rows,
                    {"model": HYBRID, "condition": condition},
                    {"model": TWIN, "condition": condition},
                    f"hybrid − classical twin, {condition}",
                    metric,
                )
            )
    return out


# ---------------------------------------------------------------------------------------------
# The runner: training runs with progress, stop and caching of prepared data
# ---------------------------------------------------------------------------------------------


class Stopped(Exception):
    """Raised inside an experiment when the stop flag is set; the rows so far are kept."""


class _Runner:
    def __init__(
        self,
        name: str,
        config: ExperimentConfig,
        preset: Preset,
        callback: Progress | None,
        stop: threading.Event | None,
    ) -> None:
        self.name = name
        self.config = config
        self.preset = preset
        self.callback = callback or (lambda done, total, message: None)
        self.stop = stop or threading.Event()
        self.total = 1
        self.done = 0.0
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self._data: dict[tuple, Any] = {}
        self._last_report = 0.0

    # progress -----------------------------------------------------------------------------
    def report(self, message: str, fraction: float = 0.0, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < 0.2:
            return
        self._last_report = now
        self.callback(min(self.done + fraction, self.total), self.total, message)

    def step(self, message: str) -> None:
        self.done += 1
        self.report(message)

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise Stopped

    # data ----------------------------------------------------------------------------------
    def data(self, train_per_class: int | None, seed: int) -> Any:
        """PreparedData; the low-data subset depends on the seed, the full set does not."""
        from hqcnn.config import DataConfig
        from hqcnn.data import prepare

        key = (train_per_class, seed if train_per_class else 0)
        if key not in self._data:
            self._data[key] = prepare(
                DataConfig(dataset=self.config.dataset, train_per_class=train_per_class, seed=key[1])
            )
        return self._data[key]

    # training ------------------------------------------------------------------------------
    def train_config(self, n_train: int, seed: int) -> Any:
        from hqcnn.recipes import recommended_train_config

        recipe = recommended_train_config(n_train, seed=seed, device=self.config.device, threads=self.config.threads)
        epochs = recipe.epochs
        if self.preset.step_budget:
            steps_per_epoch = math.ceil(n_train / recipe.batch_size)
            epochs = min(epochs, max(self.preset.min_epochs, math.ceil(self.preset.step_budget / steps_per_epoch)))
        if self.preset.max_epochs:
            epochs = min(epochs, self.preset.max_epochs)
        return replace(recipe, epochs=max(1, epochs))

    def train(self, model: ModelConfig, data: Any, seed: int, what: str) -> Any:
        """Train one model; the RunOutcome, or Stopped if the stop flag cut it short."""
        from hqcnn.config import RunConfig
        from hqcnn.train import Callback, run

        self.check_stop()
        runner = self
        message = f"{what} · seed {seed}"

        class _Forward(Callback):
            total_steps = 1

            def on_train_start(self, total_steps: int, steps_per_epoch: int) -> None:
                self.total_steps = max(total_steps, 1)
                runner.report(f"training {message}")

            def on_batch_end(self, step: int, loss: float, accuracy: float) -> None:
                runner.report(f"training {message}", fraction=step / self.total_steps, force=False)

        config = RunConfig(data=data.config, model=model, train=self.train_config(len(data.y_train), seed))
        outcome = run(config, data=data, callback=_Forward(), stop=self.stop)
        if outcome.result.stopped:
            raise Stopped
        self.step(f"trained {message}")
        return outcome

    def base_row(self, outcome: Any, condition: str, seed: int, **extra: Any) -> dict[str, Any]:
        test = outcome.test
        row: dict[str, Any] = {
            "experiment": self.name,
            "dataset": self.config.dataset,
            "model": MODEL_NAMES[outcome.config.model.kind],
            "condition": condition,
            "seed": seed,
            **extra,
        }
        row.update({m: test.get(m) for m in METRICS})
        row.update(
            {
                "majority_accuracy": test.get("majority_accuracy"),
                "n_test": test.get("n"),
                "n_train": len(outcome.data.y_train),
                "params": outcome.params.total,
                "quantum_params": outcome.params.quantum,
                "epochs": outcome.config.train.epochs,
                "best_epoch": outcome.result.best_epoch,
                "seconds": outcome.seconds,
                "seconds_per_epoch": outcome.result.seconds_per_epoch,
            }
        )
        return row

    def metrics_row(
        self, outcome: Any, metrics: dict[str, Any], condition: str, seed: int, **extra: Any
    ) -> dict[str, Any]:
        """A row for an evaluation of a trained model on other inputs (noise) than its test set."""
        row = self.base_row(outcome, condition, seed, **extra)
        row.update({m: metrics.get(m) for m in METRICS})
        row["n_test"] = metrics.get("n")
        row["majority_accuracy"] = metrics.get("majority_accuracy")
        return row


def twin_of(model: ModelConfig) -> ModelConfig:
    """The parameter-matched classical twin of a hybrid configuration."""
    return replace(model, kind="classical")


def _pair(model: ModelConfig) -> list[tuple[str, ModelConfig]]:
    return [(HYBRID, replace(model, kind="hybrid")), (TWIN, twin_of(model))]


# ---------------------------------------------------------------------------------------------
# The six experiments
# ---------------------------------------------------------------------------------------------


def _size_label(size: int | None, data: Any) -> str:
    return f"all ({len(data.y_train):,} images)" if size is None else f"{size} per class"


def _low_data(r: _Runner) -> None:
    seeds = r.config.seed_list(r.preset)
    sizes = r.preset.low_data_sizes
    r.total = len(sizes) * len(seeds) * 2
    for size in sizes:
        for seed in seeds:
            data = r.data(size, seed)
            label = _size_label(size, data)
            for _, model in _pair(r.config.model):
                outcome = r.train(model, data, seed, f"{MODEL_NAMES[model.kind]}, {label}")
                per_class = len(data.y_train) / data.n_classes
                r.rows.append(r.base_row(outcome, label, seed, x=per_class, train_per_class=size))
    r.notes.append(
        "Each seed draws its own stratified training subset (same subset for both models); "
        "'all' uses every training image. x = training images per class (the mean for 'all')."
    )


def _noisy_inputs(data: Any, noise: str, level: float, seed: int) -> Any:
    """The test images with noise added in pixel units (0..1), normalised again as the model expects."""
    import torch

    from hqcnn.data import add_gaussian_noise, add_salt_pepper

    x = data.x_test
    if level == 0:
        return x
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    x01 = x * std + mean if data.config.normalize else x.clone()
    noisy = add_gaussian_noise(x01, level, seed) if noise == "gaussian" else add_salt_pepper(x01, level, seed)
    return (noisy - mean) / std if data.config.normalize else noisy


def _noise_seed(seed: int, *parts: int) -> int:
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0])


NOISE_LABELS = {"gaussian": "Gaussian σ", "salt_pepper": "salt-and-pepper amount"}


def _input_noise(r: _Runner) -> None:
    from hqcnn.train import evaluate

    seeds = r.config.seed_list(r.preset)
    r.total = len(seeds) * 3
    conditions = [("gaussian", s) for s in r.preset.gaussian_sigmas] + [
        ("salt_pepper", a) for a in r.preset.salt_pepper_amounts
    ]
    for seed in seeds:
        data = r.data(r.preset.train_per_class, seed)
        outcomes = [r.train(model, data, seed, name) for name, model in _pair(r.config.model)]
        r.check_stop()
        for index, (noise, level) in enumerate(conditions):
            # The same noisy images for both models: the comparison is paired.
            x = _noisy_inputs(data, noise, level, _noise_seed(seed, 1 + (noise == "salt_pepper"), index))
            for outcome in outcomes:
                metrics = evaluate(outcome.result.model, x, data.y_test)
                label = f"{NOISE_LABELS[noise]} {level:g}"
                r.rows.append(r.metrics_row(outcome, metrics, label, seed, noise=noise, level=level, x=level))
        r.step(f"evaluated noisy test images · seed {seed}")
    r.notes.append(
        "Both models are trained on clean images and tested on noisy copies of the test images "
        "(noise added in pixel units 0..1, clipped, then normalised as in training). "
        "Both models see the same noisy images."
    )


def hardware_subset(n_test: int, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of `n` test images (all of them if n >= n_test)."""
    if n >= n_test:
        return np.arange(n_test)
    return np.sort(np.random.default_rng(seed).choice(n_test, size=n, replace=False))


def noisy_predict_proba(
    model: Any,
    x: Any,
    noise: float = 0.0,
    shots: int | None = None,
    seed: int = 0,
    device: str = "default.mixed",
) -> np.ndarray:
    """Class probabilities of a trained hybrid whose circuit runs on a noisy/finite-shot simulator.

    backbone → angles → `make_qnode(spec, device, shots, noise)` (depolarising p after every
    layer on `default.mixed`) with the trained circuit weights → head. The batch is broadcast
    through the QNode in chunks sized to keep the density matrices within ~256 MB. `seed` fixes
    the shot sampling.
    """
    import torch

    from hqcnn.circuit import make_qnode

    if model.cfg.kind != "hybrid":
        raise ConfigError("Only the hybrid model has a quantum circuit to run on a noisy simulator.")
    spec = model.middle.spec
    weights = model.middle.weights.detach().to("cpu", torch.float64)
    np.random.seed(seed % 2**32)  # PennyLane devices with seed="global" draw their generator from numpy
    qnode = make_qnode(spec, device=device, shots=shots, noise=noise)
    chunk = max(1, min(1024, 2**22 // 4**spec.n_qubits))
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            xb = x[start : start + chunk].to(next(model.parameters()).device)
            angles = model.circuit_angles(xb).to("cpu", torch.float64)
            z = qnode(angles, weights)
            z = torch.stack(list(z), dim=-1) if isinstance(z, (list, tuple)) else z
            z = z.reshape(len(xb), spec.n_qubits).to(xb.device, torch.float32)
            out.append(torch.softmax(model.head(z), 1).cpu())
    return torch.cat(out).double().numpy()


def _shots_label(shots: int | None) -> str:
    return "exact" if shots is None else f"{shots} shots"


def _hardware_noise(r: _Runner) -> None:
    from hqcnn.metrics import classification_metrics
    from hqcnn.train import evaluate

    seeds = r.config.seed_list(r.preset)
    r.total = len(seeds) * 3
    grid = [(p, s) for s in r.preset.shots for p in r.preset.depolarizing]
    for seed in seeds:
        data = r.data(r.preset.train_per_class, seed)
        hybrid, twin = (r.train(model, data, seed, name) for name, model in _pair(r.config.model))
        r.check_stop()
        idx = hardware_subset(len(data.y_test), r.preset.hardware_images, r.config.base_seed)
        x, y = data.x_test[idx], data.y_test[idx]
        common = {"n_eval": len(idx)}
        as_trained = evaluate(hybrid.result.model, x, y)
        r.rows.append(
            r.metrics_row(
                hybrid, as_trained, "as trained (exact, training simulator)", seed, simulator="training", **common
            )
        )
        r.rows.append(
            r.metrics_row(
                twin,
                evaluate(twin.result.model, x, y),
                "classical twin (no quantum part)",
                seed,
                simulator="none",
                **common,
            )
        )
        for i, (p, shots) in enumerate(grid):
            r.check_stop()
            r.report(f"noisy simulator p = {p:g}, {_shots_label(shots)} · seed {seed}", fraction=i / len(grid))
            probs = noisy_predict_proba(hybrid.result.model, x, p, shots, seed=_noise_seed(seed, 7, i))
            metrics = classification_metrics(y.numpy(), probs)
            label = f"p = {p:g}, {_shots_label(shots)}"
            r.rows.append(
                r.metrics_row(
                    hybrid,
                    metrics,
                    label,
                    seed,
                    simulator="default.mixed",
                    p=p,
                    shots=_shots_label(shots),
                    x=p,
                    **common,
                )
            )
        r.step(f"evaluated on the noisy simulator · seed {seed}")
    n_eval = r.rows[0]["n_eval"] if r.rows else r.preset.hardware_images
    r.notes.append(
        f"The trained hybrid is evaluated on {n_eval} test images (a fixed random subset when the test set is larger) "
        "with PennyLane's default.mixed: depolarising noise of probability p on every qubit after every "
        "layer, and exact expectation values or finite shots (one shot-sampled run per image). "
        "The classical twin has no quantum part, so its accuracy is a constant reference. "
        "Depolarising noise shrinks every ⟨Z⟩ towards 0, and the head was trained on noiseless values: "
        "accuracy (a fixed decision threshold) can fall while ROC-AUC (which only ranks images) holds."
    )


def _size_conditions(base: ModelConfig, preset: Preset) -> list[tuple[str, str, ModelConfig]]:
    out: list[tuple[str, str, ModelConfig]] = []
    for q, d in preset.circuit_sizes:
        features = base.n_features if q == base.n_qubits else min(max(2 * q, q), 3 * q)
        model = replace(base, n_qubits=q, depth=d, n_features=features)
        out.append((f"{q} qubits, depth {d}, widths {model.channels[0]}-{model.channels[1]}", "circuit size", model))
    for c1, c2 in preset.widths:
        model = replace(base, channels=(c1, c2))
        out.append((f"{model.n_qubits} qubits, depth {model.depth}, widths {c1}-{c2}", "backbone width", model))
    unique: dict[ModelConfig, tuple[str, str, ModelConfig]] = {}
    for label, family, model in out:
        unique.setdefault(model, (label, family, model))
    return list(unique.values())


def _param_efficiency(r: _Runner) -> None:
    seeds = r.config.seed_list(r.preset)
    conditions = _size_conditions(r.config.model, r.preset)
    r.total = len(conditions) * len(seeds) * 2
    for label, family, base in conditions:
        for seed in seeds:
            data = r.data(r.preset.sweep_train_per_class, seed)
            for name, model in _pair(base):
                outcome = r.train(model, data, seed, f"{name}, {label}")
                r.rows.append(
                    r.base_row(
                        outcome,
                        label,
                        seed,
                        family=family,
                        n_qubits=model.n_qubits,
                        depth=model.depth,
                        channels=f"{model.channels[0]}-{model.channels[1]}",
                        x=outcome.params.total,
                    )
                )
    r.notes.append(
        "Circuit size varies qubits and depth (2 features per qubit unless it is the configured qubit count); "
        "backbone width varies the two convolution widths. Each hybrid has its own parameter-matched twin."
    )


def _ablation_variants(base: ModelConfig, names: Sequence[str]) -> list[tuple[str, str, str, ModelConfig]]:
    out: dict[tuple, tuple[str, str, str, ModelConfig]] = {}
    for key in names:
        ablation = ABLATIONS[key]
        model = ablation.derive(base)
        label = ablation.label
        if key == "baseline":
            label = f"baseline: {base.entangler}, depth {base.depth}, {base.encoding}"
        identity = (
            (model.kind, model)
            if model.kind == "hybrid"
            else (model.kind, replace(model, entangler="ring", encoding="layered", depth=1))
        )
        if identity in out:  # e.g. "depth 2" when the baseline has depth 2
            continue
        out[identity] = (key, label, ablation.group, model)
    return list(out.values())


def _ablations(r: _Runner) -> None:
    seeds = r.config.seed_list(r.preset)
    variants = _ablation_variants(r.config.model, r.preset.ablations)
    r.total = len(variants) * len(seeds)
    for seed in seeds:
        data = r.data(r.preset.sweep_train_per_class, seed)
        for key, label, group, model in variants:
            outcome = r.train(model, data, seed, label)
            depth = 0 if model.kind == "backbone" else model.depth
            r.rows.append(r.base_row(outcome, label, seed, variant=key, group=group, depth=depth, x=depth))
    r.notes.append(
        "Every variant changes one thing of the configured hybrid. 'No circuit' feeds the backbone's features "
        "straight to the head (depth 0); the classical twin replaces the circuit by a classical layer of the same size."
    )


def _paired(r: _Runner) -> None:
    from hqcnn.train import evaluate

    seeds = r.config.seed_list(r.preset, paired=True)
    r.total = len(seeds) * 2
    for seed in seeds:
        data = r.data(r.preset.train_per_class, seed)
        for name, model in _pair(r.config.model):
            outcome = r.train(model, data, seed, name)
            train_accuracy = evaluate(outcome.result.model, data.x_train, data.y_train)["accuracy"]
            row = r.base_row(outcome, "as configured", seed)
            row["train_accuracy"] = train_accuracy
            row["generalisation_gap"] = train_accuracy - row["accuracy"]
            r.rows.append(row)
    r.notes.append(
        "Generalisation gap = accuracy on the (un-augmented) training images minus test accuracy. "
        "Seconds per epoch are wall time of simulated training on this computer, not of a quantum computer."
    )


# ---------------------------------------------------------------------------------------------
# Comparisons per experiment
# ---------------------------------------------------------------------------------------------


def _hardware_words(condition: str) -> str:
    """ "p = 0.01, 100 shots" -> "depolarising p = 0.01 and 100 shots"."""
    p, _, shots = condition.partition(", ")
    return f"depolarising {p} and {'exact read-out' if shots == 'exact' else shots}"


def _compare_hardware(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    reference = {"model": HYBRID, "condition": "p = 0, exact"}
    for condition in _conditions(rows):
        if condition in (reference["condition"],) or not any(
            r["condition"] == condition and r.get("simulator") == "default.mixed" for r in rows
        ):
            continue
        out.append(
            compare(
                rows,
                {"model": HYBRID, "condition": condition},
                reference,
                f"hybrid at {condition} − hybrid exact (p = 0)",
                subject=f"With {_hardware_words(condition)}, the hybrid",
                other="the noiseless circuit",
            )
        )
    if any(r["condition"] == reference["condition"] for r in rows):
        out.append(
            compare(
                rows,
                reference,
                {"model": TWIN},
                "hybrid exact (p = 0) − classical twin",
            )
        )
    return out


def _compare_ablations(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    baseline = next((r["condition"] for r in rows if r.get("variant") == "baseline"), None)
    if baseline is None:
        return []
    out = []
    for condition in _conditions(rows):
        if condition == baseline:
            continue
        out.append(
            compare(
                rows,
                {"condition": baseline},
                {"condition": condition},
                f"baseline − {condition}",
                subject="The baseline hybrid",
                other=condition,
            )
        )
    return out


def _compare_paired(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = _hybrid_vs_twin(rows, ("accuracy", "auc", "f1"))
    a, b = {"model": HYBRID}, {"model": TWIN}
    out.append(
        compare(
            rows,
            a,
            b,
            "generalisation gap: hybrid − classical twin",
            "generalisation_gap",
            subject="The hybrid's train−test accuracy gap",
            other="the classical twin's",
            verb="was",
            higher="larger",
            lower="smaller",
        )
    )
    out.append(
        compare(
            rows,
            a,
            b,
            "seconds per epoch: hybrid − classical twin",
            "seconds_per_epoch",
            subject="The hybrid",
            verb="took",
            scale=1.0,
            unit="s",
            higher="longer per epoch",
            lower="less per epoch",
            decimals=2,
        )
    )
    return out


def _compare_input_noise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = _hybrid_vs_twin(rows, ("accuracy",))
    out.extend(robustness_comparisons(rows))
    return out


def robustness_comparisons(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per noise type: accuracy averaged over the noisy levels (level > 0), hybrid − twin, paired by seed.

    The mean over all noisy levels is the area under the accuracy–noise curve (per level, not per
    σ unit). The drop from clean to the strongest level is not used: once both models predict a
    single class it only repeats the difference in clean accuracy.
    """
    out = []
    for noise in ("gaussian", "salt_pepper"):
        noisy_levels = sorted({r["level"] for r in rows if r.get("noise") == noise and r["level"] > 0})
        if not noisy_levels:
            continue
        synthetic = []
        for model in (HYBRID, TWIN):
            per_seed: dict[int, list[float]] = {}
            for r in rows:
                if r.get("noise") == noise and r["level"] > 0 and r["model"] == model:
                    per_seed.setdefault(r["seed"], []).append(r["accuracy"])
            synthetic += [
                {"model": model, "condition": "noisy", "seed": s, "noisy_accuracy": float(np.mean(v))}
                for s, v in per_seed.items()
                if len(v) == len(noisy_levels)
            ]
        levels = ", ".join(f"{v:g}" for v in noisy_levels)
        comparison = compare(
            synthetic,
            {"model": HYBRID},
            {"model": TWIN},
            f"mean accuracy over {NOISE_LABELS[noise]} {levels}: hybrid − classical twin",
            "noisy_accuracy",
        )
        comparison["noise"] = noise
        comparison["levels"] = noisy_levels
        worst = noisy_levels[-1]
        floor = _mean_of(rows, "majority_accuracy", noise=noise, level=worst)
        collapsed = [
            m
            for m in (HYBRID, TWIN)
            if floor is not None and (_mean_of(rows, model=m, noise=noise, level=worst) or 0) <= floor + 0.005
        ]
        comparison["collapsed_at_worst"] = collapsed
        out.append(comparison)
    return out


def _compare_param_efficiency(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return _hybrid_vs_twin(rows, ("accuracy",))


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentSpec:
    """An experiment: what it asks, how it runs, how its rows are compared."""

    name: str
    title: str
    question: str
    run: Callable[[_Runner], None]
    compare: Callable[[Sequence[dict[str, Any]]], list[dict[str, Any]]]
    claims: tuple[str, ...] = ()


EXPERIMENTS: dict[str, ExperimentSpec] = {
    spec.name: spec
    for spec in (
        ExperimentSpec(
            "low_data",
            "Low data",
            "Does the hybrid beat its classical twin when there are few training images?",
            _low_data,
            _hybrid_vs_twin,
            ("little_data",),
        ),
        ExperimentSpec(
            "input_noise",
            "Input noise",
            "Does the hybrid keep its accuracy better when the test images are noisy?",
            _input_noise,
            _compare_input_noise,
            ("noise",),
        ),
        ExperimentSpec(
            "hardware_noise",
            "Quantum hardware noise",
            "What would noisy quantum hardware (depolarising noise, finite shots) do to the trained hybrid?",
            _hardware_noise,
            _compare_hardware,
            ("hardware",),
        ),
        ExperimentSpec(
            "param_efficiency",
            "Parameter efficiency",
            "For a given number of trainable parameters, which model is more accurate?",
            _param_efficiency,
            _compare_param_efficiency,
            ("parameters",),
        ),
        ExperimentSpec(
            "ablations",
            "Ablations",
            "Which parts of the circuit matter: entanglement, depth (including no circuit at all), encoding?",
            _ablations,
            _compare_ablations,
            ("features",),
        ),
        ExperimentSpec(
            "paired",
            "Paired comparison",
            "Over many seeds, is the hybrid better than its twin: accuracy, AUC, generalisation, training cost?",
            _paired,
            _compare_paired,
            ("features", "generalisation", "cost"),
        ),
    )
}


def _command(name: str, config: ExperimentConfig, preset: Preset) -> str:
    base = ModelConfig()
    parts = ["python -m hqcnn experiment", name, "--preset", preset.name, "--dataset", config.dataset]
    if config.seeds is not None:
        parts += ["--seeds", str(config.seeds)]
    parts += ["--seed", str(config.base_seed)]
    model = config.model
    if (model.n_qubits, model.depth, model.n_features) != (base.n_qubits, base.depth, base.n_features):
        parts += ["--qubits", str(model.n_qubits), "--depth", str(model.depth), "--features", str(model.n_features)]
    if model.entangler != base.entangler:
        parts += ["--entangler", model.entangler]
    if model.encoding != base.encoding:
        parts += ["--encoding", model.encoding]
    if preset.name not in PRESETS or PRESETS[preset.name] != preset:
        parts.append("  # custom preset: see 'preset' in results.json")
    return " ".join(parts)


def run_experiment(
    name: str,
    config: ExperimentConfig | None = None,
    preset: Preset | str = "quick",
    callback: Progress | None = None,
    stop: threading.Event | None = None,
) -> ExperimentResult:
    """Run experiment `name`; returns its result (partial, with `stopped` True, if stopped)."""
    import torch

    if name not in EXPERIMENTS:
        raise ConfigError(f"Unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}.")
    config = config or ExperimentConfig()
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ConfigError(f"Unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}.")
        preset = PRESETS[preset]
    from hqcnn.data import get_info

    get_info(config.dataset)  # a clear DataError for an unknown dataset, before anything runs
    spec = EXPERIMENTS[name]
    runner = _Runner(name, config, preset, callback, stop)
    started_at, started = _now(), time.perf_counter()
    previous_threads = torch.get_num_threads()
    stopped = False
    try:
        runner.report(f"{spec.title}: preparing")
        spec.run(runner)
    except Stopped:
        stopped = True
    finally:
        torch.set_num_threads(previous_threads)  # train.run may have changed it
    if preset.step_budget:
        runner.notes.append(
            f"{preset.name.capitalize()} preset: each model trained for at most about {preset.step_budget} optimiser "
            "steps (the recommended recipe uses about 600). A model that learns more slowly is disadvantaged, so "
            "treat these numbers as a demonstration; the full preset is the fair test."
        )
    if stopped:
        runner.notes.append("Stopped by the user: only the runs that finished are recorded.")
    runner.callback(runner.total if not stopped else runner.done, runner.total, "stopped" if stopped else "done")
    return ExperimentResult(
        name=name,
        config=config.to_dict(),
        preset=preset.to_dict(),
        seeds=config.seed_list(preset, paired=name == "paired"),
        rows=_jsonable(runner.rows),
        notes=runner.notes,
        started_at=started_at,
        finished_at=_now(),
        seconds=time.perf_counter() - started,
        stopped=stopped,
        versions=library_versions(),
        command=_command(name, config, preset),
    )


def strip_timing(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without the wall-time columns: what must be identical when an experiment is repeated."""
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in rows]


# ---------------------------------------------------------------------------------------------
# The paper's Table 2 beside the measurements
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """One expectation of the paper's Table 2 and where it is tested."""

    key: str
    expectation: str
    experiment: str | None
    figure: str


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "features",
        "Better feature representation",
        "paired",
        "Paired comparison (hybrid against twin) and Ablations (against no middle layer): test accuracy with "
        "the same backbone",
    ),
    Claim(
        "little_data",
        "Better performance with little data",
        "low_data",
        "Low data: ACC and AUC against images per class",
    ),
    Claim(
        "noise",
        "Robustness to noise",
        "input_noise",
        "Input noise: accuracy against Gaussian and salt-and-pepper noise",
    ),
    Claim(
        "parameters",
        "Fewer parameters",
        "param_efficiency",
        "Parameter efficiency: accuracy against trainable parameters",
    ),
    Claim("generalisation", "Better generalisation", "paired", "Paired comparison: train−test accuracy gap per seed"),
    Claim("cost", "Optimised computational cost", "paired", "Paired comparison: seconds per training epoch"),
    Claim("interpretability", "Better interpretability", None, "none: no experiment scores interpretability"),
    Claim(
        "hardware",
        "(not in Table 2) Works on today's noisy quantum hardware",
        "hardware_noise",
        "Quantum hardware noise: accuracy against depolarising p and shots",
    ),
)

NOT_MEASURED = "not measured yet"


def _find(comparisons: Sequence[dict[str, Any]], label_start: str, metric: str = "accuracy") -> dict[str, Any] | None:
    return next((c for c in comparisons if c["comparison"].startswith(label_start) and c["metric"] == metric), None)


def _mean_of(rows: Sequence[dict[str, Any]], metric: str = "accuracy", **match: Any) -> float | None:
    values = [r[metric] for r in rows if all(r.get(k) == v for k, v in match.items()) and r.get(metric) is not None]
    return float(np.mean(values)) if values else None


def _claim_features(results: dict[str, ExperimentResult]) -> str | None:
    parts = []
    twin, source = None, ""
    if "paired" in results:  # the dedicated head-to-head (more seeds) decides against the twin
        twin, source = _find(results["paired"].comparisons, "hybrid − classical twin"), "paired comparison"
    if (twin is None or not twin["n"]) and "ablations" in results:
        comps = results["ablations"].comparisons
        twin = next((c for c in comps if c["b"].get("condition", "").startswith("classical twin")), None)
        source = "ablations"
    if twin and twin["n"]:
        parts.append(
            f"Against the classical twin ({source}): " + twin["verdict"].replace("The baseline hybrid", "The hybrid")
        )
    if "ablations" in results:
        comps = results["ablations"].comparisons
        none = next((c for c in comps if c["b"].get("condition", "").startswith("no circuit")), None)
        if none and none["n"]:
            parts.append(
                "Against no middle layer at all (ablations): "
                + none["verdict"].replace("The baseline hybrid", "The hybrid")
            )
    if not parts:
        return None
    return " ".join(parts) + " Test accuracy is an indirect measure of how good the features are."


def _claim_little_data(results: dict[str, ExperimentResult]) -> str | None:
    res = results.get("low_data")
    if res is None:
        return None
    comps = [c for c in res.comparisons if c["metric"] == "accuracy" and c["n"]]
    if not comps:
        return None
    rows = res.rows
    by_x = sorted(comps, key=lambda c: _mean_of(rows, "x", condition=c["a"]["condition"]) or 0)
    smallest = by_x[0]
    higher = sum(1 for c in comps if (c["mean_diff"] or 0) > 0)
    significant = sum(1 for c in comps if c["t_p"] is not None and c["t_p"] < 0.05)
    return (
        f"With {smallest['a']['condition']}: {smallest['verdict']} Over all {len(comps)} sizes the hybrid was ahead "
        f"on average at {higher} and significantly different at {significant} (uncorrected α = 0.05)."
    )


def _claim_noise(results: dict[str, ExperimentResult]) -> str | None:
    res = results.get("input_noise")
    if res is None:
        return None
    parts = []
    for comp in robustness_comparisons(res.rows):
        if not comp["n"]:
            continue
        noise = comp["noise"]
        text = (
            f"{NOISE_LABELS[noise].capitalize()} {', '.join(f'{v:g}' for v in comp['levels'])}: mean accuracy "
            f"hybrid {float(np.mean(comp['a_values'])):.3f}, twin {float(np.mean(comp['b_values'])):.3f}. "
            + comp["verdict"].replace("The hybrid scored", "Under this noise the hybrid scored")
        )
        if len(comp["collapsed_at_worst"]) == 2:
            text += f" At {comp['levels'][-1]:g} both models do no better than always predicting the majority class."
        parts.append(text)
    return " ".join(parts) or None


def _claim_parameters(results: dict[str, ExperimentResult]) -> str | None:
    res = results.get("param_efficiency")
    if res is None:
        return None
    comps = [c for c in res.comparisons if c["n"]]
    rows = res.rows
    if not comps:
        return None
    hybrid_rows = [r for r in rows if r["model"] == HYBRID]
    share = ""
    if hybrid_rows:
        r0 = hybrid_rows[0]
        twin_params = _mean_of(rows, "params", model=TWIN, condition=r0["condition"])
        share = (
            f"At {r0['condition']} the circuit holds {r0['quantum_params']} of the hybrid's {r0['params']:,} trainable "
            f"parameters ({100 * r0['quantum_params'] / r0['params']:.1f}%); the twin has "
            f"{int(twin_params or 0):,} in all. "
        )
    higher = sum(1 for c in comps if (c["mean_diff"] or 0) > 0)
    significant = sum(1 for c in comps if c["t_p"] is not None and c["t_p"] < 0.05)
    return (
        share + f"At {len(comps)} matched sizes the hybrid was more accurate on average at {higher} and significantly "
        f"different at {significant} (uncorrected α = 0.05). The parameter counts are matched by design, so "
        "'fewer parameters' holds only if the hybrid reaches the twin's accuracy at a smaller size: compare the "
        "curves in the figure."
    )


def _claim_generalisation(results: dict[str, ExperimentResult]) -> str | None:
    res = results.get("paired")
    comp = _find(res.comparisons, "generalisation gap", "generalisation_gap") if res else None
    return comp["verdict"] if comp and comp["n"] else None


def _claim_cost(results: dict[str, ExperimentResult]) -> str | None:
    res = results.get("paired")
    comp = _find(res.comparisons, "seconds per epoch", "seconds_per_epoch") if res else None
    if not comp or not comp["n"]:
        return None
    a, b = float(np.mean(comp["a_values"])), float(np.mean(comp["b_values"]))
    ratio = f" (×{a / b:.1f})" if b > 0 else ""
    return (
        f"Simulated training on this computer: hybrid {a:.2f} s per epoch, twin {b:.2f} s{ratio}. {comp['verdict']} "
        "A simulator's cost says little about a quantum computer's, where every circuit needs many shots."
    )


def _claim_hardware(results: dict[str, ExperimentResult]) -> str | None:
    res = results.get("hardware_noise")
    if res is None:
        return None
    comps = res.comparisons
    worst_p = max((r["p"] for r in res.rows if r.get("p") is not None), default=None)
    if worst_p is None:
        return None
    parts = []
    for c in comps:
        cond = c["a"].get("condition", "")
        if not c["n"]:
            continue
        if cond == f"p = {worst_p:g}, exact" or (cond.startswith("p = 0,") and cond.endswith("100 shots")):
            parts.append(c["verdict"])
    same = _exact_matches_model(res.rows)
    if same is not None:
        parts.append(
            "Check: the noiseless default.mixed simulation "
            + ("reproduces" if same else "does NOT reproduce")
            + " the trained model's accuracy on every seed."
        )
    return " ".join(parts) or None


def _exact_matches_model(rows: Sequence[dict[str, Any]]) -> bool | None:
    exact = {r["seed"]: r["accuracy"] for r in rows if r["model"] == HYBRID and r["condition"] == "p = 0, exact"}
    trained = {r["seed"]: r["accuracy"] for r in rows if r.get("simulator") == "training"}
    seeds = set(exact) & set(trained)
    if not seeds:
        return None
    return all(abs(exact[s] - trained[s]) < 1e-9 for s in seeds)


_CLAIM_VERDICTS: dict[str, Callable[[dict[str, ExperimentResult]], str | None]] = {
    "features": _claim_features,
    "little_data": _claim_little_data,
    "noise": _claim_noise,
    "parameters": _claim_parameters,
    "generalisation": _claim_generalisation,
    "cost": _claim_cost,
    "hardware": _claim_hardware,
}


def _key_comparisons(key: str, results: dict[str, ExperimentResult]) -> tuple[list[dict[str, Any]], int, str]:
    """The comparisons that decide a claim, the sign of the difference that supports it, and their unit."""
    if key == "features":  # as in `_claim_features`: the paired comparison first, else the ablations' twin
        if "paired" in results:
            comp = _find(results["paired"].comparisons, "hybrid − classical twin")
            if comp and comp["n"]:
                return [comp], +1, "comparisons"
        if "ablations" in results:
            comps = [
                c for c in results["ablations"].comparisons if c["b"].get("condition", "").startswith("classical twin")
            ]
            return comps, +1, "comparisons"
    if key == "little_data" and "low_data" in results:
        res = results["low_data"]
        small = {r["condition"] for r in res.rows if r.get("train_per_class") is not None}
        comps = [c for c in res.comparisons if c["metric"] == "accuracy" and c["a"]["condition"] in small]
        return comps, +1, "small training-set sizes"
    if key == "noise" and "input_noise" in results:
        return robustness_comparisons(results["input_noise"].rows), +1, "noise types"
    if key == "parameters" and "param_efficiency" in results:
        return results["param_efficiency"].comparisons, +1, "matched sizes"
    if key == "generalisation" and "paired" in results:
        comp = _find(results["paired"].comparisons, "generalisation gap", "generalisation_gap")
        return ([comp] if comp else []), -1, "comparisons"
    if key == "cost" and "paired" in results:
        comp = _find(results["paired"].comparisons, "seconds per epoch", "seconds_per_epoch")
        return ([comp] if comp else []), -1, "comparisons"
    if key == "hardware" and "hardware_noise" in results:
        res = results["hardware_noise"]
        worst_p = max((r["p"] for r in res.rows if r.get("p") is not None), default=None)
        comps = [
            c for c in res.comparisons if worst_p is not None and c["a"].get("condition") == f"p = {worst_p:g}, exact"
        ]
        return comps, +1, "comparisons"
    return [], +1, "comparisons"


def claim_status(key: str, results: dict[str, ExperimentResult], alpha: float = 0.05) -> str:
    """A short verdict on one claim: supported / contradicted / no significant difference / untested.

    "Supported" needs a paired t-test p < `alpha` in the claimed direction (e.g. a smaller
    generalisation gap); "contradicted" the same in the opposite direction. Uncorrected for the
    number of comparisons.
    """
    comps, good, what = _key_comparisons(key, results)
    comps = [c for c in comps if c and c["n"]]
    if not comps:
        return NOT_MEASURED
    n = max(c["n"] for c in comps)
    tested = [c for c in comps if c["t_p"] is not None]
    better = [c for c in tested if c["t_p"] < alpha and (c["mean_diff"] > 0) == (good > 0)]
    worse = [c for c in tested if c["t_p"] < alpha and (c["mean_diff"] > 0) != (good > 0)]
    k = len(comps)
    where = "" if k == 1 else f" at {{}} of {k} {what}"
    seeds = f"{n} seed{'s' if n != 1 else ''}"
    if key == "hardware":
        if worse and not better:
            return f"Accuracy fell significantly under the strongest noise ({seeds})"
        if not tested:
            return f"Untested ({seeds}: no spread or too few seeds)"
        return f"No significant change in accuracy under the strongest noise ({seeds})"
    if better and worse:
        return f"Mixed: supported at {len(better)}, contradicted at {len(worse)} of {k} {what} ({seeds})"
    if better:
        return "Supported" + where.format(len(better)) + f" ({seeds}, p < {alpha:g})"
    if worse:
        return "Contradicted" + where.format(len(worse)) + f" ({seeds}, p < {alpha:g}, opposite direction)"
    if not tested:
        return f"Untested ({seeds}: no spread or too few seeds)"
    return f"No significant difference ({seeds})"


def table2(results: dict[str, ExperimentResult]) -> list[dict[str, str]]:
    """The paper's expectations beside the measured verdicts of the loaded `results` (name → result).

    Each row: claim, figure (which chart tests it), status (a short verdict, see `claim_status`),
    verdict (the sentences with the numbers) and source (which result it comes from).
    """
    out = []
    for claim in CLAIMS:
        if claim.experiment is None:
            status = "Not measured"
            measured = (
                "No experiment here scores interpretability. The Explain page shows attribution "
                "maps and per-qubit read-outs for the hybrid and the twin alike; judging which is more "
                "interpretable needs a study with people."
            )
            source = ""
        else:
            text = _CLAIM_VERDICTS[claim.key](results)
            needed = EXPERIMENTS[claim.experiment].title
            measured = text if text else f"{NOT_MEASURED}: run or load the {needed} experiment."
            status = claim_status(claim.key, results) if text else NOT_MEASURED
            used = [n for n in ("paired", "ablations") if claim.key == "features" and n in results]
            used = used or ([claim.experiment] if claim.experiment in results else [])
            source = ", ".join(
                f"{results[n].title} ({results[n].preset.get('name', '?')} preset, {len(results[n].seeds)} seeds, "
                f"{results[n].dataset})"
                for n in used
            )
        out.append(
            {
                "claim": claim.expectation,
                "figure": claim.figure,
                "status": status,
                "verdict": measured,
                "source": source,
            }
        )
    return out


# ---------------------------------------------------------------------------------------------
# Figures (plotly): every chart has a title, axis titles and confidence bands or error bars
# ---------------------------------------------------------------------------------------------

_STYLE = {HYBRID: ("solid", "circle"), TWIN: ("dash", "diamond"), BACKBONE: ("dot", "square")}


def _colour(model: str) -> str:
    from hqcnn.plots import OKABE_ITO

    return {HYBRID: OKABE_ITO[0], TWIN: OKABE_ITO[1], BACKBONE: OKABE_ITO[2]}.get(model, OKABE_ITO[4])


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _ci_note(result: ExperimentResult) -> str:
    n = len(result.seeds)
    return f"mean of {n} seed{'s' if n != 1 else ''}, 95% CI" if n > 1 else "1 seed: no interval"


def _band_lines(fig: Any, summary: Sequence[dict[str, Any]], metric: str, models: Sequence[str], hover: str) -> None:
    import plotly.graph_objects as go

    for model in models:
        pts = sorted((s for s in summary if s["model"] == model and f"{metric}_mean" in s), key=lambda s: s["x"])
        if not pts:
            continue
        x = [s["x"] for s in pts]
        mean = [s[f"{metric}_mean"] for s in pts]
        low = [s[f"{metric}_ci_low"] for s in pts]
        high = [s[f"{metric}_ci_high"] for s in pts]
        colour, (dash, symbol) = _colour(model), _STYLE.get(model, ("solid", "circle"))
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=high + low[::-1],
                mode="lines",
                fill="toself",
                fillcolor=_rgba(colour, 0.18),
                line={"width": 0},
                hoverinfo="skip",
                name=f"{model}: 95% CI",
                legendgroup=model,
                showlegend=True,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=mean,
                mode="lines+markers",
                name=f"{model} (mean)",
                legendgroup=model,
                line={"color": colour, "dash": dash, "width": 3},
                marker={"symbol": symbol, "size": 10},
                customdata=[[s["condition"], s["n"]] for s in pts],
                hovertemplate="%{customdata[0]}<br>"
                + hover
                + " %{y:.3f} (n = %{customdata[1]})<extra>"
                + model
                + "</extra>",
            )
        )


def _reference_line(fig: Any, y: float | None, text: str) -> None:
    if y is None:
        return
    fig.add_hline(
        y=y,
        line={"color": "#666666", "dash": "dot", "width": 2},
        annotation_text=text,
        annotation_position="bottom right",
    )


def _figure_low_data(result: ExperimentResult) -> dict[str, Any]:
    import plotly.graph_objects as go

    from hqcnn.plots import apply_style

    summary = result.summary
    figs = {}
    for metric, label in (("accuracy", "test accuracy"), ("auc", "test ROC-AUC")):
        fig = go.Figure()
        _band_lines(fig, summary, metric, (HYBRID, TWIN), label)
        if metric == "accuracy":
            _reference_line(fig, _mean_of(result.rows, "majority_accuracy"), "majority-class baseline")
        else:
            _reference_line(fig, 0.5, "chance (AUC 0.5)")
        fig.update_xaxes(type="log")
        ticks = sorted({s["x"]: s["condition"] for s in summary}.items())
        fig.update_xaxes(
            tickvals=[x for x, _ in ticks],
            ticktext=[c.replace(" per class", "") if "per class" in c else f"all ({x:,.0f})" for x, c in ticks],
        )
        apply_style(
            fig,
            f"{_upper_first(label)} against training images per class ({_ci_note(result)})",
            "training images per class (log scale)",
            label,
        )
        figs[f"low_data_{metric}"] = fig
    figs["low_data_difference"] = _difference_figure(result, "Hybrid − classical twin accuracy, per training-set size")
    return figs


def _difference_figure(
    result: ExperimentResult, title: str, metric: str = "accuracy", comparisons: Sequence[dict] | None = None
) -> Any:
    """Mean paired difference (points) with its 95% CI per condition, and every seed's difference."""
    import plotly.graph_objects as go

    from hqcnn.plots import OKABE_ITO, apply_style

    comps = [
        c for c in (comparisons if comparisons is not None else result.comparisons) if c["metric"] == metric and c["n"]
    ]
    fig = go.Figure()
    labels = [
        c["comparison"].split(", ", 1)[-1] if c["comparison"].startswith("hybrid − classical twin") else c["comparison"]
        for c in comps
    ]
    scale = comps[0]["scale"] if comps else 100.0
    unit = comps[0]["unit"] if comps else "points"
    if comps:
        mean = [c["mean_diff"] * scale for c in comps]
        low = [(c["ci_low"] if c["ci_low"] is not None else c["mean_diff"]) * scale for c in comps]
        high = [(c["ci_high"] if c["ci_high"] is not None else c["mean_diff"]) * scale for c in comps]
        fig.add_trace(
            go.Scatter(
                x=labels,
                y=mean,
                mode="markers",
                name="mean difference, 95% CI",
                marker={"color": OKABE_ITO[3], "size": 13, "symbol": "diamond"},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [h - m for h, m in zip(high, mean, strict=True)],
                    "arrayminus": [m - lo for m, lo in zip(mean, low, strict=True)],
                    "thickness": 2,
                    "width": 8,
                },
                customdata=[[c["n"], "n/a" if c["t_p"] is None else f"{c['t_p']:.3f}"] for c in comps],
                hovertemplate="%{x}<br>mean %{y:.2f} "
                + unit
                + "<br>n = %{customdata[0]}, paired t-test p = %{customdata[1]}<extra></extra>",
            )
        )
        xs, ys = [], []
        for label, c in zip(labels, comps, strict=True):
            xs += [label] * len(c["diffs"])
            ys += [d * scale for d in c["diffs"]]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name="one seed",
                marker={"color": "#666666", "size": 7, "symbol": "circle-open"},
                hovertemplate="%{x}<br>%{y:.2f} " + unit + "<extra>one seed</extra>",
            )
        )
    else:
        fig.add_annotation(text="No paired results yet.", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.add_hline(
        y=0,
        line={"color": "#000000", "width": 1.5},
        annotation_text="no difference",
        annotation_position="bottom right",
    )
    return apply_style(
        fig, f"{title} ({_ci_note(result)})", "condition", f"difference ({unit}; above 0: first one higher)"
    )


def _figure_input_noise(result: ExperimentResult) -> dict[str, Any]:
    import plotly.graph_objects as go

    from hqcnn.plots import apply_style

    figs = {}
    for noise, title in (("gaussian", "Gaussian noise"), ("salt_pepper", "Salt-and-pepper noise")):
        rows = [r for r in result.rows if r.get("noise") == noise]
        if not rows:
            continue
        fig = go.Figure()
        _band_lines(fig, summarize(rows), "accuracy", (HYBRID, TWIN), "test accuracy")
        _reference_line(fig, _mean_of(result.rows, "majority_accuracy"), "majority-class baseline")
        x_title = (
            "noise standard deviation σ (pixel values 0–1)"
            if noise == "gaussian"
            else "fraction of pixels set to black or white"
        )
        apply_style(fig, f"Test accuracy under {title.lower()} ({_ci_note(result)})", x_title, "test accuracy")
        figs[f"input_noise_{noise}"] = fig
    per_level = [c for c in result.comparisons if c["comparison"].startswith("hybrid − classical twin")]
    if per_level:
        figs["input_noise_difference"] = _difference_figure(
            result, "Hybrid − classical twin accuracy at each noise level", "accuracy", per_level
        )
    return figs


def _hardware_figure(result: ExperimentResult, metric: str, label: str) -> Any:
    import plotly.graph_objects as go

    from hqcnn.plots import OKABE_ITO, apply_style

    summary = result.summary
    fig = go.Figure()
    shots_order = list(dict.fromkeys(r["shots"] for r in result.rows if r.get("simulator") == "default.mixed"))
    dashes = ["solid", "dash", "dot", "dashdot"]
    symbols = ["circle", "square", "triangle-up", "x"]
    ps = sorted({r["p"] for r in result.rows if r.get("p") is not None})
    categories = [f"{p:g}" for p in ps]
    for i, shots in enumerate(shots_order):
        pts = sorted((s for s in summary if s.get("shots") == shots and s["model"] == HYBRID), key=lambda s: s["p"])
        mean = [s[f"{metric}_mean"] for s in pts]
        fig.add_trace(
            go.Scatter(
                x=[f"{s['p']:g}" for s in pts],
                y=mean,
                mode="lines+markers",
                name=f"hybrid, {shots}",
                line={"color": OKABE_ITO[(i * 2) % 8] if i else OKABE_ITO[0], "dash": dashes[i % 4], "width": 3},
                marker={"symbol": symbols[i % 4], "size": 11},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [s[f"{metric}_ci_high"] - s[f"{metric}_mean"] for s in pts],
                    "arrayminus": [s[f"{metric}_mean"] - s[f"{metric}_ci_low"] for s in pts],
                    "thickness": 1.5,
                },
                hovertemplate="p = %{x}<br>" + label + " %{y:.3f}<extra>hybrid, " + str(shots) + "</extra>",
            )
        )
    twin = next((s for s in summary if s["model"] == TWIN and f"{metric}_mean" in s), None)
    if twin and categories:
        colour = _colour(TWIN)
        # A shape, not a filled trace: the grouped x offsets of the hybrid's series would bend a filled trace.
        fig.add_hrect(
            y0=twin[f"{metric}_ci_low"],
            y1=twin[f"{metric}_ci_high"],
            fillcolor=_rgba(colour, 0.18),
            line_width=0,
            layer="below",
            annotation_text="classical twin: 95% CI",
            annotation_position="top left",
        )
        fig.add_trace(
            go.Scatter(
                x=categories,
                y=[twin[f"{metric}_mean"]] * len(categories),
                mode="lines",
                name="classical twin (no quantum part)",
                line={"color": colour, "dash": "longdash", "width": 2},
                hovertemplate="classical twin %{y:.3f}<extra></extra>",
            )
        )
    if metric == "accuracy":
        _reference_line(fig, _mean_of(result.rows, "majority_accuracy"), "majority-class baseline")
    else:
        _reference_line(fig, 0.5, "chance (AUC 0.5)")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=categories)
    fig.update_layout(scattermode="group", scattergap=0.6)  # side by side, so error bars do not overlap
    # Grouped scatter autoranges like bars (from 0); set the range from the data and the reference line.
    lows = [s[f"{metric}_ci_low"] for s in summary if f"{metric}_ci_low" in s]
    reference = _mean_of(result.rows, "majority_accuracy") if metric == "accuracy" else 0.5
    bottom = min([*lows, reference if reference is not None else 1.0]) - 0.05
    fig.update_yaxes(range=[max(0.0, bottom), 1.02])
    n_eval = result.rows[0].get("n_eval") if result.rows else "?"
    apply_style(
        fig,
        f"{_upper_first(label)} of the trained hybrid on a noisy quantum simulator ({n_eval} test images, "
        f"{_ci_note(result)})",
        "depolarising probability p per qubit per layer",
        label,
    )
    return fig


def _figure_hardware(result: ExperimentResult) -> dict[str, Any]:
    return {
        "hardware_noise_accuracy": _hardware_figure(result, "accuracy", "test accuracy"),
        "hardware_noise_auc": _hardware_figure(result, "auc", "test ROC-AUC"),
    }


def _figure_param_efficiency(result: ExperimentResult) -> dict[str, Any]:
    import plotly.graph_objects as go

    from hqcnn.plots import apply_style

    fig = go.Figure()
    for model in (HYBRID, TWIN):
        pts = [s for s in result.summary if s["model"] == model]
        if not pts:
            continue
        dash, symbol = _STYLE[model]
        fig.add_trace(
            go.Scatter(
                x=[s["params"] for s in pts],
                y=[s["accuracy_mean"] for s in pts],
                mode="markers",
                name=model,
                marker={"color": _colour(model), "symbol": symbol, "size": 12, "line": {"color": "white", "width": 1}},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [s["accuracy_ci_high"] - s["accuracy_mean"] for s in pts],
                    "arrayminus": [s["accuracy_mean"] - s["accuracy_ci_low"] for s in pts],
                    "thickness": 1.5,
                },
                customdata=[[s["condition"], s.get("quantum_params", 0)] for s in pts],
                hovertemplate="%{customdata[0]}<br>%{x:,} parameters (%{customdata[1]} in the circuit)"
                "<br>accuracy %{y:.3f}<extra>" + model + "</extra>",
            )
        )
    _reference_line(fig, _mean_of(result.rows, "majority_accuracy"), "majority-class baseline")
    fig.update_xaxes(type="log")
    apply_style(
        fig,
        f"Test accuracy against model size ({_ci_note(result)})",
        "trainable parameters (log scale)",
        "test accuracy",
    )
    return {
        "param_efficiency": fig,
        "param_efficiency_difference": _difference_figure(result, "Hybrid − classical twin accuracy at matched sizes"),
    }


def _figure_ablations(result: ExperimentResult) -> dict[str, Any]:
    import plotly.graph_objects as go

    from hqcnn.plots import apply_style

    summary = result.summary
    fig = go.Figure()
    for model in (HYBRID, BACKBONE, TWIN):
        pts = [s for s in summary if s["model"] == model]
        if not pts:
            continue
        fig.add_trace(
            go.Bar(
                x=[s["condition"] for s in pts],
                y=[s["accuracy_mean"] for s in pts],
                name=model,
                marker={"color": _colour(model), "pattern": {"shape": "" if model == HYBRID else "/"}},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [s["accuracy_ci_high"] - s["accuracy_mean"] for s in pts],
                    "arrayminus": [s["accuracy_mean"] - s["accuracy_ci_low"] for s in pts],
                    "thickness": 2,
                },
                text=[f"{s['accuracy_mean']:.3f}" for s in pts],
                textposition="inside",
                hovertemplate="%{x}<br>accuracy %{y:.3f}<extra>" + model + "</extra>",
            )
        )
    order = [s["condition"] for s in summary]
    fig.update_xaxes(categoryorder="array", categoryarray=order)
    lows = [s["accuracy_ci_low"] for s in summary] or [0.5]
    fig.update_yaxes(range=[max(0.0, min(lows) - 0.1), 1.0])
    _reference_line(fig, _mean_of(result.rows, "majority_accuracy"), "majority-class baseline")
    fig.update_layout(barmode="group", height=520)
    apply_style(fig, f"Test accuracy of each variant ({_ci_note(result)})", "variant", "test accuracy")
    return {
        "ablations": fig,
        "ablations_difference": _difference_figure(result, "Baseline hybrid − each variant, accuracy"),
    }


def _figure_paired(result: ExperimentResult) -> dict[str, Any]:
    import plotly.graph_objects as go

    from hqcnn.plots import apply_style

    rows = result.rows
    fig = go.Figure()
    seeds = sorted({r["seed"] for r in rows})
    for seed in seeds:
        pair = {r["model"]: r["accuracy"] for r in rows if r["seed"] == seed}
        if {HYBRID, TWIN} <= set(pair):
            fig.add_trace(
                go.Scatter(
                    x=[HYBRID, TWIN],
                    y=[pair[HYBRID], pair[TWIN]],
                    mode="lines+markers",
                    line={"color": "#BBBBBB", "width": 1.5},
                    marker={"color": "#666666", "size": 7},
                    name="one seed (paired)",
                    legendgroup="seeds",
                    showlegend=seed == seeds[0],
                    hovertemplate="seed " + str(seed) + "<br>%{x}: %{y:.3f}<extra></extra>",
                )
            )
    for s in result.summary:
        fig.add_trace(
            go.Scatter(
                x=[s["model"]],
                y=[s["accuracy_mean"]],
                mode="markers",
                name=f"{s['model']}: mean, 95% CI",
                marker={"color": _colour(s["model"]), "size": 16, "symbol": _STYLE[s["model"]][1]},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [s["accuracy_ci_high"] - s["accuracy_mean"]],
                    "arrayminus": [s["accuracy_mean"] - s["accuracy_ci_low"]],
                    "thickness": 2.5,
                    "width": 12,
                },
                hovertemplate="%{x}: mean %{y:.3f}<extra></extra>",
            )
        )
    apply_style(fig, f"Test accuracy per seed, hybrid beside its twin ({_ci_note(result)})", "model", "test accuracy")
    comps = [c for c in result.comparisons if c["metric"] in ("accuracy", "auc", "f1", "generalisation_gap")]
    # One difference figure across metrics (all in points).
    diff = _multi_metric_difference(result, comps)
    cost = go.Figure()
    for s in result.summary:
        if "seconds_per_epoch_mean" not in s:
            continue
        cost.add_trace(
            go.Bar(
                x=[s["model"]],
                y=[s["seconds_per_epoch_mean"]],
                name=s["model"],
                marker={"color": _colour(s["model"]), "pattern": {"shape": "" if s["model"] == HYBRID else "/"}},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [s["seconds_per_epoch_ci_high"] - s["seconds_per_epoch_mean"]],
                    "arrayminus": [s["seconds_per_epoch_mean"] - s["seconds_per_epoch_ci_low"]],
                    "thickness": 2,
                },
                text=[f"{s['seconds_per_epoch_mean']:.2f} s"],
                textposition="inside",
                hovertemplate="%{x}: %{y:.2f} s per epoch<extra></extra>",
            )
        )
    apply_style(
        cost, f"Training time per epoch, simulated on this computer ({_ci_note(result)})", "model", "seconds per epoch"
    )
    return {"paired_seeds": fig, "paired_difference": diff, "paired_cost": cost}


_METRIC_NAMES = {"accuracy": "accuracy", "auc": "ROC-AUC", "f1": "F1", "generalisation_gap": "train−test gap"}


def _multi_metric_difference(result: ExperimentResult, comps: Sequence[dict[str, Any]]) -> Any:
    relabelled = [{**c, "comparison": _METRIC_NAMES.get(c["metric"], c["metric"]), "metric": "all"} for c in comps]
    fig = _difference_figure(result, "Paired differences, hybrid − classical twin", "all", relabelled)
    fig.update_xaxes(title_text="metric")
    return fig


_FIGURES: dict[str, Callable[[ExperimentResult], dict[str, Any]]] = {
    "low_data": _figure_low_data,
    "input_noise": _figure_input_noise,
    "hardware_noise": _figure_hardware,
    "param_efficiency": _figure_param_efficiency,
    "ablations": _figure_ablations,
    "paired": _figure_paired,
}


def figures(result: ExperimentResult) -> dict[str, Any]:
    """The experiment's plotly figures, by name (an empty dict when it has no rows)."""
    if not result.rows:
        return {}
    return _FIGURES[result.name](result)


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
