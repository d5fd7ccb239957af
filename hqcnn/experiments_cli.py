"""`python -m hqcnn experiment NAME`: run one study (or all) and write its run folder.

    python -m hqcnn experiment low_data --preset quick                # about a minute on 2 CPU cores
    python -m hqcnn experiment paired --preset full --executor ray    # every core of this machine
    python -m hqcnn experiment paired --preset full --executor ray --address HEAD:6379   # a cluster
    python -m hqcnn experiment all --preset quick                     # every study, one folder each
    python -m hqcnn experiment paired --preset full --resume          # continue an interrupted run
    python -m hqcnn experiment all --preset full --executor ray --out results/shipped \\
        --datasets pneumoniamnist breastmnist retinamnist             # the set shipped with the app

Prints a table (mean and 95% CI per model and condition) and the paired verdicts, or with
--json the whole results.json. Each finished training is recorded in the run folder at once:
Ctrl-C stops, saves what finished, and --resume continues from there.

A results set: with 'all' or several --datasets, --out names the set's folder. It gets one run
folder per study and dataset (OUT/STUDY-PRESET-DATASET) and OUT/provenance.json (commit,
versions, machine, executor, command, times, skipped studies; hqcnn/experiments/provenance.py).
--resume continues an interrupted set; runs that finished are kept as they are.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from hqcnn.cli_options import add_config_arguments, config_from_args
from hqcnn.config import ModelConfig
from hqcnn.experiments.presets import MODEL_FLAGS


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `experiment` command to the subparsers of `python -m hqcnn`."""
    from hqcnn.experiments import EXECUTORS, PRESETS, STUDIES

    p = subparsers.add_parser(
        "experiment",
        help="measure the hybrid against its classical twin (low data, noise, size, ablations, ...)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", choices=[*STUDIES, "all"], help="which study ('all' runs each in turn)")
    p.add_argument("--preset", choices=list(PRESETS), default="quick", help="quick (classroom) or full (report)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--dataset", default="pneumoniamnist", help="MedMNIST name (see 'datasets')")
    which.add_argument("--datasets", nargs="+", default=None, metavar="DATASET",
                       help="several datasets, one after another (a results set: --out is its folder)")  # fmt: skip
    p.add_argument("--seeds", type=int, default=None, help="seeds per condition (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, help="first seed; seeds used are SEED, SEED+1, ...")
    add_config_arguments(p.add_argument_group("the base hybrid (its twin is derived)"), ModelConfig, MODEL_FLAGS)
    p.add_argument("--threads", type=int, default=1, help="torch threads per training (default 1: fastest here)")
    p.add_argument("--executor", choices=EXECUTORS, default="local", help="local: one training after another; "
                   "ray: trainings in parallel on a Ray cluster (an embedded one unless --address)")  # fmt: skip
    p.add_argument("--workers", type=int, default=None, help="trainings at once on Ray (default: every CPU)")
    p.add_argument("--address", default=None, help="Ray cluster to join, e.g. HEAD:6379 (default: $RAY_ADDRESS)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run folder to write (for 'all' or several datasets: the set's folder, with provenance.json); "
        "default runs/experiments/NAME-PRESET-DATASET-TIME",
    )
    p.add_argument("--resume", action="store_true",
                   help="continue the run or set in --out (default: the newest run of its kind)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print results.json instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_experiment)
    return p


def _datasets(args: argparse.Namespace) -> list[str]:
    """The datasets to run on, each checked before anything runs (a typo must not cost hours)."""
    from hqcnn.data import get_info
    from hqcnn.errors import ConfigError

    datasets = args.datasets or [args.dataset]
    if len(set(datasets)) != len(datasets):
        raise ConfigError("A dataset is listed twice in --datasets.")
    for dataset in datasets:
        get_info(dataset)  # a DataError naming it when unknown
    return datasets


def _is_set(args: argparse.Namespace) -> bool:
    """Several runs under one --out: every study, or several datasets."""
    return args.name == "all" or len(args.datasets or ()) > 1


def _config(args: argparse.Namespace, dataset: str) -> Any:
    from hqcnn.experiments import ExperimentConfig

    model = config_from_args(ModelConfig, args, names=MODEL_FLAGS)
    return ExperimentConfig(dataset=dataset, seeds=args.seeds, base_seed=args.seed, model=model, threads=args.threads)


def _folder(args: argparse.Namespace, name: str, dataset: str) -> Path:
    """The run folder of study `name` on `dataset`: in --out, the newest resumable one, or a new one."""
    from hqcnn.experiments import RunLog, default_folder, runs_dir, safe_name
    from hqcnn.experiments.provenance import run_folder_name

    if args.out is not None:
        return args.out / run_folder_name(name, args.preset, dataset) if _is_set(args) else args.out
    if args.resume:
        prefix = f"{name}-{args.preset}-{safe_name(dataset)}-"
        found = sorted(p for p in runs_dir().glob(prefix + "*") if RunLog(p).path.is_file())
        if found:
            return found[-1]  # the time stamp in the name sorts them
        print(f"No earlier {name} run to resume in {runs_dir()}: starting a new one.", file=sys.stderr)
    return default_folder(name, args.preset, dataset)


def _run_with_bar(name: str, args: argparse.Namespace, config: Any, folder: Path, resume: bool) -> Any:
    """Run on a worker thread so that Ctrl-C can set the stop flag and keep the finished trainings."""
    from tqdm import tqdm

    from hqcnn.experiments import run_study

    stop = threading.Event()
    bar = tqdm(total=1, unit="training", desc=name, disable=args.quiet or args.json, file=sys.stderr,
               bar_format="{l_bar}{bar}| {n:.1f}/{total} [{elapsed}<{remaining}] {postfix}")  # fmt: skip
    outcome: dict[str, Any] = {}

    def report(done: float, total: int, message: str) -> None:
        bar.total, bar.n = total, done
        bar.set_postfix_str(message[:60], refresh=False)
        bar.refresh()

    finished = threading.Event()

    def work() -> None:
        try:
            outcome["result"] = run_study(
                name, config, args.preset, report, stop, executor=args.executor, workers=args.workers,
                address=args.address, folder=folder, resume=resume,
            )  # fmt: skip
        except BaseException as err:  # handed to the main thread, which reports it
            outcome["error"] = err
        finally:
            finished.set()

    worker = threading.Thread(target=work, name=f"hqcnn-experiment-{name}", daemon=True)
    worker.start()
    # Waiting on an Event, not on Thread.join: on Python 3.11 a Ctrl-C inside join() marks the
    # still-running thread as stopped, and the next join() returns before its result exists.
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        stop.set()
        bar.write("Stopping; the finished trainings are kept (continue with --resume)…")
        finished.wait()
    bar.close()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _print_result(result: Any, folder: Path) -> None:
    from hqcnn.experiments import summary_table

    print(f"\n{result.title} on {result.dataset} ({result.preset.get('name')} preset, seeds {result.seeds})")
    print(summary_table(result).to_string(index=False))
    print("\nPaired comparisons (hybrid − classical twin unless named):")
    for comp in result.comparisons:
        print(f"- {comp.label} [{comp.metric}]: {comp.verdict}")
    for note in result.notes:
        print(f"Note: {note}")
    state = "STOPPED early, partial results" if result.stopped else "finished"
    print(f"\n{state} in {result.seconds:.1f} s; saved to {folder}")
    print(f"Reproduce: {result.command}")


def _set_record(args: argparse.Namespace, names: list[str], datasets: list[str], config: Any) -> Any:
    """The provenance of the set being computed in --out (None for a single run or without --out)."""
    import shlex

    from hqcnn.experiments.executors import ADDRESS_ENV
    from hqcnn.experiments.provenance import SetRecord, settings

    if args.out is None or not _is_set(args):
        return None
    ray = args.executor == "ray"
    joined = ray and bool(args.address or os.environ.get(ADDRESS_ENV))
    executor = {
        "executor": args.executor,
        # trainings at once: one locally; on Ray --workers, else every CPU (of the cluster when joined: None)
        "workers": (args.workers or (None if joined else os.cpu_count())) if ray else 1,
        "cluster": ("joined" if joined else "embedded") if ray else None,
    }
    record = SetRecord(
        args.out,
        settings(args.preset, datasets, names, config.to_dict()),
        command="python -m hqcnn " + shlex.join(getattr(args, "argv", None) or sys.argv[1:]),
        executor=executor,
        resume=args.resume,
    )
    record.write(complete=False)  # at once: an interrupted set is recognisable as one
    return record


def cmd_experiment(args: argparse.Namespace) -> int:
    """Run the study (or each study) on the dataset (or each dataset), save each run folder, print the results."""
    import torch

    from hqcnn.experiments import STUDIES, RunLog
    from hqcnn.experiments.run import LOG_NAME, finished_run, resolve_preset

    datasets = _datasets(args)
    names = list(STUDIES) if args.name == "all" else [args.name]
    torch.set_num_threads(args.threads)  # here, on the main thread, for the local executor's trainings
    if args.executor == "ray":
        from hqcnn.experiments.executors import start_ray

        # On the main thread: Ray started on a run's worker thread ends the process when the next run
        # (on a new thread) uses it, so 'all' and several datasets would stop after the first run.
        start_ray(args.workers, args.address)
    record = _set_record(args, names, datasets, _config(args, datasets[0]))
    complete = False
    try:
        for dataset in datasets:
            config = _config(args, dataset)
            for name in names:
                reason = STUDIES[name].unavailable(config) if _is_set(args) else None
                if reason:  # one missing optional package must not stop the other studies
                    print(f"Skipping {STUDIES[name].title} on {dataset}: {reason}", file=sys.stderr)
                    if record:
                        record.skip(name, dataset, reason)
                    continue
                folder = _folder(args, name, dataset)
                earlier = finished_run(folder, name, config, resolve_preset(args.preset)) if record and args.resume else None
                if earlier is not None:
                    record.keep(name, dataset, folder, earlier)
                    print(f"{STUDIES[name].title} on {dataset}: finished earlier, kept ({folder}).", file=sys.stderr)
                    continue
                # --resume continues the runs that started and starts the others, except the single run
                # that --out names, which must be there ("no run to resume" otherwise).
                named = args.out is not None and not _is_set(args)
                resume = args.resume and (named or RunLog(folder).path.is_file())
                started = time.perf_counter()
                result = _run_with_bar(name, args, config, folder, resume)
                if record:
                    record.add(name, dataset, folder, time.perf_counter() - started, result)
                    record.write(complete=False)
                if args.json:
                    print(result.json_text())
                else:
                    _print_result(result, folder)
                if result.stopped:
                    return 130
        complete = True
    finally:
        if record and not complete:
            record.write(complete=False)  # whatever stopped the set, the times so far are kept for --resume
    if record:
        path = record.finish(LOG_NAME)
        print(f"Results set complete: {args.out} (provenance in {path.name}).", file=sys.stderr)
    return 0
