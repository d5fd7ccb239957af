"""The studies' executors compared: one study run locally and on Ray, in one run, with identical tables.

    python benchmarks/bench_experiments.py [--study paired] [--preset full] [--dataset pneumoniamnist]
                                           [--workers 2] [--json]

1. Ray's start-up: an embedded cluster (`ray.init`) and the first round of tasks (each worker
   process imports torch and PennyLane once).
2. The study with `--executor local` (one training after another, one torch thread), then with
   `--executor ray --workers N` on the same cluster: wall times, their ratio, and whether the two
   tables are identical bit for bit (timing columns aside).
3. A projection of every study × the three bundled datasets on 2, 16 and 64 cores, from the time
   per optimiser step measured in step 2 (hybrid and twin apart) and each task's number of steps,
   scheduled longest first onto the cores. It leaves out evaluation (e.g. the noisy simulator of
   hardware_noise) and the cost of more qubits, so read it as the order of magnitude.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hqcnn import experiments as ex  # noqa: E402
from hqcnn.data import BUNDLED, get_info  # noqa: E402
from hqcnn.experiments import executors, tasks  # noqa: E402

CORES = (2, 16, 64)


def ray_start_up(workers: int) -> dict[str, float]:
    """Seconds to start the embedded cluster, and for the first tasks on fresh workers."""
    started = time.perf_counter()
    ray = executors.start_ray(workers=workers)
    init = time.perf_counter() - started

    @ray.remote(num_cpus=1)
    def warm() -> int:
        import pennylane  # noqa: F401
        import torch

        return torch.get_num_threads()

    started = time.perf_counter()
    ray.get([warm.remote() for _ in range(workers)])
    return {"init_s": init, "first_tasks_s": time.perf_counter() - started}


def task_steps(task: ex.Task) -> int:
    """Optimiser steps of a task's training, from its data's size and the trimmed recipe."""
    n_train = get_info(task.data.dataset).training_images(task.data.train_per_class)
    config = tasks.train_config(n_train, task.seed, task.budget)
    return config.epochs * math.ceil(n_train / config.batch_size)


def seconds_per_step(result: ex.ExperimentResult) -> dict[str, float]:
    """Mean training seconds per optimiser step of each model kind, from a result's rows."""
    config, preset = ex.ExperimentConfig.from_dict(result.config), ex.Preset.from_dict(result.preset)
    study_tasks = ex.STUDIES[result.name].tasks(config, preset)
    out = {}
    for kind, model in (("hybrid", ex.HYBRID), ("classical", ex.TWIN)):
        steps = sum(task_steps(t) for t in study_tasks if t.model.kind == kind)
        out[kind] = float(result.table.loc[result.table["model"] == model, "seconds"].sum() / steps)
    out["backbone"] = out["classical"]
    return out


def makespan(durations: list[float], cores: int) -> float:
    """Wall time of independent tasks scheduled longest first onto `cores` workers."""
    loads = [0.0] * cores
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + d)
    return max(loads)


def durations(name: str, per_step: dict[str, float], preset: ex.Preset) -> list[float]:
    """Projected seconds of each training of study `name` on every bundled dataset."""
    return [
        task_steps(t) * per_step[t.model.kind]
        for dataset in BUNDLED
        for t in ex.STUDIES[name].tasks(ex.ExperimentConfig(dataset=dataset), preset)
    ]


def projection(per_step: dict[str, float], preset: ex.Preset) -> dict[str, dict[str, float]]:
    """Projected minutes of every study (and all of them) on the bundled datasets, per number of cores."""
    each = {name: durations(name, per_step, preset) for name in ex.STUDIES}
    each["all studies"] = [d for values in each.values() for d in values]
    return {
        name: {"tasks": len(values), **{f"{k} cores": makespan(values, k) / 60 for k in CORES}}
        for name, values in each.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", default="paired", choices=list(ex.STUDIES))
    parser.add_argument("--preset", default="full", choices=list(ex.PRESETS))
    parser.add_argument("--dataset", default="pneumoniamnist")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    config = ex.ExperimentConfig(dataset=args.dataset)
    start_up = ray_start_up(args.workers)
    timed = {}
    results = {}
    for executor in ("local", "ray"):
        started = time.perf_counter()
        results[executor] = ex.run_study(args.study, config, args.preset, executor=executor, workers=args.workers)
        timed[executor] = time.perf_counter() - started
    identical = ex.without_timing(results["local"].table).equals(ex.without_timing(results["ray"].table))
    per_step = seconds_per_step(results["local"])
    report = {
        "study": args.study,
        "preset": args.preset,
        "dataset": args.dataset,
        "trainings": results["local"].executor["tasks"],
        "ray_start_up": start_up,
        "local_s": timed["local"],
        f"ray_{args.workers}_workers_s": timed["ray"],
        "speed_up": timed["local"] / timed["ray"],
        "identical_tables": identical,
        "seconds_per_step": per_step,
        "projection_minutes": projection(per_step, ex.PRESETS[args.preset]),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.study}, {args.preset} preset, {args.dataset}: {report['trainings']} trainings")
        print(f"Ray start-up: cluster {start_up['init_s']:.1f} s, first tasks on fresh workers {start_up['first_tasks_s']:.1f} s")
        print(f"local: {timed['local']:.0f} s; ray with {args.workers} workers: {timed['ray']:.0f} s; "
              f"speed-up ×{report['speed_up']:.2f}; identical tables: {identical}")  # fmt: skip
        print(f"seconds per optimiser step: hybrid {per_step['hybrid'] * 1000:.1f} ms, twin {per_step['classical'] * 1000:.1f} ms")
        print(f"\nProjected wall time of the {args.preset} preset on the bundled datasets (minutes):")
        print(f"{'study':<18}{'trainings':>10}" + "".join(f"{f'{k} cores':>12}" for k in CORES))
        for name, row in report["projection_minutes"].items():
            print(f"{name:<18}{row['tasks']:>10}" + "".join(f"{row[f'{k} cores']:>12.1f}" for k in CORES))
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
