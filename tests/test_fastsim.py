"""The compiled fast simulator against PennyLane: values, gradients, shapes, dtypes, derivation.

Float64 agreement is ~1e-14 in practice; the checks use 1e-9 (the contract is 1e-6), so that a
silent loss of precision would show up too.
"""

from __future__ import annotations

import math

import pennylane as qml
import pytest
import torch

from hqcnn import circuit, fastsim
from hqcnn.circuit import CircuitSpec, make_qnode, torch_layer
from hqcnn.config import ENCODINGS, ENTANGLERS
from hqcnn.fastsim import FastCircuitLayer, UnsupportedCircuit, compile_program, expectations, supports

ATOL64 = 1e-9
ATOL32 = 1e-5

# Full cross product of entangler x encoding at small sizes (2..5 qubits, depth 1..4, n..3n
# features), plus a handful of larger or deeper circuits.
SMALL = [(2, 1, 2), (2, 3, 6), (3, 2, 5), (3, 4, 9), (4, 2, 8), (5, 4, 10)]
CASES = [(n, d, f, ent, enc) for (n, d, f) in SMALL for ent in ENTANGLERS for enc in ENCODINGS]
CASES += [
    (3, 8, 3, "ring", "layered"),
    (2, 8, 6, "chain", "reupload"),
    (6, 3, 13, "ring", "reupload"),
    (7, 2, 7, "chain", "layered"),
    (8, 4, 16, "ring", "layered"),
    (8, 1, 24, "none", "reupload"),
    (8, 2, 9, "chain", "ry"),
    (8, 5, 8, "ring", "layered"),
    (7, 6, 21, "chain", "layered"),
    (8, 8, 24, "ring", "reupload"),
]


def _random(spec: CircuitSpec, batch: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Angles in (−π, π) as the model produces them, and weights in (−π, π); float64."""
    g = torch.Generator().manual_seed(seed)
    shape = (spec.n_features,) if batch is None else (batch, spec.n_features)
    angles = (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    weights = (torch.rand(spec.weight_shape, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    return angles, weights


def _leaves(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.detach().clone().requires_grad_(True) for t in tensors]


def _reference(spec: CircuitSpec, angles: torch.Tensor, weights: torch.Tensor, observables: str = "z"):
    """PennyLane's values, stacked like `expectations` returns them."""
    out = torch.stack(make_qnode(spec, observables=observables)(angles, weights), dim=-1)
    if observables == "xyz":
        out = out.reshape(*out.shape[:-1], spec.n_qubits, 3)
    return out


def _assert_same_values_and_grads(spec: CircuitSpec, batch: int | None, seed: int, observables: str = "z"):
    angles, weights = _random(spec, batch, seed)
    a_ref, w_ref = _leaves(angles, weights)
    a_fast, w_fast = _leaves(angles, weights)
    ref = _reference(spec, a_ref, w_ref, observables)
    out = expectations(spec, a_fast, w_fast, observables)
    assert out.shape == ref.shape and out.dtype == torch.float64
    torch.testing.assert_close(out, ref, atol=ATOL64, rtol=0)
    # A random cotangent checks the whole vector-Jacobian product, not just one row.
    cotangent = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    (ref * cotangent).sum().backward()
    (out * cotangent).sum().backward()
    torch.testing.assert_close(a_fast.grad, a_ref.grad, atol=ATOL64, rtol=0)
    torch.testing.assert_close(w_fast.grad, w_ref.grad, atol=ATOL64, rtol=0)


@pytest.mark.parametrize("n_qubits,depth,n_features,entangler,encoding", CASES)
def test_values_and_gradients_match_pennylane(n_qubits, depth, n_features, entangler, encoding):
    spec = CircuitSpec(n_qubits, depth, n_features, entangler, encoding)
    _assert_same_values_and_grads(spec, batch=3, seed=7 * n_qubits + depth)


@pytest.mark.parametrize(
    "n_qubits,depth,n_features,entangler,encoding",
    [
        (2, 1, 4, "ring", "layered"),
        (3, 2, 9, "chain", "reupload"),
        (4, 2, 8, "ring", "ry"),
        (6, 2, 12, "none", "layered"),
    ],
)
def test_bloch_components_match_pennylane_xyz(n_qubits, depth, n_features, entangler, encoding):
    spec = CircuitSpec(n_qubits, depth, n_features, entangler, encoding)
    _assert_same_values_and_grads(spec, batch=2, seed=3, observables="xyz")
    angles, weights = _random(spec, 2, 5)
    bloch = expectations(spec, angles, weights, "xyz")
    assert bloch.shape == (2, n_qubits, 3)
    assert torch.all(bloch.norm(dim=-1) <= 1 + 1e-12)  # inside the Bloch ball


def test_single_unbatched_sample_matches_pennylane():
    spec = CircuitSpec(4, 3, 10, "ring", "reupload")
    _assert_same_values_and_grads(spec, batch=None, seed=11)
    angles, weights = _random(spec, None, 11)
    layer = FastCircuitLayer(spec).double()
    with torch.no_grad():
        layer.weights.copy_(weights)
    assert layer(angles).shape == (4,)
    assert expectations(spec, angles, weights, "xyz").shape == (4, 3)
    # Extra leading dimensions are flattened and restored, as TorchLayer does.
    stacked = angles.expand(2, 3, -1)
    torch.testing.assert_close(layer(stacked), layer(angles).expand(2, 3, -1), atol=ATOL64, rtol=0)


def test_layer_is_interchangeable_with_torch_layer():
    spec = CircuitSpec(5, 2, 10)
    reference, fast = torch_layer(spec).double(), FastCircuitLayer(spec).double()
    # Same parameter name and shape: checkpoints load either way.
    assert dict(fast.named_parameters()).keys() == dict(reference.named_parameters()).keys() == {"weights"}
    fast.load_state_dict(reference.state_dict())
    angles = _random(spec, 6, 0)[0]
    a_ref, a_fast = _leaves(angles, angles)
    ref, out = reference(a_ref), fast(a_fast)
    torch.testing.assert_close(out, ref, atol=ATOL64, rtol=0)
    ref.pow(2).sum().backward()
    out.pow(2).sum().backward()
    torch.testing.assert_close(a_fast.grad, a_ref.grad, atol=ATOL64, rtol=0)
    torch.testing.assert_close(fast.weights.grad, reference.weights.grad, atol=ATOL64, rtol=0)


def test_weights_initialised_like_torch_layer():
    spec = CircuitSpec(3, 4, 6)
    layer = FastCircuitLayer(spec)
    assert layer.weights.shape == spec.weight_shape
    assert layer.weights.dtype == torch.get_default_dtype()
    assert layer.weights.abs().max() <= math.pi
    assert layer.weights.std() > 0.5  # uniform(−π, π), not zeros


@pytest.mark.parametrize("spec", [CircuitSpec(4, 2, 8), CircuitSpec(8, 3, 16, "chain", "reupload")])
def test_float32_path_is_complex64_and_close(spec):
    angles, weights = _random(spec, 4, 2)
    a_ref, w_ref = _leaves(angles, weights)
    a32, w32 = _leaves(angles.float(), weights.float())
    ref = _reference(spec, a_ref, w_ref)
    out = expectations(spec, a32, w32)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, atol=ATOL32, rtol=0)
    ref.sum().backward()
    out.sum().backward()
    assert a32.grad.dtype == w32.grad.dtype == torch.float32
    torch.testing.assert_close(a32.grad.double(), a_ref.grad, atol=ATOL32, rtol=0)
    torch.testing.assert_close(w32.grad.double(), w_ref.grad, atol=ATOL32, rtol=0)
    # The layer keeps the input dtype even when its weights are float64, and vice versa.
    layer = FastCircuitLayer(spec)
    assert layer(angles.float()).dtype == torch.float32
    assert layer(angles).dtype == torch.float64


