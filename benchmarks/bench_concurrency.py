"""How training time grows when several app sessions train at once on one server.

    python benchmarks/bench_concurrency.py [--sessions 1 2 4 8] [--epochs 3]

Runs N `ui.training.TrainingJob`s at the same time in one process, exactly as N browser sessions
of one `streamlit run app.py` server would (same training slots, one torch thread each), each on
PneumoniaMNIST 28×28 with its own seed. Reports the median seconds per epoch while training, the
median wait for a slot, and the wall time until the last session finished.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hqcnn.config import DataConfig, RunConfig, TrainConfig  # noqa: E402
from hqcnn.data import prepare  # noqa: E402
from ui.training import HYBRID, MAX_CONCURRENT, TrainingJob  # noqa: E402


def measure(n_sessions: int, epochs: int, data) -> dict:
    """Start `n_sessions` jobs together and wait for all of them."""
    jobs = [
        TrainingJob(RunConfig(train=TrainConfig(epochs=epochs, seed=seed)), data, with_twin=False)
        for seed in range(n_sessions)
    ]
    started = time.perf_counter()
    for job in jobs:
        job.start()
    for job in jobs:
        job._thread.join()
    wall = time.perf_counter() - started
    assert all(HYBRID in job.outcomes and job.error is None for job in jobs), [job.error for job in jobs]
    per_epoch = [job.outcomes[HYBRID].result.seconds_per_epoch for job in jobs]
    # Time from pressing Train to finishing, less the run itself: the wait for a training slot.
    waits = [(job.finished_at - job.started_at) - job.outcomes[HYBRID].seconds for job in jobs]
    return {
        "sessions": n_sessions,
        "epoch_s_median": statistics.median(per_epoch),
        "wait_s_median": statistics.median(waits),
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = prepare(DataConfig())
    rows = [measure(n, args.epochs, data) for n in args.sessions]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    base = rows[0]["epoch_s_median"]
    print(f"{MAX_CONCURRENT} training slot(s); {args.epochs} epochs per session on PneumoniaMNIST 28×28")
    print("| sessions | s per epoch while training | × one session | median wait for a slot, s | wall s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['sessions']} | {row['epoch_s_median']:.2f} | {row['epoch_s_median'] / base:.2f} | "
              f"{row['wait_s_median']:.1f} | {row['wall_s']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
