"""The PennyLane circuit against an independent statevector, closed forms, drawing and export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hqcnn.circuit import CircuitSpec, draw_text, make_qnode, to_openqasm, torch_layer
from hqcnn.config import ENCODINGS, ENTANGLERS
from tests.reference import reference_expvals

CASES = [
    (n, d, f, ent, enc)
    for (n, d, f) in [(2, 1, 2), (3, 2, 6), (4, 2, 8), (4, 3, 12), (5, 1, 7)]
    for ent in ENTANGLERS
    for enc in ENCODINGS
]


def _random(spec: CircuitSpec, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    angles = (torch.rand(batch, spec.n_features, generator=g, dtype=torch.float64) * 2 - 1) * np.pi
    weights = (torch.rand(*spec.weight_shape, generator=g, dtype=torch.float64) * 2 - 1) * np.pi
    return angles, weights


@pytest.mark.parametrize("n_qubits,depth,n_features,entangler,encoding", CASES)
def test_expvals_match_independent_statevector(n_qubits, depth, n_features, entangler, encoding):
    spec = CircuitSpec(n_qubits, depth, n_features, entangler, encoding)
    angles, weights = _random(spec, batch=3, seed=n_qubits * 100 + depth)
    z = torch.stack(make_qnode(spec)(angles, weights), dim=-1)  # (B, n_qubits)
    xyz = torch.stack(make_qnode(spec, observables="xyz")(angles, weights), dim=-1).reshape(3, n_qubits, 3)
    for b in range(3):
        ref = reference_expvals(angles[b].numpy(), weights.numpy(), n_qubits, entangler, encoding)
        np.testing.assert_allclose(z[b].numpy(), ref[:, 2], atol=1e-10)
        np.testing.assert_allclose(xyz[b].numpy(), ref, atol=1e-10)


def test_single_qubit_closed_form_without_entangler():
    # With no entangler each qubit is alone: RY(a) then RY(w), RZ(φ) from |0⟩ gives ⟨Z⟩ = cos(a + w).
    spec = CircuitSpec(n_qubits=3, depth=1, n_features=3, entangler="none")
    angles = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    weights = torch.tensor([[[0.5, 0.7], [0.1, -0.4], [-2.5, 1.0]]], dtype=torch.float64)
    z = torch.stack(make_qnode(spec)(angles, weights)).numpy()
    np.testing.assert_allclose(z, np.cos(angles.numpy() + weights[0, :, 0].numpy()), atol=1e-12)


def test_ring_closed_form_two_qubits():
    # RY(a)⊗RY(b) then one CNOT(0→1): ⟨Z0⟩ = cos a, ⟨Z1⟩ = cos a · cos b.
    spec = CircuitSpec(n_qubits=2, depth=1, n_features=2, entangler="ring")
    a, b = 0.9, -0.4
    z = torch.stack(
        make_qnode(spec)(torch.tensor([a, b], dtype=torch.float64), torch.zeros(1, 2, 2, dtype=torch.float64))
    )
    np.testing.assert_allclose(z.numpy(), [np.cos(a), np.cos(a) * np.cos(b)], atol=1e-12)


def test_torch_layer_equals_direct_qnode_and_broadcasts():
    spec = CircuitSpec(4, 2, 8)
    layer = torch_layer(spec)
    angles, _ = _random(spec, batch=5, seed=1)
    out = layer(angles)
    assert out.shape == (5, 4)
    direct = torch.stack(make_qnode(spec)(angles, layer.weights.detach().double()), dim=-1)
    torch.testing.assert_close(out.double(), direct, atol=1e-10, rtol=0)


def test_every_circuit_weight_gets_a_gradient():
    spec = CircuitSpec(4, 3, 12, "ring", "reupload")
    layer = torch_layer(spec)
    angles, _ = _random(spec, batch=4, seed=2)
    angles.requires_grad_(True)
    layer(angles).pow(2).sum().backward()
    assert layer.weights.grad is not None and (layer.weights.grad.abs() > 0).all()
    assert (angles.grad.abs() > 0).all()


def test_noise_and_shots_devices_run_the_same_circuit():
    spec = CircuitSpec(3, 2, 6)
    angles, weights = _random(spec, batch=1, seed=3)
    exact = torch.stack(make_qnode(spec)(angles[0], weights)).numpy()
    noiseless_mixed = torch.stack(make_qnode(spec, device="default.mixed")(angles[0], weights)).numpy()
    np.testing.assert_allclose(noiseless_mixed, exact, atol=1e-6)  # default.mixed works in single precision here
    noisy = torch.stack(make_qnode(spec, noise=0.2)(angles[0], weights)).numpy()
    # Depolarising noise only shrinks expectation values towards 0.
    assert np.all(np.abs(noisy) <= np.abs(exact) + 1e-12) and not np.allclose(noisy, exact)
    shots = torch.stack(make_qnode(spec, shots=4000)(angles[0], weights)).numpy()
    assert np.all(np.abs(shots - exact) < 0.1)


def test_drawing_and_openqasm_describe_the_circuit():
    spec = CircuitSpec(3, 2, 6, "ring")
    text = draw_text(spec)
    assert text.count("⟨Z⟩") == 3 or text.count("<Z>") == 3
    qasm = to_openqasm(spec)
    assert qasm.startswith("OPENQASM 2.0")
    assert qasm.count("cx ") == 2 * 3  # depth × ring CNOTs
    assert qasm.count("ry(") == 3 + 2 * 3 and qasm.count("rz(") == 3 + 2 * 3
    assert "measure" in qasm
    assert to_openqasm(CircuitSpec(3, 2, 6, "none")).count("cx ") == 0
