"""A trained hybrid's circuit on the noise of a real quantum computer, offline.

Qiskit's fake IBM backends carry a calibration snapshot of a real device (T1/T2, gate and
read-out errors, its coupling map). The circuit comes from the one definition
(`hqcnn.circuit.circuit_gates`, recorded from `circuit_ops`) as a Qiskit circuit whose encoded
angles stay free parameters; it is transpiled once per model for the device, so the CNOT ring pays
for its SWAPs on the coupling map, then every test image binds its angles and the whole batch runs
as one Qiskit Aer job with the device's noise model. Aer's density-matrix method gives the exact
noisy state of each circuit and samples the shots from it, so 100 or 10,000 shots cost the same.

The Qiskit packages are optional (`requirements-quantum.txt`); without them, `require_qiskit`
raises a `MissingPackageError` that says how to install them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hqcnn.errors import ConfigError, MissingPackageError

if TYPE_CHECKING:
    from hqcnn.circuit import CircuitSpec


@dataclass(frozen=True)
class Backend:
    """A fake backend of qiskit-ibm-runtime: its class and what it is, in words."""

    class_name: str
    label: str
    qubits: int  # held to the snapshot's own count by the tests


BACKENDS: dict[str, Backend] = {
    "fake_manila": Backend("FakeManilaV2", "IBM Manila (5 qubits in a line)", 5),
    "fake_nairobi": Backend("FakeNairobiV2", "IBM Nairobi (7 qubits, H-shaped)", 7),
    "fake_kolkata": Backend("FakeKolkataV2", "IBM Kolkata (27 qubits, heavy-hex)", 27),
}
SMALLEST_DEVICE = min(b.qubits for b in BACKENDS.values())
IDEAL = "ideal"  # noiseless Aer with the same shots: shot noise alone, the reference of each device
TRANSPILE_SEED = 0  # the transpiler's layout and routing are randomised; fixed, a model's circuit is too
MAX_BATCH = 500  # circuits per Aer job: bounds the memory of one job's results
INSTALL = "pip install -r requirements-quantum.txt"


def require_qiskit() -> None:
    """Raise a plain MissingPackageError unless qiskit, qiskit-aer and qiskit-ibm-runtime import."""
    try:
        import qiskit  # noqa: F401
        import qiskit_aer  # noqa: F401
        import qiskit_ibm_runtime.fake_provider  # noqa: F401
    except ImportError as err:
        raise MissingPackageError(
            "Running the circuit on a real device's noise needs the optional Qiskit packages "
            f"(qiskit, qiskit-aer, qiskit-ibm-runtime), which are not installed here ({err.name} is missing). "
            f"Install them with: {INSTALL}"
        ) from None


def qiskit_available() -> bool:
    """Whether the device-noise simulation can run here."""
    try:
        require_qiskit()
    except MissingPackageError:
        return False
    return True


def backend_label(key: str) -> str:
    return "ideal simulator (no noise)" if key == IDEAL else BACKENDS[key].label


@functools.cache
def fake_backend(key: str) -> Any:
    """The fake backend named `key` (one of BACKENDS); built once per process (it parses a snapshot)."""
    if key not in BACKENDS:
        raise ConfigError(f"Unknown device {key!r}; choose from {', '.join(BACKENDS)}.")
    require_qiskit()
    from qiskit_ibm_runtime import fake_provider

    return getattr(fake_provider, BACKENDS[key].class_name)()


def qiskit_circuit(spec: CircuitSpec) -> tuple[Any, Any, Any]:
    """(circuit, x, w): the circuit as Qiskit gates, with parameter vectors for the encoded angles and
    the weights (flattened in `spec.weight_shape` order), measuring qubit i into classical bit i."""
    require_qiskit()
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector

    from hqcnn.circuit import circuit_gates

    x = ParameterVector("x", spec.n_features)
    w = ParameterVector("w", spec.n_weights)
    qc = QuantumCircuit(spec.n_qubits, spec.n_qubits)
    for gate in circuit_gates(spec):
        if gate.name == "CNOT":
            qc.cx(*gate.wires)
            continue
        if gate.role == "encoding":
            angle = x[gate.feature]
        elif gate.role == "trainable":
            angle = w[int(np.ravel_multi_index(gate.weight, spec.weight_shape))]
        else:
            raise ConfigError(f"The circuit has a gate ({gate.name}) that cannot be sent to a device.")
        {"RX": qc.rx, "RY": qc.ry, "RZ": qc.rz}[gate.name](angle, gate.wires[0])
    qc.measure(range(spec.n_qubits), range(spec.n_qubits))
    return qc, x, w


@dataclass(frozen=True)
class CompiledCircuit:
    """A trained circuit transpiled for one device, its encoded angles still free."""

    backend: str
    circuit: Any  # qiskit.QuantumCircuit
    x: Any  # its ParameterVector of encoded angles
    n_qubits: int
    depth: int  # of the transpiled circuit, measurements included
    two_qubit_gates: int
    physical_qubits: tuple[int, ...]  # where the logical qubits were placed
    cx_error: float | None  # median two-qubit gate error over the couplings used
    readout_error: float | None  # median read-out error over the measured qubits


def _median_errors(circuit: Any, target: Any) -> tuple[float | None, float | None]:
    two, readout = [], []
    for item in circuit.data:
        qubits = tuple(circuit.find_bit(q).index for q in item.qubits)
        name = item.operation.name
        if len(qubits) == 2 or name == "measure":
            props = target[name].get(qubits) if name in target else None
            if props is not None and props.error is not None:
                (two if len(qubits) == 2 else readout).append(props.error)
    median = lambda v: float(np.median(v)) if v else None  # noqa: E731
    return median(two), median(readout)


def compile_circuit(spec: CircuitSpec, weights: np.ndarray, backend: str) -> CompiledCircuit:
    """The circuit with its trained `weights` bound, transpiled for `backend` (or IDEAL: as written)."""
    qc, x, w = qiskit_circuit(spec)
    qc = qc.assign_parameters(dict(zip(w, np.asarray(weights, dtype=float).ravel(), strict=True)))
    if backend == IDEAL:
        return CompiledCircuit(
            IDEAL, qc, x, spec.n_qubits, qc.depth(), qc.num_nonlocal_gates(), tuple(range(spec.n_qubits)), None, None
        )
    device = fake_backend(backend)
    if spec.n_qubits > device.num_qubits:
        raise ConfigError(
            f"A {spec.n_qubits}-qubit circuit does not fit on {backend_label(backend)}; "
            f"it has {device.num_qubits} qubits."
        )
    from qiskit import transpile

    compiled = transpile(qc, device, optimization_level=1, seed_transpiler=TRANSPILE_SEED)
    layout = compiled.layout.initial_index_layout(filter_ancillas=True) if compiled.layout else range(spec.n_qubits)
    cx_error, readout_error = _median_errors(compiled, device.target)
    return CompiledCircuit(
        backend, compiled, x, spec.n_qubits, compiled.depth(), compiled.num_nonlocal_gates(),
        tuple(int(q) for q in layout), cx_error, readout_error,
    )  # fmt: skip


@functools.cache
def _simulator(backend: str, threads: int) -> Any:
    from qiskit_aer import AerSimulator

    options = {"method": "density_matrix", "max_parallel_threads": threads}
    if backend == IDEAL:
        return AerSimulator(**options)
    return AerSimulator.from_backend(fake_backend(backend), **options)


def readout_from_counts(counts: list[dict[str, int]], n_qubits: int, pairs: list[tuple[int, int]] = ()) -> np.ndarray:
    """(B, n + len(pairs)): ⟨Z_i⟩ of every qubit, then ⟨Z_i Z_j⟩ of each pair, estimated from the
    measured bitstrings (Qiskit writes classical bit 0 rightmost)."""
    out = np.empty((len(counts), n_qubits + len(pairs)))
    for row, histogram in enumerate(counts):
        values = np.array([int(bits.replace(" ", ""), 2) for bits in histogram])
        weights = np.array(list(histogram.values()), dtype=float)
        signs = 1 - 2 * ((values[:, None] >> np.arange(n_qubits)) & 1)  # (outcomes, n): +1 for 0, −1 for 1
        weights /= weights.sum()
        out[row, :n_qubits] = weights @ signs
        for k, (i, j) in enumerate(pairs):
            out[row, n_qubits + k] = weights @ (signs[:, i] * signs[:, j])
    return out


def run_expectations(
    compiled: CompiledCircuit,
    angles: np.ndarray,
    shots: int,
    seed: int,
    pairs: list[tuple[int, int]] = (),
    threads: int = 1,
) -> np.ndarray:
    """Read-out (B, n + len(pairs)) of the compiled circuit for each row of `angles` (B, n_features),
    from `shots` shots per image, in jobs of at most MAX_BATCH bound circuits."""
    if shots < 1:
        raise ConfigError(f"The number of shots must be at least 1, got {shots}.")
    simulator = _simulator(compiled.backend, threads)
    out = []
    for start in range(0, len(angles), MAX_BATCH):
        chunk = np.asarray(angles[start : start + MAX_BATCH], dtype=float)
        circuits = [compiled.circuit.assign_parameters(dict(zip(compiled.x, a, strict=True))) for a in chunk]
        # Aer seeds circuit k of a job with seed + k; offsetting by the chunk keeps every image's seed distinct.
        result = simulator.run(circuits, shots=shots, seed_simulator=(seed + start) % 2**31).result()
        out.append(
            readout_from_counts(
                result.get_counts() if len(circuits) > 1 else [result.get_counts()], compiled.n_qubits, pairs
            )
        )
    return np.concatenate(out) if out else np.empty((0, compiled.n_qubits + len(pairs)))


def device_predict_proba(
    model: Any, x: Any, backend: str, shots: int, seed: int = 0, threads: int | None = None
) -> tuple[np.ndarray, CompiledCircuit]:
    """Class probabilities of a trained hybrid whose circuit runs on `backend`'s noise with `shots`
    shots per image, and the compiled circuit (depth, two-qubit gates, errors).

    backbone → angles (as in training) → the device → read-out → head; only the circuit moves.
    """
    import torch

    if model.cfg.kind != "hybrid":
        raise ConfigError("Only the hybrid model has a quantum circuit to run on a device.")

    spec: CircuitSpec = model.middle.spec
    pairs = _readout_pairs(model)
    compiled = compile_circuit(spec, model.middle.weights.detach().cpu().double().numpy(), backend)
    model.eval()
    with torch.no_grad():
        device = next(model.parameters()).device
        angles = torch.cat([model.circuit_angles(x[i : i + 512].to(device)).cpu() for i in range(0, len(x), 512)])
        readout = run_expectations(
            compiled, angles.double().numpy(), shots, seed, pairs, threads or torch.get_num_threads()
        )
        logits = model.head(torch.as_tensor(readout, dtype=torch.float32, device=device))
        probs = torch.softmax(logits, 1).cpu().double().numpy()
    return probs, compiled


def _readout_pairs(model: Any) -> list[tuple[int, int]]:
    """The qubit pairs whose ⟨Z_i Z_j⟩ the model's head reads besides ⟨Z_i⟩ (none for the paper's read-out)."""
    readout = getattr(model.cfg, "readout", "z")
    if readout == "z":
        return []
    from hqcnn.circuit import readout_pairs

    return list(readout_pairs(model.cfg.n_qubits))
