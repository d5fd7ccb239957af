"""Expressibility and entangling capability against independent computations: hand values of known
states, a numpy partial trace, PennyLane's own statevectors, Haar-random states from scipy and the
closed forms of the Haar references."""

from __future__ import annotations

import math

import numpy as np
import pennylane as qml
import pytest
import torch
from scipy import integrate
from scipy.stats import unitary_group

from hqcnn import expressibility as ex
from hqcnn.circuit import CircuitSpec, circuit_ops
from hqcnn.config import DEPTH_RANGE, ENCODINGS, ENTANGLERS, QUBITS_RANGE


def _basis(n: int, *indices: int) -> np.ndarray:
    """The equal superposition of the basis states `indices` of n qubits (qubit 0 the leading bit)."""
    state = np.zeros(2**n, dtype=np.complex128)
    state[list(indices)] = 1.0
    return state / np.linalg.norm(state)


def _numpy_purities(state: np.ndarray, n: int) -> list[float]:
    """Tr ρ_k² by the textbook route: the full density matrix, traced over every other qubit in turn."""
    out = []
    for k in range(n):
        rho = np.outer(state, state.conj()).reshape((2,) * (2 * n))  # row axes 0..n−1, then column axes
        remaining = list(range(n))
        for q in [q for q in range(n) if q != k]:
            axis = remaining.index(q)
            rho = np.trace(rho, axis1=axis, axis2=axis + len(remaining))
            remaining.remove(q)
        out.append(float(np.trace(rho @ rho).real))
    return out


def _haar_states(n: int, count: int, seed: int) -> np.ndarray:
    """Haar-random states: the first column of Haar-random unitaries, U|0…0⟩."""
    return unitary_group.rvs(2**n, size=count, random_state=seed)[:, :, 0]


# --- Meyer-Wallach Q --------------------------------------------------------------------------


def test_q_of_known_states_is_the_hand_value():
    states = {
        "|000>": (_basis(3, 0), 0.0),
        "GHZ 3": (_basis(3, 0b000, 0b111), 1.0),
        "GHZ 4": (_basis(4, 0b0000, 0b1111), 1.0),
        # Purities 1/2, 1/2, 1: Q = 2(1 − 2/3).
        "Bell ⊗ |0>": (_basis(3, 0b000, 0b110), 2 / 3),
        "|0> ⊗ Bell": (_basis(3, 0b000, 0b011), 2 / 3),
        # Each qubit is 1 with probability 1/3: purity 1/9 + 4/9 = 5/9, Q = 2(1 − 5/9).
        "W 3": (_basis(3, 0b001, 0b010, 0b100), 8 / 9),
    }
    for name, (state, expected) in states.items():
        n = int(math.log2(len(state)))
        assert ex.meyer_wallach(state[None], n)[0] == pytest.approx(expected, abs=1e-12), name


def test_purities_equal_a_numpy_partial_trace():
    rng = np.random.default_rng(5)
    n = 4
    random = rng.normal(size=(6, 2**n)) + 1j * rng.normal(size=(6, 2**n))
    random /= np.linalg.norm(random, axis=1, keepdims=True)
    circuit_states = ex.random_states(
        CircuitSpec(n, 2, 9, "chain"),
        torch.from_numpy(rng.uniform(0, np.pi, (3, 9))),
        torch.from_numpy(rng.uniform(-np.pi, np.pi, (3, 2, n, 2))),
    ).numpy()
    states = np.concatenate([random, circuit_states])
    expected = np.array([_numpy_purities(s, n) for s in states])
    np.testing.assert_allclose(ex.purities(states, n), expected, atol=1e-12)
    np.testing.assert_allclose(ex.meyer_wallach(states, n), 2 * (1 - expected.mean(1)), atol=1e-12)


def test_mean_q_of_haar_states_is_the_closed_form():
    for n in (2, 3, 4):
        q = ex.meyer_wallach(_haar_states(n, 4000, seed=n), n)
        expected = ex.haar_entangling_capability(n)
        assert expected == pytest.approx((2**n - 2) / (2**n + 1))
        assert abs(q.mean() - expected) < 4 * q.std() / math.sqrt(len(q)), n


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_no_entanglers_no_entanglement(encoding):
    spec = CircuitSpec(4, 3, 10, "none", encoding)
    assert ex.entangling_capability(spec, samples=2000) == pytest.approx(0.0, abs=1e-12)
    assert ex.entangling_capability(CircuitSpec(4, 3, 10, "ring", encoding), samples=2000) > 0.5


