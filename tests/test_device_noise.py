"""The circuit on simulated IBM devices: the Qiskit circuit against the OpenQASM export and PennyLane,
the read-out from bitstrings against a hand count, the devices' calibrations, and the missing-package
message. The study itself runs end to end in test_experiments.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from hqcnn import device_noise as dn
from hqcnn.circuit import CircuitSpec, make_qnode, to_openqasm
from hqcnn.config import ModelConfig
from hqcnn.errors import ConfigError
from hqcnn.model import build_model

qiskit = pytest.importorskip("qiskit")
from qiskit import QuantumCircuit  # noqa: E402
from qiskit.quantum_info import Operator, SparsePauliOp, Statevector  # noqa: E402

SPECS = [
    CircuitSpec(4, 2, 8),
    CircuitSpec(3, 1, 6, "chain", "ry"),
    CircuitSpec(2, 2, 4, "ring", "reupload"),
    CircuitSpec(5, 1, 15, "none", "layered"),
]


def _random_inputs(spec: CircuitSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, np.pi, spec.n_features), rng.uniform(-np.pi, np.pi, spec.weight_shape)


def _bound(spec: CircuitSpec, angles: np.ndarray, weights: np.ndarray) -> QuantumCircuit:
    compiled = dn.compile_circuit(spec, weights, dn.IDEAL)
    qc = compiled.circuit.assign_parameters(dict(zip(compiled.x, angles, strict=True)))
    return qc.remove_final_measurements(inplace=False)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_the_qiskit_circuit_is_the_openqasm_export(spec):
    angles, weights = _random_inputs(spec, 1)
    exported = QuantumCircuit.from_qasm_str(to_openqasm(spec, angles, torch.tensor(weights)))
    assert Operator(_bound(spec, angles, weights)).equiv(Operator(exported.remove_final_measurements(inplace=False)))


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_the_qiskit_circuit_gives_pennylanes_expectation_values(spec):
    angles, weights = _random_inputs(spec, 2)
    state = Statevector(_bound(spec, angles, weights))
    n = spec.n_qubits
    qiskit_z = [state.expectation_value(SparsePauliOp("I" * (n - 1 - q) + "Z" + "I" * q)).real for q in range(n)]
    pennylane_z = [float(v) for v in make_qnode(spec)(torch.tensor(angles), torch.tensor(weights))]
    np.testing.assert_allclose(qiskit_z, pennylane_z, atol=1e-10)


def test_the_read_out_from_bitstrings_matches_a_hand_count():
    # Qiskit writes classical bit 0 rightmost: "01" is qubit 0 in |1⟩, qubit 1 in |0⟩.
    counts = [{"01": 3, "10": 1}, {"00": 2, "11": 2}]
    out = dn.readout_from_counts(counts, 2, pairs=[(0, 1)])
    np.testing.assert_allclose(out, [[-0.5, 0.5, -1.0], [0.0, 0.0, 1.0]])


def test_many_shots_of_the_noiseless_simulator_approach_the_exact_values():
    spec = CircuitSpec(4, 2, 8)
    angles, weights = _random_inputs(spec, 3)
    exact = [float(v) for v in make_qnode(spec)(torch.tensor(angles), torch.tensor(weights))]
    sampled = dn.run_expectations(dn.compile_circuit(spec, weights, dn.IDEAL), angles[None], 200_000, seed=0)
    np.testing.assert_allclose(sampled[0], exact, atol=0.01)  # 4.5 standard errors of 200,000 shots


@pytest.mark.parametrize("key", list(dn.BACKENDS))
def test_each_device_carries_its_calibration_and_the_ring_pays_for_its_swaps(key):
    device = dn.fake_backend(key)
    assert device.num_qubits == dn.BACKENDS[key].qubits
    spec = CircuitSpec(4, 2, 8)
    compiled = dn.compile_circuit(spec, _random_inputs(spec, 4)[1], key)
    # No device here has a 4-cycle of couplings, so a ring of 4 CNOTs per layer needs SWAPs (3 CNOTs each).
    assert compiled.two_qubit_gates > len(spec.cnot_pairs) * spec.depth
    assert compiled.depth > dn.compile_circuit(spec, _random_inputs(spec, 4)[1], dn.IDEAL).depth
    assert len(set(compiled.physical_qubits)) == 4 and max(compiled.physical_qubits) < device.num_qubits
    assert 0 < compiled.cx_error < 0.1 and 0 < compiled.readout_error < 0.2


def test_device_noise_shrinks_the_read_out_and_is_reproducible():
    spec = CircuitSpec(4, 2, 8)
    rng = np.random.default_rng(5)
    angles, weights = rng.uniform(0, np.pi, (40, 8)), rng.uniform(-np.pi, np.pi, spec.weight_shape)
    compiled = dn.compile_circuit(spec, weights, "fake_manila")
    noisy = dn.run_expectations(compiled, angles, 4000, seed=7)
    qnode = make_qnode(spec)
    exact = np.array([[float(v) for v in qnode(torch.tensor(a), torch.tensor(weights))] for a in angles])
    # Decoherence and read-out errors pull every ⟨Z⟩ towards 0 (shot noise alone is ±0.016 here).
    assert np.abs(noisy).mean() < 0.9 * np.abs(exact).mean()
    np.testing.assert_array_equal(noisy, dn.run_expectations(compiled, angles, 4000, seed=7))
    assert not np.array_equal(noisy, dn.run_expectations(compiled, angles, 4000, seed=8))


def test_a_trained_hybrid_runs_on_a_device_and_the_twin_is_refused():
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_qubits=3, depth=1, n_features=6), 1, 2).eval()
    x = torch.randn(12, 1, 28, 28)
    probs, compiled = dn.device_predict_proba(model, x, "fake_nairobi", 100, seed=1)
    assert probs.shape == (12, 2) and np.allclose(probs.sum(1), 1)
    assert compiled.backend == "fake_nairobi" and compiled.n_qubits == 3
    twin = build_model(ModelConfig(kind="classical", n_qubits=3, depth=1, n_features=6), 1, 2)
    with pytest.raises(ConfigError, match="Only the hybrid"):
        dn.device_predict_proba(twin, x, "fake_manila", 100)
    with pytest.raises(ConfigError, match="shots"):
        dn.device_predict_proba(model, x, "fake_manila", 0)


def test_a_circuit_larger_than_the_device_is_refused_in_words():
    spec = CircuitSpec(6, 1, 12)
    with pytest.raises(ConfigError, match="does not fit on IBM Manila"):
        dn.compile_circuit(spec, np.zeros(spec.weight_shape), "fake_manila")


def test_without_qiskit_the_study_says_how_to_install_it():
    # A fresh interpreter in which qiskit_aer cannot be imported, as on a machine without the extra.
    code = (
        "import sys; sys.modules['qiskit_aer'] = None\n"
        "from hqcnn.experiments import STUDIES, ExperimentConfig\n"
        "print(STUDIES['device_noise'].unavailable(ExperimentConfig(dataset='pneumoniamnist')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install -r requirements-quantum.txt" in out and "qiskit_aer is missing" in out
