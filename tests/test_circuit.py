"""The PennyLane circuit against an independent statevector, closed forms, Qiskit, drawing and export."""

from __future__ import annotations

import io
import re
from xml.etree import ElementTree

import numpy as np
import pennylane as qml
import pytest
import torch
from PIL import Image

from hqcnn.circuit import (
    ENCODING_DESCRIPTIONS,
    MAX_COMMENT,
    TEXT_WIDTH,
    CircuitSpec,
    circuit_gates,
    circuit_ops,
    describe,
    draw_text,
    make_qnode,
    qasm_comment,
    to_openqasm,
    torch_layer,
)
from hqcnn.config import ENCODINGS, ENTANGLERS
from hqcnn.plots.quantum import DIAGRAM_WIDTH_PX, circuit_diagram
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


@pytest.mark.parametrize("entangler", ENTANGLERS)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_circuit_weight_but_the_final_rz_gets_a_gradient(entangler, encoding):
    # The Circuit page says so: after the last layer's RZ only CNOTs (basis permutations) come, and
    # a Z rotation there cannot change a Z measurement. Every other angle, input included, matters.
    spec = CircuitSpec(4, 3, 12, entangler, encoding)
    layer = torch_layer(spec)
    angles, _ = _random(spec, batch=4, seed=2)
    angles.requires_grad_(True)
    (layer(angles) * torch.arange(1.0, 5.0)).sum().backward()
    grad = layer.weights.grad.abs()
    idle = torch.zeros_like(grad, dtype=torch.bool)
    idle[-1, :, 1] = True
    assert (grad[~idle] > 1e-6).all()
    assert (grad[idle] < 1e-9).all()
    assert (angles.grad.abs() > 1e-6).all()


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


def _tape(spec: CircuitSpec, angles: torch.Tensor, weights: torch.Tensor) -> list:
    return qml.workflow.construct_tape(make_qnode(spec))(angles, weights).operations


@pytest.mark.parametrize("n_qubits,depth,n_features,entangler,encoding", CASES)
def test_circuit_gates_are_the_queued_gates_with_their_sources(n_qubits, depth, n_features, entangler, encoding):
    spec = CircuitSpec(n_qubits, depth, n_features, entangler, encoding)
    angles, weights = _random(spec, batch=1, seed=5)
    ops = _tape(spec, angles[0], weights)
    gates = circuit_gates(spec)
    assert [(g.name, g.wires) for g in gates] == [(op.name, tuple(op.wires.tolist())) for op in ops]
    for gate, op in zip(gates, ops, strict=True):
        if gate.role == "encoding":
            assert float(op.parameters[0]) == pytest.approx(float(angles[0, gate.feature]))
        elif gate.role == "trainable":
            assert float(op.parameters[0]) == pytest.approx(float(weights[gate.weight]))
        else:
            assert gate.name == "CNOT" and not op.parameters
    # Layers run in order; a re-upload opens its layer, CNOTs close theirs.
    assert [g.layer for g in gates] == sorted(g.layer for g in gates)
    for layer in range(depth):
        members = [g.role for g in gates if g.layer == layer]
        assert members.count("trainable") == 2 * n_qubits
        assert members.count("fixed") == len(spec.cnot_pairs)
        uploads = n_features if (encoding == "reupload" or layer == 0) else 0
        assert members.count("encoding") == uploads and members[:uploads] == ["encoding"] * uploads


def test_encoding_words_follow_the_queued_axes():
    # 4 qubits, 9 features: the tape is RY on q0–q3, RZ on q0–q3, then RX on q0.
    spec = CircuitSpec(4, 2, 9, "ring", "layered")
    angles, weights = _random(spec, batch=1, seed=6)
    first = [(op.name, int(op.wires[0])) for op in _tape(spec, angles[0], weights)[:9]]
    assert first == [("RY", q) for q in range(4)] + [("RZ", q) for q in range(4)] + [("RX", 0)]
    words = describe(spec)["encoding"]
    assert "features 0–3 rotate q0–q3 about Y; features 4–7 rotate q0–q3 about Z; feature 8 rotates q0 about X" in words
    ry = describe(CircuitSpec(3, 1, 5, "ring", "ry"))["encoding"]
    assert "features 0–2 rotate q0–q2 about Y; features 3–4 rotate q0–q1 about Y" in ry and "add up" in ry
    assert (
        "repeated before each of the 3 layers (21 encoding rotations"
        in describe(CircuitSpec(5, 3, 7, "chain", "reupload"))["encoding"]
    )
    # The registry's words in the order of the gates: Y for the first pass, then Z, then X.
    layered = ENCODING_DESCRIPTIONS["layered"]
    assert layered.index("about Y") < layered.index("about Z") < layered.index("X")
    assert "about Y only" in ENCODING_DESCRIPTIONS["ry"]


def test_openqasm_comments_stay_comments():
    spec = CircuitSpec(2, 1, 2)
    evil = "bad\nqreg r[9];\r\nx q[0];\u2028h q[1];"
    qasm = to_openqasm(spec, comments=["first line", evil])
    lines = qasm.splitlines()
    assert lines[0] == "OPENQASM 2.0;" and lines[1] == "// first line"
    assert lines[2].startswith("// bad qreg r[9]; x q[0]; h q[1];")
    assert lines[3] == 'include "qelib1.inc";'
    assert "\u2028" not in qasm
    assert len(qasm_comment("x" * 1000)) <= MAX_COMMENT + 3


# --- OpenQASM against Qiskit, software written independently of PennyLane ---------------------


