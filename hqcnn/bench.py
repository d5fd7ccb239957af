"""Timing of the quantum layer: PennyLane's TorchLayer against the compiled fast simulator.

Used by `benchmarks/bench_quantum.py` (and meant for the CLI). default.qubit and the fast layer
run on the same inputs and weights, interleaved repeat by repeat (in a rotating order), after a
warm-up, so that drifts in machine load hit both alike; medians are reported. lightning.qubit is
timed afterwards, on its own: its OpenMP worker threads keep spinning after each call and, on a
two-core machine, slowed whatever ran next by 10-50x when it was interleaved with the others.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable, Sequence

import pennylane as qml
import torch

from hqcnn import circuit
from hqcnn.circuit import CircuitSpec, torch_layer
from hqcnn.fastsim import FastCircuitLayer

DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((4, 2), (5, 4), (8, 4))


def lightning_available() -> bool:
    """Whether `pennylane_lightning` (lightning.qubit) is installed."""
    return importlib.util.find_spec("pennylane_lightning") is not None


def lightning_layer(spec: CircuitSpec) -> qml.qnn.TorchLayer:
    """The same circuit on lightning.qubit with adjoint differentiation (it has no backprop,
    so `circuit.make_qnode`, which asks for backprop, cannot be used)."""
    dev = qml.device("lightning.qubit", wires=spec.n_qubits)

    def qfunc(inputs: torch.Tensor, weights: torch.Tensor) -> list:
        circuit.circuit_ops(spec, inputs, weights)
        return [qml.expval(qml.PauliZ(q)) for q in range(spec.n_qubits)]

    qnode = qml.QNode(qfunc, dev, interface="torch", diff_method="adjoint")
    return qml.qnn.TorchLayer(qnode, {"weights": spec.weight_shape})


def _step_seconds(layer: torch.nn.Module, angles: torch.Tensor) -> float:
    """Wall time of one forward + backward (gradients w.r.t. inputs and weights)."""
    layer.zero_grad(set_to_none=True)
    angles.grad = None
    start = time.perf_counter()
    layer(angles).sum().backward()
    return time.perf_counter() - start


def quantum_layer_benchmark(
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    batch: int = 128,
    repeats: int = 20,
    dtype: torch.dtype = torch.float32,
    warmup: int = 3,
    lightning: bool | None = None,
    lightning_repeats: int = 5,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Median forward+backward time per (n_qubits, depth), with n_features = 2·n_qubits, the
    default encoding (layered) and entangler (ring).

    Returns one dict per size: n_qubits, depth, n_features, batch, dtype, repeats, threads,
    default_qubit_ms, fast_ms, lightning_ms (None when skipped), speedup (default/fast),
    lightning_speedup (lightning/fast, or None) and max_abs_diff (fast vs default.qubit
    outputs, a sanity check). `lightning=None` times lightning.qubit (adjoint, which splits the
    broadcast batch into one circuit per sample: ~0.2-3 s per call) when it is installed, with
    `min(repeats, lightning_repeats)` repeats.
    """
    if lightning is None:
        lightning = lightning_available()
    torch.manual_seed(seed)
    rows = []
    for n_qubits, depth in sizes:
        spec = CircuitSpec(n_qubits=n_qubits, depth=depth, n_features=2 * n_qubits)
        reference = torch_layer(spec).to(dtype)
        layers: dict[str, torch.nn.Module] = {"default_qubit": reference, "fast": FastCircuitLayer(spec).to(dtype)}
        with torch.no_grad():  # identical weights everywhere
            layers["fast"].weights.copy_(reference.weights)

        angles = torch.pi * torch.tanh(torch.randn(batch, spec.n_features, dtype=dtype))
        angles.requires_grad_(True)
        with torch.no_grad():
            diff = (layers["fast"](angles) - reference(angles)).abs().max().item()

        names = list(layers)
        times: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(warmup):
            for name in names:
                _step_seconds(layers[name], angles)
        for r in range(repeats):
            for k in range(len(names)):  # rotate the order so no implementation always goes first
                name = names[(r + k) % len(names)]
                times[name].append(_step_seconds(layers[name], angles))

        if lightning:
            light = lightning_layer(spec).to(dtype)
            with torch.no_grad():
                light.weights.copy_(reference.weights)
            _step_seconds(light, angles)  # warm-up
            times["lightning"] = [_step_seconds(light, angles) for _ in range(min(repeats, lightning_repeats))]

        med = {name: 1e3 * statistics.median(values) for name, values in times.items()}
        row = {
            "n_qubits": n_qubits,
            "depth": depth,
            "n_features": spec.n_features,
            "batch": batch,
            "dtype": str(dtype).removeprefix("torch."),
            "repeats": repeats,
            "threads": torch.get_num_threads(),
            "default_qubit_ms": med["default_qubit"],
            "fast_ms": med["fast"],
            "lightning_ms": med.get("lightning"),
            "speedup": med["default_qubit"] / med["fast"],
            "lightning_speedup": med["lightning"] / med["fast"] if "lightning" in med else None,
            "max_abs_diff": diff,
        }
        rows.append(row)
        if progress is not None:
            progress(format_rows([row]).splitlines()[-1])
    return rows


