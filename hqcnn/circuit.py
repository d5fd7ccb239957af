"""The variational quantum circuit: angle encoding, RY/RZ layers, an entangler, ⟨Z⟩ per qubit.

`circuit_ops` is the single definition of the circuit. Every use derives from it: the trainable
`TorchLayer`, the drawings, the OpenQASM export, the Bloch-vector read-out and the noisy or
finite-shot devices of the experiments. Angles arrive already squashed into (0, π) by the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pennylane as qml
import torch

from hqcnn.config import ENCODINGS, ENTANGLERS, ModelConfig

AXES = (qml.RY, qml.RZ, qml.RX)  # encoding axis of feature i is AXES[i // n_qubits]


def _ring(n_qubits: int) -> list[tuple[int, int]]:
    """CNOT q → q+1 (mod n): the paper's entangler. Two qubits need only one CNOT."""
    if n_qubits == 2:
        return [(0, 1)]
    return [(q, (q + 1) % n_qubits) for q in range(n_qubits)]


def _chain(n_qubits: int) -> list[tuple[int, int]]:
    return [(q, q + 1) for q in range(n_qubits - 1)]


ENTANGLER_PAIRS: dict[str, Callable[[int], list[tuple[int, int]]]] = {
    "ring": _ring,
    "chain": _chain,
    "none": lambda n_qubits: [],
}

ENCODING_DESCRIPTIONS = {
    "layered": "feature i rotates qubit i mod n about Y, then Z, then X for each further pass",
    "ry": "every feature rotates its qubit about Y only (features on one qubit add up)",
    "reupload": "the layered encoding repeated before every variational layer (data re-uploading)",
}
ENTANGLER_DESCRIPTIONS = {
    "ring": "CNOT from each qubit to the next, the last back to the first (the paper's ring)",
    "chain": "CNOT from each qubit to the next, without closing the ring",
    "none": "no entangling gates: the qubits stay independent (an ablation)",
}
assert set(ENTANGLER_PAIRS) == set(ENTANGLERS) == set(ENTANGLER_DESCRIPTIONS)
assert set(ENCODING_DESCRIPTIONS) == set(ENCODINGS)


@dataclass(frozen=True)
class CircuitSpec:
    """The shape of the circuit, taken from a ModelConfig."""

    n_qubits: int = 4
    depth: int = 2
    n_features: int = 8
    entangler: str = "ring"
    encoding: str = "layered"

    @classmethod
    def from_model_config(cls, cfg: ModelConfig) -> CircuitSpec:
        """The circuit part of a model configuration."""
        return cls(cfg.n_qubits, cfg.depth, cfg.n_features, cfg.entangler, cfg.encoding)

    @property
    def weight_shape(self) -> tuple[int, int, int]:
        """(depth, n_qubits, 2): an RY and an RZ angle per qubit per layer."""
        return (self.depth, self.n_qubits, 2)

    @property
    def n_weights(self) -> int:
        """Number of trainable circuit parameters."""
        return self.depth * self.n_qubits * 2

    @property
    def cnot_pairs(self) -> list[tuple[int, int]]:
        """(control, target) of each CNOT in one entangling layer."""
        return ENTANGLER_PAIRS[self.entangler](self.n_qubits)


def _encode(spec: CircuitSpec, angles: torch.Tensor) -> None:
    """Angle encoding; `angles` is (n_features,) or (B, n_features) for a broadcast batch."""
    for i in range(spec.n_features):
        gate = qml.RY if spec.encoding == "ry" else AXES[i // spec.n_qubits]
        gate(angles[..., i], wires=i % spec.n_qubits)


def circuit_ops(spec: CircuitSpec, angles: torch.Tensor, weights: torch.Tensor, noise: float = 0.0) -> None:
    """Queue the circuit's gates. weights: (depth, n_qubits, 2). noise: depolarising p per layer."""
    if spec.encoding != "reupload":
        _encode(spec, angles)
    for layer in range(spec.depth):
        if spec.encoding == "reupload":
            _encode(spec, angles)
        for q in range(spec.n_qubits):
            qml.RY(weights[layer, q, 0], wires=q)
            qml.RZ(weights[layer, q, 1], wires=q)
        for control, target in spec.cnot_pairs:
            qml.CNOT(wires=[control, target])
        if noise > 0:
            for q in range(spec.n_qubits):
                qml.DepolarizingChannel(noise, wires=q)


def make_qnode(
    spec: CircuitSpec,
    device: str = "default.qubit",
    shots: int | None = None,
    noise: float = 0.0,
    observables: str = "z",
) -> qml.QNode:
    """A QNode `f(inputs, weights)` returning ⟨Z_i⟩ per qubit ("z") or ⟨X_i⟩,⟨Y_i⟩,⟨Z_i⟩ ("xyz").

    `inputs` comes first and may carry a batch dimension: PennyLane broadcasts it in one call.
    Noise needs a mixed-state device, so a noisy circuit runs on `default.mixed`.
    """
    if noise > 0 and device == "default.qubit":
        device = "default.mixed"
    dev = qml.device(device, wires=spec.n_qubits)
    diff_method = "backprop" if shots is None else "parameter-shift"

    def circuit(inputs: torch.Tensor, weights: torch.Tensor) -> list:
        circuit_ops(spec, inputs, weights, noise=noise)
        wires = range(spec.n_qubits)
        if observables == "xyz":
            return [qml.expval(op(q)) for q in wires for op in (qml.PauliX, qml.PauliY, qml.PauliZ)]
        return [qml.expval(qml.PauliZ(q)) for q in wires]

    qnode = qml.QNode(circuit, dev, interface="torch", diff_method=diff_method)
    if shots is not None:
        qnode = qml.set_shots(qnode, shots=shots)
    return qnode


def torch_layer(spec: CircuitSpec) -> qml.qnn.TorchLayer:
    """The trainable circuit as a torch module: (B, n_features) angles → (B, n_qubits) ⟨Z⟩."""
    init = {"weights": lambda t: torch.nn.init.uniform_(t, -torch.pi, torch.pi)}
    return qml.qnn.TorchLayer(make_qnode(spec), {"weights": spec.weight_shape}, init_method=init)


def _example_args(spec: CircuitSpec, weights: torch.Tensor | None) -> tuple:
    """Symbolic-looking sample arguments for drawing: zeros unless real weights are given."""
    angles = torch.zeros(spec.n_features, dtype=torch.float64)
    if weights is None:
        weights = torch.zeros(spec.weight_shape, dtype=torch.float64)
    return angles, weights.detach().to(torch.float64)


def draw_text(spec: CircuitSpec, weights: torch.Tensor | None = None, decimals: int | None = None) -> str:
    """The circuit as text (PennyLane's drawer); angles shown only when `decimals` is given."""
    return qml.draw(make_qnode(spec), decimals=decimals, max_length=200)(*_example_args(spec, weights))


def draw_figure(spec: CircuitSpec, weights: torch.Tensor | None = None):
    """The circuit as a matplotlib figure (PennyLane's `draw_mpl`); the caller closes it."""
    fig, _ = qml.draw_mpl(make_qnode(spec), style="pennylane")(*_example_args(spec, weights))
    return fig


def to_openqasm(spec: CircuitSpec, angles: Sequence[float] | None = None, weights: torch.Tensor | None = None) -> str:
    """OpenQASM 2.0 of the circuit for one input (zeros by default) with the given weights."""
    example_angles, example_weights = _example_args(spec, weights)
    if angles is not None:
        example_angles = torch.as_tensor(angles, dtype=torch.float64)
    return qml.to_openqasm(make_qnode(spec), measure_all=True)(example_angles, example_weights)
