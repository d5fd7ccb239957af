"""A results set on disk: every study on several datasets, with how it was made.

A set is the folder that `python -m hqcnn experiment all --datasets ... --out SET` writes: one run
folder per study and dataset, and provenance.json (`hqcnn.experiments.provenance`). `load_set`
reads it strictly: a missing or damaged file is an HQCNNError naming it, and a set that is not
finished is refused. The app ships one (`shipped_dir()`) and the Experiments page opens on it.

The shipped set is not one of the "published" run folders (`published_dir()`, listed under
"Load saved results"): those are single runs a user loads one by one into a session, while a set
is read as a whole, with its provenance. `list_runs` lists only the folders directly inside the
published folder, so the set's run folders (one level further down) never appear in that list.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hqcnn.errors import HQCNNError
from hqcnn.experiments.provenance import PROVENANCE_FILE, UNKNOWN, read_provenance
from hqcnn.experiments.registry import STUDIES
from hqcnn.experiments.results import ROOT, ExperimentResult

SHIPPED_ENV = "HQCNN_SHIPPED_DIR"  # folder of the results set shipped with the app (default results/shipped)
Sets = Mapping[str, Mapping[str, ExperimentResult]]  # dataset → study name → result


def shipped_dir() -> Path:
    """Where the app finds its shipped results set: $HQCNN_SHIPPED_DIR, else results/shipped in the project."""
    custom = os.environ.get(SHIPPED_ENV)
    return Path(custom).expanduser() if custom else ROOT / "results" / "shipped"


@dataclass
class ResultsSet:
    """Every run of a set, by dataset and study (in the registry's order), and its provenance."""

    folder: Path
    results: dict[str, dict[str, ExperimentResult]]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def datasets(self) -> list[str]:
        return list(self.results)

    @property
    def preset(self) -> str:
        """The preset its runs were computed with (as the results record it)."""
        names = {r.preset.get("name", "?") for runs in self.results.values() for r in runs.values()}
        return ", ".join(sorted(map(str, names))) or str(self.provenance.get("settings", {}).get("preset", "?"))

    @property
    def seeds(self) -> list[int]:
        """How many seeds its studies ran, each number once, smallest first."""
        return sorted({len(r.seeds) for runs in self.results.values() for r in runs.values()})

    @property
    def skipped(self) -> list[dict[str, str]]:
        """The studies that could not run where the set was computed, with the reason."""
        return [s for s in self.provenance.get("skipped", []) if isinstance(s, dict)]


def exists(folder: str | Path | None = None) -> bool:
    """Whether there is a set to show in `folder` (default `shipped_dir()`): the folder exists."""
    return Path(folder if folder is not None else shipped_dir()).is_dir()


def load_set(folder: str | Path | None = None) -> ResultsSet:
    """Read the set in `folder` (default `shipped_dir()`): every run that provenance.json lists.

    Refused with an HQCNNError naming the file: a missing or damaged provenance.json or
    results.json, an unfinished set or run, a run folder outside the set, a run of another study
    or dataset than its entry says, a dataset that is not a MedMNIST one.
    """
    from hqcnn.data import DATASETS

    folder = Path(folder if folder is not None else shipped_dir())
    provenance = read_provenance(folder)
    path = folder / PROVENANCE_FILE
    if provenance.get("complete") is not True:
        raise HQCNNError(
            f"The results set in {folder} is not finished ({path} says so): continue it with the command it records "
            "and --resume."
        )
    by_dataset: dict[str, dict[str, ExperimentResult]] = {}
    for run in provenance["runs"]:
        study, dataset, name = run["study"], run["dataset"], run["folder"]
        if study not in STUDIES:
            raise HQCNNError(f"{path} lists an unknown study {study!r}.")
        if dataset not in DATASETS:
            raise HQCNNError(f"{path} lists {dataset!r}, which is not a MedMNIST dataset.")
        if Path(name).name != name or name in ("", ".", ".."):
            raise HQCNNError(f"{path} lists a run folder outside the set ({name!r}).")
        source = folder / name / "results.json"
        result = ExperimentResult.load(source)  # an HQCNNError naming the file when it is missing or damaged
        if result.name != study or result.dataset != dataset:
            raise HQCNNError(f"{source} holds {result.name} on {result.dataset}, not {study} on {dataset}.")
        if result.stopped or run.get("finished") is False:
            raise HQCNNError(f"{source} is a run that was stopped early: the set is not finished.")
        by_dataset.setdefault(dataset, {})[study] = result
    if not by_dataset:
        raise HQCNNError(f"{path} lists no runs.")
    order = [d for d in provenance.get("settings", {}).get("datasets", []) if d in by_dataset]
    datasets = order + [d for d in by_dataset if d not in order]
    results = {d: {n: by_dataset[d][n] for n in STUDIES if n in by_dataset[d]} for d in datasets}
    return ResultsSet(folder, results, provenance)


def wall_time(seconds: float | None) -> str:
    """A duration in words: "2 h 05 min", "4 min 10 s", "35 s"."""
    if seconds is None:
        return "an unrecorded time"
    s = round(float(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def machine_text(machine: Mapping[str, Any]) -> str:
    """The machine in a few words: "Linux x86_64, 16 CPUs, 62.8 GiB"."""
    parts = [" ".join(str(machine[k]) for k in ("system", "machine") if machine.get(k)) or "an unrecorded machine"]
    if machine.get("cpus"):
        parts.append(f"{machine['cpus']} CPUs")
    if machine.get("memory_gib"):
        parts.append(f"{machine['memory_gib']} GiB")
    return ", ".join(parts)


def commit_text(provenance: Mapping[str, Any]) -> str:
    """Which code computed the set: "commit abc1234", noting uncommitted changes and a resume on other code."""
    git = provenance.get("git") or {}
    commit = str(git.get("commit") or UNKNOWN)
    if commit == UNKNOWN:
        return "an unknown commit"
    text = f"commit {commit[:7]}"
    if git.get("dirty") is True:
        text += " with uncommitted changes"
    others = {
        str((s.get("git") or {}).get("commit", UNKNOWN))[:7]
        for s in provenance.get("sessions", [])
        if isinstance(s, dict)
    }
    others -= {commit[:7]}
    if others:
        text += f" (parts computed on {', '.join(sorted(others))})"
    return text


def label(results_set: ResultsSet, what: str = "Shipped results") -> str:
    """One line saying what the set is: code, preset, seeds, machine, wall time."""
    seeds = results_set.seeds
    seed_text = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}" if seeds else "?"
    provenance = results_set.provenance
    return (
        f"{what} of {commit_text(provenance)}, {results_set.preset} preset, {seed_text} seeds, "
        f"computed on {machine_text(provenance.get('machine') or {})} in {wall_time(provenance.get('wall_seconds'))}"
    )