def format_rows(rows: Sequence[dict]) -> str:
    """A plain-text table of `quantum_layer_benchmark` rows (header included)."""
    header = (
        f"{'qubits':>6} {'depth':>5} {'dtype':>7} {'default.qubit ms':>16} {'fast ms':>8} "
        f"{'speed-up':>8} {'lightning ms':>12} {'fast vs lightning':>17} {'max |diff|':>10}"
    )
    lines = [header]
    for row in rows:
        light = "skipped" if row["lightning_ms"] is None else f"{row['lightning_ms']:.2f}"
        light_ratio = "-" if row["lightning_speedup"] is None else f"{row['lightning_speedup']:.1f}x"
        lines.append(
            f"{row['n_qubits']:>6} {row['depth']:>5} {row['dtype']:>7} {row['default_qubit_ms']:>16.2f} "
            f"{row['fast_ms']:>8.3f} {row['speedup']:>7.1f}x {light:>12} {light_ratio:>17} "
            f"{row['max_abs_diff']:>10.1e}"
        )
    return "\n".join(lines)


def epoch_benchmark(dataset: str = "pneumoniamnist", repeats: int = 3, device: str = "cpu") -> dict:
    """Median seconds of one training epoch (validation excluded) of the hybrid model on the fast
    path, the hybrid on PennyLane's TorchLayer, and the classical twin, interleaved per repeat.

    The full training split at 28×28 with the default configuration (batch 128, augmentation on).
    """
    from dataclasses import replace

    from hqcnn.config import DataConfig, ModelConfig, TrainConfig
    from hqcnn.data import prepare
    from hqcnn.model import build_model
    from hqcnn.train import seed_everything, train_model

    data = prepare(DataConfig(dataset=dataset))
    cfg = TrainConfig(epochs=1, device=device)
    variants = {
        "hybrid_fast": (ModelConfig(), "fast"),
        "hybrid_pennylane": (ModelConfig(), "pennylane"),
        "classical": (replace(ModelConfig(), kind="classical"), "auto"),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(repeats + 1):  # the first round warms up caches and allocators
        for k in range(len(variants)):
            name = list(variants)[(r + k) % len(variants)]
            model_cfg, backend = variants[name]
            seed_everything(0)
            model = build_model(model_cfg, data.in_channels, data.n_classes, backend=backend)
            result = train_model(model, data, cfg)
            if r > 0:
                seconds[name].append(result.seconds_per_epoch)
    med = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "dataset": dataset,
        "device": device,
        "n_train": len(data.y_train),
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        **{f"{name}_s": value for name, value in med.items()},
        "fast_vs_classical": med["hybrid_fast"] / med["classical"],
        "pennylane_vs_classical": med["hybrid_pennylane"] / med["classical"],
    }


def peak_memory_mb(epochs: int = 10, threads: int = 1) -> dict:
    """Peak resident memory of a default `python -m hqcnn train` run, measured in a fresh process."""
    import json
    import subprocess
    import sys

    code = (
        "import json, resource, time, torch\n"
        f"torch.set_num_threads({threads})\n"
        "from hqcnn.config import RunConfig, TrainConfig\n"
        "from hqcnn.train import run\n"
        "start = time.perf_counter()\n"
        f"outcome = run(RunConfig(train=TrainConfig(epochs={epochs})))\n"
        "print(json.dumps({'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " 'seconds': time.perf_counter() - start, 'test_accuracy': outcome.test['accuracy'],"
        " 'test_auc': outcome.test['auc']}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {"epochs": epochs, "threads": threads, **json.loads(done.stdout.strip().splitlines()[-1])}
