"""300 test images on a simulated IBM device: the batched path against one circuit per image.

    python benchmarks/bench_device_noise.py [--images 300] [--shots 1000] [--backend fake_manila]

Batched (`hqcnn.device_noise`): the circuit transpiled once, every image's angles bound into it,
one Aer job (density matrix, then shots sampled). Unbatched: what one would write first, each
image's OpenQASM export parsed, transpiled and run as its own Aer job. Both take the same model
(untrained: the time does not depend on the weights) and the same images; both are timed in one
run, so compare their ratio. Needs requirements-quantum.txt.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:
    import hqcnn  # noqa: F401
except ImportError:  # run from a checkout without installing: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from hqcnn import device_noise as dn
from hqcnn.circuit import to_openqasm
from hqcnn.config import ModelConfig
from hqcnn.model import build_model


def unbatched(model, x, backend: str, shots: int, seed: int) -> np.ndarray:
    from qiskit import QuantumCircuit, transpile
    from qiskit_aer import AerSimulator

    device = dn.fake_backend(backend)
    simulator = AerSimulator.from_backend(device, method="density_matrix", max_parallel_threads=torch.get_num_threads())
    weights = model.middle.weights.detach().double()
    with torch.no_grad():
        angles = model.circuit_angles(x).double()
    out = []
    for i, a in enumerate(angles):
        circuit = transpile(QuantumCircuit.from_qasm_str(to_openqasm(model.middle.spec, a, weights)), device,
                            optimization_level=1, seed_transpiler=dn.TRANSPILE_SEED)  # fmt: skip
        counts = simulator.run(circuit, shots=shots, seed_simulator=seed + i).result().get_counts()
        out.append(dn.readout_from_counts([counts], model.cfg.n_qubits)[0])
    with torch.no_grad():
        return torch.softmax(model.head(torch.as_tensor(np.array(out), dtype=torch.float32)), 1).double().numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--shots", type=int, default=1000)
    p.add_argument("--backend", default="fake_manila", choices=list(dn.BACKENDS))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(ModelConfig(), 1, 2).eval()
    x = torch.randn(args.images, 1, 28, 28)
    dn.device_predict_proba(model, x[:2], args.backend, args.shots)  # imports and the backend snapshot, once
    start = time.perf_counter()
    batched, compiled = dn.device_predict_proba(model, x, args.backend, args.shots, seed=1)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    single = unbatched(model, x, args.backend, args.shots, seed=1)
    t_single = time.perf_counter() - start
    print(f"{args.images} images, {args.shots} shots, {dn.backend_label(args.backend)}, {args.threads} threads; "
          f"transpiled depth {compiled.depth}, {compiled.two_qubit_gates} two-qubit gates")  # fmt: skip
    print(f"batched (transpile once, one Aer job): {t_batched:.2f} s")
    print(f"unbatched (QASM → transpile → Aer job per image): {t_single:.2f} s  (×{t_single / t_batched:.1f})")
    print(f"largest probability difference between the two: {np.abs(batched - single).max():.3f} (shot noise)")


if __name__ == "__main__":
    main()
