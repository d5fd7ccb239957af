"""Forward+backward time of the quantum layer: PennyLane default.qubit vs the fast simulator.

    python benchmarks/bench_quantum.py --repeats 20 --json results.json

Times TorchLayer(default.qubit, backprop, broadcast) and FastCircuitLayer at (4, 2), (5, 4) and
(8, 4) with batch 128 in float32 (what training uses) and float64, interleaved in one run, and
lightning.qubit + adjoint when pennylane_lightning is installed. The machine is shared and
noisy: compare the ratios of one run, not absolute times across runs. torch runs on one thread
unless --threads says otherwise (see --help for why).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import hqcnn  # noqa: F401
except ImportError:  # run from a checkout without installing: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from hqcnn.bench import DEFAULT_SIZES, format_rows, lightning_available, quantum_layer_benchmark


def _sizes(text: str) -> list[tuple[int, int]]:
    """'4x2,5x4' → [(4, 2), (5, 4)]."""
    try:
        return [(int(q), int(d)) for q, d in (item.split("x") for item in text.split(","))]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"sizes look like 4x2,5x4 (qubits x depth), got {text!r}") from err


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, optionally write JSON; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats per layer (median)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per layer first")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument(
        "--sizes", type=_sizes, default=list(DEFAULT_SIZES), help="qubits x depth list, e.g. 4x2,5x4,8x4"
    )
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1; 0 keeps torch's default). On a shared 2-core machine two "
        "threads made both layers 10-100x slower at random, waiting on OpenMP workers descheduled by other "
        "processes; one thread gives stable ratios",
    )
    parser.add_argument("--no-lightning", action="store_true", help="skip lightning.qubit")
    parser.add_argument("--lightning-repeats", type=int, default=5, help="repeats for lightning.qubit (slow)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    lightning = lightning_available() and not args.no_lightning
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    print(
        f"batch {args.batch}, {args.repeats} repeats, torch threads {torch.get_num_threads()}, "
        f"lightning.qubit: {'on' if lightning else 'skipped'}",
        flush=True,
    )
    print(format_rows([]), flush=True)  # the header; rows follow as they are measured
    rows = []
    for name in dtypes:
        rows += quantum_layer_benchmark(
            args.sizes,
            args.batch,
            args.repeats,
            getattr(torch, name),
            warmup=args.warmup,
            lightning=lightning,
            lightning_repeats=args.lightning_repeats,
            progress=lambda line: print(line, flush=True),
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
