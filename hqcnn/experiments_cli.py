"""`python -m hqcnn experiment NAME`: run one experiment (or all) and write its run folder.

    python -m hqcnn experiment low_data --preset quick            # about a minute on 2 CPU cores
    python -m hqcnn experiment paired --preset full --seeds 10 --out runs/experiments/paired-full
    python -m hqcnn experiment all --preset quick                  # every experiment, one folder each

Prints a table (mean and 95% CI per model and condition) and the paired verdicts, or with
--json the whole results.json. Ctrl-C stops after the current batch and saves what finished.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from hqcnn.config import ENCODINGS, ENTANGLERS, ModelConfig

# Kept here (not imported from hqcnn.experiments) so that building the parser stays light; a
# test checks that they match the registry.
EXPERIMENT_NAMES = ("low_data", "input_noise", "hardware_noise", "param_efficiency", "ablations", "paired")
PRESET_NAMES = ("quick", "full")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `experiment` command to the subparsers of `python -m hqcnn`."""
    defaults = ModelConfig()
    p = subparsers.add_parser(
        "experiment",
        help="measure the hybrid against its classical twin (low data, noise, size, ablations, ...)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", choices=[*EXPERIMENT_NAMES, "all"], help="which experiment ('all' runs each in turn)")
    p.add_argument("--preset", choices=PRESET_NAMES, default="quick", help="quick (classroom) or full (report)")
    p.add_argument("--dataset", default="pneumoniamnist", help="MedMNIST name (see 'datasets')")
    p.add_argument("--seeds", type=int, default=None, help="seeds per condition (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, help="first seed; seeds used are SEED, SEED+1, ...")
    p.add_argument("--qubits", type=int, default=defaults.n_qubits, help="qubits of the base hybrid")
    p.add_argument("--depth", type=int, default=defaults.depth, help="circuit depth of the base hybrid")
    p.add_argument("--features", type=int, default=None, help="features into the circuit (default 2 per qubit)")
    p.add_argument("--entangler", default=defaults.entangler, choices=ENTANGLERS)
    p.add_argument("--encoding", default=defaults.encoding, choices=ENCODINGS)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest for these small models)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run folder to write (for 'all': the parent folder); default runs/experiments/NAME-PRESET-DATASET-TIME",
    )
    p.add_argument("--json", action="store_true", help="print results.json instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_experiment)
    return p


def _config(args: argparse.Namespace) -> Any:
    from hqcnn.experiments import ExperimentConfig

    features = args.features if args.features is not None else 2 * args.qubits
    model = ModelConfig(
        n_qubits=args.qubits,
        depth=args.depth,
        n_features=features,
        entangler=args.entangler,
        encoding=args.encoding,
    )
    return ExperimentConfig(
        dataset=args.dataset, seeds=args.seeds, base_seed=args.seed, model=model, threads=args.threads
    )


def _run_with_bar(name: str, config: Any, preset: str, quiet: bool) -> Any:
    """Run on a worker thread so that Ctrl-C can set the stop flag and keep the finished runs."""
    from tqdm import tqdm

    from hqcnn.experiments import run_experiment

    stop = threading.Event()
    bar = tqdm(
        total=1,
        unit="run",
        desc=name,
        disable=quiet,
        file=sys.stderr,
        bar_format="{l_bar}{bar}| {n:.1f}/{total} [{elapsed}<{remaining}] {postfix}",
    )
    outcome: dict[str, Any] = {}

    def report(done: float, total: int, message: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(message[:60], refresh=False)
        bar.refresh()

    def work() -> None:
        try:
            outcome["result"] = run_experiment(name, config, preset, report, stop)
        except BaseException as err:  # handed to the main thread, which reports it
            outcome["error"] = err

    worker = threading.Thread(target=work, name=f"hqcnn-experiment-{name}", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        stop.set()
        bar.write("Stopping after the current batch; the finished runs will be saved…")
        worker.join()
    bar.close()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _print_result(result: Any, folder: Path) -> None:
    from hqcnn.experiments import summary_table

    table = summary_table(result)
    keys = list(table[0]) if table else []
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in table)) for k in keys}
    print(f"\n{result.title} on {result.dataset} ({result.preset.get('name')} preset, seeds {result.seeds})")
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for row in table:
        print("  ".join(str(row.get(k, "")).ljust(widths[k]) for k in keys))
    print("\nPaired comparisons (hybrid − classical twin unless named):")
    for comp in result.comparisons:
        print(f"- {comp['comparison']} [{comp['metric']}]: {comp['verdict']}")
    for note in result.notes:
        print(f"Note: {note}")
    state = "STOPPED early, partial results" if result.stopped else "finished"
    print(f"\n{state} in {result.seconds:.1f} s; saved to {folder}")
    print(f"Reproduce: {result.command}")


def cmd_experiment(args: argparse.Namespace) -> int:
    """Run the experiment(s), save each run folder, print the results."""
    from hqcnn.experiments import EXPERIMENTS, default_folder, safe_name

    config = _config(args)
    names = list(EXPERIMENTS) if args.name == "all" else [args.name]
    for name in names:
        result = _run_with_bar(name, config, args.preset, args.quiet or args.json)
        if args.out is None:
            folder = default_folder(result)
        elif args.name == "all":
            folder = args.out / f"{name}-{args.preset}-{safe_name(args.dataset)}"
        else:
            folder = args.out
        result.save(folder)
        if args.json:
            print(result.json_text())
        else:
            _print_result(result, folder)
        if result.stopped:
            return 130
    return 0