def test_gradcheck_inputs_and_weights():
    spec = CircuitSpec(3, 2, 6, "ring", "reupload")
    angles, weights = _leaves(*_random(spec, 2, 4))
    assert torch.autograd.gradcheck(lambda a, w: expectations(spec, a, w), (angles, weights))
    assert torch.autograd.gradcheck(lambda a, w: expectations(spec, a, w, "xyz"), (angles, weights))


def test_supports_only_noiseless_analytic_circuits():
    spec = CircuitSpec(4, 2, 8)
    assert supports(spec)
    assert not supports(spec, noise=0.05)
    assert not supports(spec, shots=1000)
    with pytest.raises(UnsupportedCircuit, match="noise"):
        compile_program(spec, noise=0.05)
    assert issubclass(UnsupportedCircuit, NotImplementedError)  # callers catch it to fall back


def test_rejects_unknown_observables():
    spec = CircuitSpec(2, 1, 2)
    with pytest.raises(ValueError, match="observables"):
        expectations(spec, *_random(spec, 1, 0), observables="xx")


# --- The fast path is derived from circuit_ops -------------------------------------------------


def test_program_is_the_recorded_circuit():
    spec = CircuitSpec(3, 2, 6, "ring", "layered")
    program = compile_program(spec)
    lines = program.describe().splitlines()
    # Encoding: features 0..2 about Y on qubits 0..2, features 3..5 about Z.
    assert lines[:6] == ["RY(x[0]) @ 0", "RY(x[1]) @ 1", "RY(x[2]) @ 2", "RZ(x[3]) @ 0", "RZ(x[4]) @ 1", "RZ(x[5]) @ 2"]
    assert lines[6:8] == ["RY(w[0,0,0]) @ 0", "RZ(w[0,0,1]) @ 0"]
    assert lines[12:15] == ["CNOT @ 0,1", "CNOT @ 1,2", "CNOT @ 2,0"]
    assert len(lines) == spec.n_features + spec.depth * (2 * spec.n_qubits + 3)
    # It is exactly what PennyLane queues for the QNode.
    angles, weights = _random(spec, None, 0)
    tape = qml.workflow.construct_tape(make_qnode(spec))(angles, weights)
    assert [(op.name, tuple(op.wires.tolist())) for op in tape.operations] == [
        (ins.name, ins.wires) for ins in program.instructions
    ]


