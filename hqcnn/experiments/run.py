"""`run_experiment`: one experiment from its configuration to an `ExperimentResult`."""

from __future__ import annotations

import threading
import time

from hqcnn.config import ModelConfig
from hqcnn.errors import ConfigError
from hqcnn.experiments.presets import PRESETS, ExperimentConfig, Preset
from hqcnn.experiments.registry import EXPERIMENTS
from hqcnn.experiments.results import ExperimentResult, _jsonable, _now, library_versions
from hqcnn.experiments.runner import Progress, Stopped, _Runner


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