def _qiskit_z(qasm: str) -> tuple[np.ndarray, np.ndarray]:
    """⟨Z_i⟩ per qubit and the statevector (Qiskit's little-endian order) of an OpenQASM circuit."""
    import qiskit
    from qiskit.quantum_info import SparsePauliOp, Statevector

    circuit = qiskit.qasm2.loads(qasm).remove_final_measurements(inplace=False)
    state = Statevector(circuit)
    n = circuit.num_qubits
    z = [state.expectation_value(SparsePauliOp.from_sparse_list([("Z", [q], 1.0)], n)).real for q in range(n)]
    return np.array(z), np.asarray(state.data)


@pytest.mark.parametrize("n_qubits,depth,n_features,entangler,encoding", CASES[::4])
def test_openqasm_runs_the_same_circuit_in_qiskit(n_qubits, depth, n_features, entangler, encoding):
    spec = CircuitSpec(n_qubits, depth, n_features, entangler, encoding)
    angles, weights = _random(spec, batch=1, seed=7)
    qasm = to_openqasm(spec, angles[0], weights, comments=["a comment, ünïcode and all"])
    z, state = _qiskit_z(qasm)
    expected = torch.stack(make_qnode(spec)(angles[0], weights)).numpy()
    np.testing.assert_allclose(z, expected, atol=1e-9)
    # Whole state, up to a global phase: Qiskit's qubit 0 is the least significant bit, PennyLane's
    # wire 0 the most significant, so one index order is the other's bit reversal.
    dev = qml.device("default.qubit", wires=n_qubits)
    pl_state = qml.QNode(lambda a, w: (circuit_ops(spec, a, w), qml.state())[1], dev)(angles[0], weights)
    reordered = np.asarray(state).reshape((2,) * n_qubits).transpose(range(n_qubits - 1, -1, -1)).reshape(-1)
    assert abs(np.vdot(pl_state.numpy(), reordered)) == pytest.approx(1.0, abs=1e-9)


def test_placeholder_openqasm_has_zero_angles():
    qasm = to_openqasm(CircuitSpec(3, 2, 6))
    z, _ = _qiskit_z(qasm)
    np.testing.assert_allclose(z, 1.0, atol=1e-12)  # every rotation is by 0: the state stays |000⟩
    assert all(float(p) == 0.0 for p in re.findall(r"\(([^)]*)\)", qasm))


# --- Text drawing and diagram --------------------------------------------------------------------

LARGEST = [CircuitSpec(8, 8, 24, ent, enc) for ent in ENTANGLERS for enc in ENCODINGS]


@pytest.mark.parametrize("spec", LARGEST[:1] + [CircuitSpec(2, 1, 2), CircuitSpec(5, 3, 11, "chain", "ry")])
def test_text_drawing_is_complete_and_wrapped(spec):
    text = draw_text(spec)
    assert max(len(line) for line in text.splitlines()) <= TEXT_WIDTH
    gates = circuit_gates(spec)
    for name in ("RY", "RZ", "RX"):
        assert text.count(name) == sum(g.name == name for g in gates)
    assert text.count("●") == sum(g.name == "CNOT" for g in gates)
    assert text.count("<Z>") + text.count("⟨Z⟩") == spec.n_qubits


def _svg_sizes(svg: str) -> tuple[float, list[float]]:
    root = ElementTree.fromstring(svg)
    sizes = [float(t.get("font-size")) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    return float(root.get("width")), sizes


@pytest.mark.parametrize("spec", LARGEST)
def test_diagram_labels_stay_readable_at_the_largest_setting(spec):
    diagram = circuit_diagram(spec.n_qubits, circuit_gates(spec), "largest")
    width, sizes = _svg_sizes(diagram.svg)
    assert width == diagram.width <= DIAGRAM_WIDTH_PX
    # An <img> is shown at its own width or shrunk to its column, never enlarged: in the column the
    # diagram is laid out for, and in a narrower half-width one, the smallest label in screen pixels.
    for column_px in (DIAGRAM_WIDTH_PX, 560):
        assert min(sizes) * min(1.0, column_px / width) >= 9
    assert min(sizes) >= 14  # the house minimum at the diagram's own size


@pytest.mark.parametrize(
    "spec", LARGEST[::4] + [CircuitSpec(2, 1, 2), CircuitSpec(4, 2, 8), CircuitSpec(3, 5, 9, "ring", "reupload")]
)
def test_diagram_draws_every_gate_without_overlap(spec):
    gates = circuit_gates(spec)
    diagram = circuit_diagram(spec.n_qubits, gates, "t")
    labels = [s[3] for s in diagram.shapes if s[0] == "text"]
    for name in ("RY", "RZ", "RX"):
        assert (
            sum(label.startswith(name) for label in labels) == sum(g.name == name for g in gates) + (name == "RY") * 2
        )
    assert (
        sum(label.startswith("RY(x") for label in labels)
        == sum(g.role == "encoding" and g.name == "RY" for g in gates) + 1
    )
    targets = [s for s in diagram.shapes if s[0] == "circle" and s[3] == 10]
    assert len(targets) == sum(g.name == "CNOT" for g in gates)
    assert labels.count("⟨Z⟩") == spec.n_qubits
    boxes = [s[1:5] for s in diagram.shapes if s[0] == "rect"]
    for i, (x, y, w, h) in enumerate(boxes):
        assert 0 <= x and x + w <= diagram.width and 0 <= y and y + h <= diagram.height
        for x2, y2, w2, h2 in boxes[i + 1 :]:
            apart = x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y
            assert apart, ((x, y, w, h), (x2, y2, w2, h2))


def test_diagram_png_matches_its_size():
    diagram = circuit_diagram(3, circuit_gates(CircuitSpec(3, 2, 6)), "png")
    image = Image.open(io.BytesIO(diagram.png(scale=2)))
    assert image.size == (2 * diagram.width, 2 * diagram.height)