def test_program_follows_a_changed_entangler(monkeypatch):
    spec = CircuitSpec(4, 2, 8, "ring", "layered")
    before = compile_program(spec).signature
    # Reverse the ring and add a long-range CNOT: only circuit.py's registry changes.
    monkeypatch.setitem(circuit.ENTANGLER_PAIRS, "ring", lambda n: [((q + 1) % n, q) for q in range(n)] + [(0, 2)])
    program = compile_program(spec)
    assert program.signature != before
    cnots = [ins.wires for ins in program.instructions if ins.name == "CNOT"]
    assert cnots[:5] == [(1, 0), (2, 1), (3, 2), (0, 3), (0, 2)]
    _assert_same_values_and_grads(spec, batch=3, seed=1)  # PennyLane sees the same change
    monkeypatch.undo()
    assert compile_program(spec).signature == before  # the cache noticed both changes


def test_program_follows_added_gates(monkeypatch):
    original = circuit.circuit_ops

    def extended(spec, angles, weights, noise=0.0):
        qml.Hadamard(wires=0)  # a fixed one-qubit gate before the encoding
        original(spec, angles, weights, noise)
        qml.CZ(wires=[0, spec.n_qubits - 1])  # a fixed diagonal two-qubit gate
        qml.RX(2.0 * weights[0, 1, 0] + 0.3, wires=1)  # an affine weight parameter
        qml.RY(-angles[..., 2], wires=0)  # an input feature, negated, after entanglement
        qml.RZ(0.5, wires=2)  # a constant angle
        qml.PauliX(wires=2)

    monkeypatch.setattr(circuit, "circuit_ops", extended)
    spec = CircuitSpec(3, 2, 6, "chain", "layered")
    lines = compile_program(spec).describe().splitlines()
    assert lines[0] == "Hadamard @ 0"
    assert lines[-5:] == ["CZ @ 0,2", "RX(2*w[0,1,0]+0.3) @ 1", "RY(-1*x[2]) @ 0", "RZ(0.5) @ 2", "PauliX @ 2"]
    _assert_same_values_and_grads(spec, batch=3, seed=2)
    _assert_same_values_and_grads(spec, batch=2, seed=3, observables="xyz")


def test_program_that_starts_entangled(monkeypatch):
    """No leading one-qubit gates (the product state is |0..0>) and a dense fixed gate."""
    original = circuit.circuit_ops

    def entangled_first(spec, angles, weights, noise=0.0):
        qml.CNOT(wires=[0, 1])
        qml.CH(wires=[1, 0])  # neither a permutation nor diagonal: applied as a matrix
        original(spec, angles, weights, noise)

    monkeypatch.setattr(circuit, "circuit_ops", entangled_first)
    for spec in (CircuitSpec(2, 2, 4, "ring", "reupload"), CircuitSpec(7, 2, 9, "ring", "layered")):
        assert compile_program(spec).instructions[1].name == "CH"
        _assert_same_values_and_grads(spec, batch=2, seed=4)


@pytest.mark.parametrize(
    "extra,message",
    [
        (lambda a, w: qml.RY(torch.sin(a[..., 0]), wires=0), "affine"),
        (lambda a, w: qml.RY(a[..., 0] + w[0, 0, 0], wires=0), "several sources"),
        (lambda a, w: qml.CRX(w[0, 0, 0], wires=[0, 1]), "one-qubit rotations"),
        (lambda a, w: qml.PhaseShift(w[0, 0, 0], wires=0), "rotation"),
        (lambda a, w: qml.AmplitudeDamping(0.1, wires=0), "noise"),
    ],
)
def test_unknown_operations_are_refused(monkeypatch, extra, message):
    original = circuit.circuit_ops

    def changed(spec, angles, weights, noise=0.0):
        original(spec, angles, weights, noise)
        extra(angles, weights)

    monkeypatch.setattr(circuit, "circuit_ops", changed)
    spec = CircuitSpec(2, 1, 2)
    with pytest.raises(UnsupportedCircuit, match=message):
        compile_program(spec)
    assert not supports(spec)
    with pytest.raises(NotImplementedError):
        FastCircuitLayer(spec)
    monkeypatch.undo()
    assert supports(spec)


def test_cache_can_be_cleared():
    spec = CircuitSpec(2, 1, 2)
    first = compile_program(spec)
    assert compile_program(spec) is first
    fastsim.clear_cache()
    assert compile_program(spec) == first
