"""`python -m hqcnn experiment NAME`: run one study (or all) and write its run folder.

    python -m hqcnn experiment low_data --preset quick                # about a minute on 2 CPU cores
    python -m hqcnn experiment paired --preset full --executor ray    # every core of this machine
    python -m hqcnn experiment paired --preset full --executor ray --address HEAD:6379   # a cluster
    python -m hqcnn experiment all --preset quick                     # every study, one folder each
    python -m hqcnn experiment paired --preset full --resume          # continue an interrupted run

Prints a table (mean and 95% CI per model and condition) and the paired verdicts, or with
--json the whole results.json. Each finished training is recorded in the run folder at once:
Ctrl-C stops, saves what finished, and --resume continues from there.
"""

from __future__ import annotations

import argparse
import sys
import threading
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
    p.add_argument("--dataset", default="pneumoniamnist", help="MedMNIST name (see 'datasets')")
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
        help="run folder to write (for 'all': the parent folder); default runs/experiments/NAME-PRESET-DATASET-TIME",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out (default: the newest of its kind)")
    p.add_argument("--json", action="store_true", help="print results.json instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_experiment)
    return p


def _config(args: argparse.Namespace) -> Any:
    from hqcnn.experiments import ExperimentConfig

    model = config_from_args(ModelConfig, args, names=MODEL_FLAGS)
    return ExperimentConfig(dataset=args.dataset, seeds=args.seeds, base_seed=args.seed, model=model, threads=args.threads)


def _folder(args: argparse.Namespace, name: str) -> Path:
    """The run folder of study `name`: --out, the newest resumable one, or a new one."""
    from hqcnn.experiments import RunLog, default_folder, runs_dir, safe_name

    if args.out is not None:
        return args.out / f"{name}-{args.preset}-{safe_name(args.dataset)}" if args.name == "all" else args.out
    if args.resume:
        prefix = f"{name}-{args.preset}-{safe_name(args.dataset)}-"
        found = sorted(p for p in runs_dir().glob(prefix + "*") if RunLog(p).path.is_file())
        if found:
            return found[-1]  # the time stamp in the name sorts them
        print(f"No earlier {name} run to resume in {runs_dir()}: starting a new one.", file=sys.stderr)
    return default_folder(name, args.preset, args.dataset)


def _run_with_bar(name: str, args: argparse.Namespace, config: Any, folder: Path) -> Any:
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

    def work() -> None:
        try:
            outcome["result"] = run_study(
                name, config, args.preset, report, stop, executor=args.executor, workers=args.workers,
                address=args.address, folder=folder, resume=args.resume,
            )  # fmt: skip
        except BaseException as err:  # handed to the main thread, which reports it
            outcome["error"] = err

    worker = threading.Thread(target=work, name=f"hqcnn-experiment-{name}", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        stop.set()
        bar.write("Stopping; the finished trainings are kept (continue with --resume)…")
        worker.join()
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


def cmd_experiment(args: argparse.Namespace) -> int:
    """Run the study (or each study), save each run folder, print the results."""
    import torch

    from hqcnn.experiments import STUDIES

    config = _config(args)
    torch.set_num_threads(config.threads)  # here, on the main thread, for the local executor's trainings
    for name in list(STUDIES) if args.name == "all" else [args.name]:
        reason = STUDIES[name].unavailable(config) if args.name == "all" else None
        if reason:  # one missing optional package must not stop the other studies
            print(f"Skipping {STUDIES[name].title}: {reason}", file=sys.stderr)
            continue
        folder = _folder(args, name)
        result = _run_with_bar(name, args, config, folder)
        if args.json:
            print(result.json_text())
        else:
            _print_result(result, folder)
        if result.stopped:
            return 130
    return 0
