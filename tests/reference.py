"""An independent, hand-written numpy statevector of the paper's circuit, for checking PennyLane.

It shares no code with hqcnn.circuit: gates are explicit 2×2 matrices applied by tensor
contraction, wire 0 is the most significant bit (PennyLane's convention).
"""

from __future__ import annotations

import numpy as np


def ry(t: float) -> np.ndarray:
    c, s = np.cos(t / 2), np.sin(t / 2)
    return np.array([[c, -s], [s, c]], dtype=complex)


def rz(t: float) -> np.ndarray:
    return np.array([[np.exp(-0.5j * t), 0], [0, np.exp(0.5j * t)]])


def rx(t: float) -> np.ndarray:
    c, s = np.cos(t / 2), np.sin(t / 2)
    return np.array([[c, -1j * s], [-1j * s, c]])


def apply_1q(state: np.ndarray, gate: np.ndarray, wire: int) -> np.ndarray:
    state = np.tensordot(gate, state, axes=([1], [wire]))
    return np.moveaxis(state, 0, wire)


def apply_cnot(state: np.ndarray, control: int, target: int) -> np.ndarray:
    state = state.copy()
    index = [slice(None)] * state.ndim
    index[control] = 1
    sub = state[tuple(index)]
    t_axis = target - (1 if target > control else 0)
    state[tuple(index)] = np.flip(sub, axis=t_axis)
    return state


def reference_expvals(
    angles: np.ndarray,
    weights: np.ndarray,
    n_qubits: int,
    entangler: str = "ring",
    encoding: str = "layered",
) -> np.ndarray:
    """⟨X_i⟩, ⟨Y_i⟩, ⟨Z_i⟩ per qubit, shape (n_qubits, 3), of the circuit for one input."""
    state = np.zeros((2,) * n_qubits, dtype=complex)
    state[(0,) * n_qubits] = 1.0
    axes = [ry, rz, rx]

    def encode(s: np.ndarray) -> np.ndarray:
        for i, a in enumerate(angles):
            gate = ry if encoding == "ry" else axes[i // n_qubits]
            s = apply_1q(s, gate(a), i % n_qubits)
        return s

    if entangler == "ring":
        pairs = [(0, 1)] if n_qubits == 2 else [(q, (q + 1) % n_qubits) for q in range(n_qubits)]
    elif entangler == "chain":
        pairs = [(q, q + 1) for q in range(n_qubits - 1)]
    else:
        pairs = []

    if encoding != "reupload":
        state = encode(state)
    for layer in weights:
        if encoding == "reupload":
            state = encode(state)
        for q in range(n_qubits):
            state = apply_1q(state, ry(layer[q, 0]), q)
            state = apply_1q(state, rz(layer[q, 1]), q)
        for c, t in pairs:
            state = apply_cnot(state, c, t)

    paulis = [np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.array([[1, 0], [0, -1]])]
    out = np.zeros((n_qubits, 3))
    for q in range(n_qubits):
        for k, p in enumerate(paulis):
            out[q, k] = np.real(np.vdot(state, apply_1q(state, p, q)))
    return out