# --- the states are the circuit's ----------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        CircuitSpec(2, 1, 2),
        CircuitSpec(2, 3, 6, "ring", "reupload"),
        CircuitSpec(3, 2, 7, "chain", "reupload"),
        CircuitSpec(4, 3, 9, "ring", "ry"),
        CircuitSpec(5, 2, 10, "none"),
        CircuitSpec(6, 2, 13, "ring"),
    ],
    ids=str,
)
def test_states_equal_pennylane_default_qubit(spec):
    rng = np.random.default_rng(1)
    angles = rng.uniform(0, np.pi, (4, spec.n_features))
    weights = rng.uniform(-np.pi, np.pi, (4, *spec.weight_shape))

    @qml.qnode(qml.device("default.qubit", wires=spec.n_qubits))
    def state(a, w):
        circuit_ops(spec, a, w)
        return qml.state()

    expected = np.stack([state(a, w) for a, w in zip(angles, weights, strict=True)])
    got = ex.random_states(spec, torch.from_numpy(angles), torch.from_numpy(weights)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


# --- expressibility -------------------------------------------------------------------------------


def test_haar_bins_are_the_integral_of_the_haar_density():
    for n in (1, 2, 3, 8):
        dim = 2**n
        probs = np.exp(ex._log_haar_bins(n, ex.BINS))
        edges = np.linspace(0, 1, ex.BINS + 1)
        density = lambda f, dim=dim: (dim - 1) * (1 - f) ** (dim - 2)  # noqa: E731
        expected = [
            integrate.quad(density, a, b, epsabs=0, epsrel=1e-12)[0] for a, b in zip(edges[:-1], edges[1:], strict=True)
        ]
        np.testing.assert_allclose(probs[probs > 1e-300], np.array(expected)[probs > 1e-300], rtol=1e-8)
        assert probs.sum() == pytest.approx(1.0)


def test_haar_random_states_are_maximally_expressive():
    for n in (2, 3):
        fidelities = ex.state_fidelities(torch.from_numpy(_haar_states(n, 10_000, seed=10 + n)))
        assert len(fidelities) == 10_000 * ex.NEIGHBOURS
        assert 0 <= ex.fidelity_divergence(fidelities, n) < 0.003, n
    # Fidelities drawn from the Haar law itself (inverse CDF: F = 1 − U^(1/(N−1))) agree.
    u = np.random.default_rng(0).uniform(size=200_000)
    assert ex.fidelity_divergence(1 - u ** (1 / 7), 3) < 0.001


def test_the_idle_circuit_is_the_least_expressive():
    for n in (1, 2, 4, 8):
        # Every state the same: all fidelities 1, in the last bin, of Haar probability (1/75)^(N−1).
        assert ex.idle_expressibility(n) == pytest.approx((2**n - 1) * math.log(75), rel=1e-12)
        assert ex.fidelity_divergence(np.ones(1000), n) == pytest.approx(ex.idle_expressibility(n), rel=1e-12)
    spec = CircuitSpec(3, 2, 6)
    angles = torch.full((500, spec.n_features), 0.7, dtype=torch.float64)
    weights = torch.full((500, *spec.weight_shape), -1.3, dtype=torch.float64)
    same = ex.random_states(spec, angles, weights)  # a parameter-free circuit: one state, 500 times
    assert ex.fidelity_divergence(ex.state_fidelities(same), 3) == pytest.approx(ex.idle_expressibility(3), rel=1e-9)
    # A real circuit lies between the two references.
    assert 0 < ex.expressibility(spec, samples=2000) < ex.idle_expressibility(3)


def test_results_are_deterministic_for_a_seed():
    spec = CircuitSpec(3, 2, 7, "chain", "reupload")
    first = ex.properties(spec, samples=2000, seed=4)
    again = ex.properties(spec, samples=2000, seed=4)
    assert (first.expressibility, first.entangling_capability) == (again.expressibility, again.entangling_capability)
    assert first.expressibility == ex.expressibility(spec, samples=2000, seed=4)
    assert first.entangling_capability == ex.entangling_capability(spec, samples=2000, seed=4)
    other = ex.properties(spec, samples=2000, seed=5)
    assert other.expressibility != first.expressibility


def test_state_fidelities_pairs_each_state_with_its_next_ones():
    states = _haar_states(2, 5, seed=0)
    expected = [abs(np.vdot(states[i], states[(i + s) % 5])) ** 2 for i in range(5) for s in (1, 2)]
    np.testing.assert_allclose(ex.state_fidelities(torch.from_numpy(states), neighbours=2), expected, atol=1e-12)
    with pytest.raises(ValueError):
        ex.state_fidelities(torch.from_numpy(states), neighbours=5)


def test_table_covers_every_size_the_app_offers_with_the_default_settings():
    specs = [ex.default_spec(n, d) for n in range(QUBITS_RANGE[0], QUBITS_RANGE[1] + 1) for d in DEPTH_RANGE]
    assert {(s.n_qubits, s.n_features, s.entangler, s.encoding) for s in specs} == {
        (n, 2 * n, "ring", "layered") for n in range(QUBITS_RANGE[0], QUBITS_RANGE[1] + 1)
    }
    rows = ex.table(qubits=[2, 3], depths=DEPTH_RANGE, samples=500)
    assert [(r.spec.n_qubits, r.spec.depth) for r in rows] == [(2, 1), (2, 8), (3, 1), (3, 8)]
    text = ex.markdown_table(rows)
    assert text.count("\n") == len(rows) + 1 and "| 3 | 8 | 6 |" in text
    assert set(ENTANGLERS) >= {r.spec.entangler for r in rows}
