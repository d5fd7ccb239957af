"""Expressibility and entangling capability of the circuit (Sim, Johnson & Aspuru-Guzik 2019).

Both are properties of the circuit alone, estimated over random parameters, not of a trained
model, and neither promises accuracy: a circuit that reaches more of the state space is not
thereby a better classifier.

* **Expressibility**: the Kullback-Leibler divergence between the distribution of fidelities
  F = |⟨ψ(θ)|ψ(φ)⟩|² of pairs of states from independent random parameters and the fidelity
  distribution of Haar-random states, P(F) = (N−1)(1−F)^(N−2) with N = 2^n, over the paper's
  75-bin histogram of F on [0, 1]. 0 for a circuit whose states are spread like Haar-random ones;
  the largest value, (N−1)·ln 75, is the idle circuit's (every state the same, F = 1 always), which
  the paper compares against (`idle_expressibility`). ln 75 is that bound only for one qubit.
* **Entangling capability**: the mean Meyer-Wallach measure Q = 2(1 − (1/n) Σ_k Tr ρ_k²) over
  random parameters, ρ_k the reduced state of qubit k. 0 for product states (entangler "none"),
  1 for GHZ states; Haar-random states average (N−2)/(N+1) (`haar_entangling_capability`).

Random parameters are drawn as the model can reach them: every encoded angle uniform in (0, π),
the range of `QuantumLayer.angles`, and every trainable weight uniform in [−π, π), the range of
its initialisation, which already covers every gate the weight can make (a rotation by θ + 2π
differs only by a global phase, which no fidelity or reduced state sees). The angles a trained
backbone actually feeds the circuit are not uniform: these numbers describe the circuit, not
the data.

The states come from `hqcnn.circuit.circuit_ops`, the circuit's single definition: its gates are
recorded on a batch of parameters and each gate's matrix is PennyLane's own (`qml.matrix`), applied
here to a batch of statevectors. PennyLane's `default.qubit` computes the same states (a test
compares them) but took 14 s for 10 000 states at 8 qubits and depth 8; this takes 1-2.5 s there
(2 shared CPU threads) and under 0.4 s up to 6 qubits, because a run of one-qubit gates is
merged into one 2×2 matrix per qubit, applied as two half-register products, and a run of CNOTs
into one permutation of the amplitudes.

Defaults: 10 000 random states, each paired with the 16 after it (160 000 fidelities, every pair
two independent draws). Over seeds 0-9 the estimates spread (standard deviation) by at most 0.004
for expressibility (at depth 1, where it is about 0.2; under 0.001 from depth 2 on) and 0.003 for
Q, at every size offered; the histogram's own upward bias is about 0.0002, so values below 0.001
cannot be told from Haar-random. Drawing 5000 independent pairs instead, as the paper does,
spread by up to 0.018 with the same 10 000 states.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pennylane as qml
import torch

from hqcnn import circuit
from hqcnn.circuit import CircuitSpec
from hqcnn.config import DEPTH_RANGE, QUBITS_RANGE, ModelConfig, field_option

__all__ = [
    "BINS",
    "NEIGHBOURS",
    "SAMPLES",
    "CircuitProperties",
    "default_spec",
    "entangling_capability",
    "expressibility",
    "fidelity_divergence",
    "haar_entangling_capability",
    "idle_expressibility",
    "markdown_table",
    "meyer_wallach",
    "properties",
    "purities",
    "random_states",
    "state_fidelities",
    "table",
]

BINS = 75  # the paper's histogram
SAMPLES = 10_000  # random states: see the module docstring for the spread this gives
NEIGHBOURS = 16  # fidelity pairs per state
SEED = 0
ANGLE_RANGE = (0.0, math.pi)  # QuantumLayer.angles: π/2·(1 + tanh f)
WEIGHT_RANGE = (-math.pi, math.pi)  # circuit.torch_layer's and FastCircuitLayer's init


# --------------------------------------------------------------------------------------------
# States of the circuit
# --------------------------------------------------------------------------------------------


def _kron(matrices: list[torch.Tensor]) -> torch.Tensor:
    """Kronecker product of (B, 2, 2) matrices, the first one the leading bits: (B, 2^k, 2^k)."""
    out = matrices[0]
    for m in matrices[1:]:
        out = (out[:, :, None, :, None] * m[:, None, :, None, :]).reshape(out.shape[0], out.shape[1] * 2, -1)
    return out


def _apply_local(state: torch.Tensor, pending: dict[int, torch.Tensor], n_qubits: int) -> torch.Tensor:
    """One (B, 2, 2) matrix per pending wire on (B, 2^n) states; wire 0 is the leading bit, as in PennyLane.

    The register is split into two halves, so ⊗_q M_q is two batched products of 2^(n/2)-sized
    matrices, A·Ψ·Cᵀ with Ψ the state as a (2^h, 2^(n−h)) grid: at 8 qubits about a fifth of the
    time of applying the eight one-qubit matrices one by one.
    """
    batch, high = state.shape[0], n_qubits // 2
    eye = torch.eye(2, dtype=torch.complex128).expand(batch, 2, 2)
    grid = state.reshape(batch, 2**high, 2 ** (n_qubits - high))
    left, right = range(high), range(high, n_qubits)
    if any(q in pending for q in left):
        grid = _kron([pending.get(q, eye).expand(batch, 2, 2) for q in left]) @ grid
    if any(q in pending for q in right):
        grid = grid @ _kron([pending.get(q, eye).expand(batch, 2, 2) for q in right]).mT
    return grid.reshape(state.shape)


def _permutation(matrix: np.ndarray) -> np.ndarray | None:
    """The gather index of a permutation matrix (row r takes amplitude index[r]), or None."""
    rounded = np.round(matrix.real).astype(int)
    if not (np.allclose(matrix, rounded, atol=1e-12) and (rounded.sum(0) == 1).all() and (rounded.sum(1) == 1).all()):
        return None
    if (rounded < 0).any():
        return None
    return rounded.argmax(1)


def random_states(spec: CircuitSpec, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Statevectors (B, 2^n), complex128, of `circuit_ops` for angles (B, n_features) and weights
    (B, depth, n_qubits, 2): one circuit per row, amplitudes ordered as PennyLane's `qml.state()`."""
    n = spec.n_qubits
    angles = torch.as_tensor(angles, dtype=torch.float64)
    weights = torch.as_tensor(weights, dtype=torch.float64)
    batch = angles.shape[0]
    if angles.shape != (batch, spec.n_features) or weights.shape != (batch, *spec.weight_shape):
        raise ValueError(
            f"angles must be (B, {spec.n_features}) and weights (B, {spec.weight_shape}); got "
            f"{tuple(angles.shape)} and {tuple(weights.shape)}."
        )
    with torch.no_grad():
        # Batch last, so that weights[layer, q, k] in circuit_ops is one value per circuit.
        tape = qml.tape.make_qscript(circuit.circuit_ops)(spec, angles, weights.movedim(0, -1))
        pending: dict[int, torch.Tensor] = {}  # each wire's one-qubit gates not yet applied
        perm: np.ndarray | None = None  # a run of fixed multi-qubit gates, not yet applied
        state: torch.Tensor | None = None

        def flush_one() -> torch.Tensor:
            nonlocal state
            if state is None:  # the first run acts on |0…0⟩: a product of each wire's first column
                state = torch.ones(batch, 1, dtype=torch.complex128)
                for q in range(n):
                    column = pending[q][..., :, 0] if q in pending else torch.tensor([1.0, 0.0], dtype=torch.complex128)
                    state = (state[:, :, None] * column.expand(batch, 2)[:, None, :]).reshape(batch, -1)
            else:
                state = _apply_local(state, pending, n)
            pending.clear()
            return state

        for op in tape.operations:
            wires = [int(w) for w in op.wires]
            if isinstance(op, qml.operation.Channel) or not all(0 <= w < n for w in wires):
                raise NotImplementedError(f"{op.name}: only gates on the circuit's own qubits are simulated here.")
            if len(wires) == 1:
                if perm is not None:
                    state, perm = flush_one()[:, torch.as_tensor(perm)], None
                matrix = torch.as_tensor(qml.matrix(op), dtype=torch.complex128)
                previous = pending.get(wires[0])
                # Elementwise: a batched matmul of 2×2 matrices is slower than the products it does.
                pending[wires[0]] = (
                    matrix if previous is None else (matrix[..., None] * previous[..., None, :, :]).sum(-2)
                )
                continue
            if op.num_params:
                raise NotImplementedError(f"{op.name}: multi-qubit gates with parameters are not simulated here.")
            full = np.asarray(qml.matrix(op, wire_order=range(n)), dtype=np.complex128)
            gather = _permutation(full)
            if gather is None:
                raise NotImplementedError(f"{op.name}: only multi-qubit gates that permute basis states.")
            if pending or state is None:
                flush_one()
            perm = gather if perm is None else perm[gather]  # later gate first: (P2 P1 ψ)[r] = ψ[p1[p2[r]]]
        state = flush_one()
        if perm is not None:
            state = state[:, torch.as_tensor(perm)]
        return state


def _draw(spec: CircuitSpec, count: int, rng: np.random.Generator) -> torch.Tensor:
    angles = rng.uniform(*ANGLE_RANGE, size=(count, spec.n_features))
    weights = rng.uniform(*WEIGHT_RANGE, size=(count, *spec.weight_shape))
    return random_states(spec, torch.from_numpy(angles), torch.from_numpy(weights))


# --------------------------------------------------------------------------------------------
# The two measures, from states or fidelities (so that tests can feed them Haar-random states)
# --------------------------------------------------------------------------------------------


def _log_haar_bins(n_qubits: int, bins: int) -> np.ndarray:
    """log of the Haar probability of each fidelity bin [a, b): (1−a)^(N−1) − (1−b)^(N−1), exact.

    In log form because (1 − 74/75)^255 underflows float64 at 8 qubits.
    """
    dim = 2**n_qubits
    edges = np.linspace(0.0, 1.0, bins + 1)
    a, b = edges[:-1], edges[1:]
    with np.errstate(divide="ignore"):
        ratio_log = np.log1p(-(b - a) / (1.0 - a))  # log((1−b)/(1−a)); −inf for the last bin
    return (dim - 1) * np.log1p(-a) + np.log(-np.expm1((dim - 1) * ratio_log))


def fidelity_divergence(fidelities: np.ndarray, n_qubits: int, bins: int = BINS) -> float:
    """KL(P_sample ‖ P_Haar) of fidelities over `bins` equal bins of [0, 1], Haar bins integrated exactly."""
    values = np.clip(np.asarray(fidelities, dtype=np.float64).ravel(), 0.0, 1.0)
    counts = np.histogram(values, bins=bins, range=(0.0, 1.0))[0]
    p = counts / counts.sum()
    seen = p > 0
    return float(np.sum(p[seen] * (np.log(p[seen]) - _log_haar_bins(n_qubits, bins)[seen])))


def idle_expressibility(n_qubits: int, bins: int = BINS) -> float:
    """The idle circuit's expressibility, (N−1)·ln(bins): the largest the divergence can be."""
    return float(-_log_haar_bins(n_qubits, bins)[-1])


def _abs2(values: torch.Tensor) -> torch.Tensor:
    """|z|² without the square root of `abs`."""
    return torch.view_as_real(values).square().sum(-1)


def state_fidelities(states: torch.Tensor, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """|⟨ψ_i|ψ_j⟩|² of each state i with the `neighbours` states after it (cyclically): B·neighbours pairs.

    Each pair is two independent draws, as in the paper; pairs sharing a state are not independent
    of each other, but sixteen of them per state cut the spread over seeds and the histogram's bias
    several-fold at no cost in states (measured at 8 qubits, depth 1: 0.017 → 0.002).
    """
    count = states.shape[0]
    if not 0 < neighbours < count:
        raise ValueError(f"neighbours must be between 1 and {count - 1} for {count} states, got {neighbours}.")
    window = torch.cat([states, states[:neighbours]]).unfold(0, neighbours + 1, 1)[:count]  # (B, 2^n, k + 1)
    overlaps = (states.conj()[:, None, :] @ window)[:, 0, 1:]
    return _abs2(overlaps).numpy().ravel()


def purities(states: torch.Tensor | np.ndarray, n_qubits: int) -> np.ndarray:
    """Tr ρ_k² of each qubit k's reduced state: (B, n)."""
    states = torch.as_tensor(np.asarray(states) if not isinstance(states, torch.Tensor) else states)
    states = states.to(torch.complex128)
    out = []
    for k in range(n_qubits):
        grid = states.reshape(states.shape[0], 2**k, 2, 2 ** (n_qubits - k - 1))
        # ρ_k = G·G† with G the amplitudes as (2, rest): every other qubit traced out in one bmm.
        rows = grid.transpose(1, 2).reshape(states.shape[0], 2, -1)
        rho = rows @ rows.mH
        out.append(_abs2(rho).sum((-2, -1)))
    return torch.stack(out, dim=-1).numpy()


def meyer_wallach(states: torch.Tensor | np.ndarray, n_qubits: int) -> np.ndarray:
    """Meyer-Wallach Q = 2(1 − mean_k Tr ρ_k²) of each state (B, 2^n) → (B,)."""
    # Clipped: rounding can leave a product state's Q at −1e-17, shown as "−0.000".
    return np.clip(2.0 * (1.0 - purities(states, n_qubits).mean(-1)), 0.0, 1.0)


def haar_entangling_capability(n_qubits: int) -> float:
    """Mean Q of Haar-random states, (N−2)/(N+1): the mean purity of one qubit of a random state on
    2 × N/2 dimensions is (2 + N/2)/(N + 1) (Lubkin 1978)."""
    dim = 2**n_qubits
    return (dim - 2) / (dim + 1)


# --------------------------------------------------------------------------------------------
# The circuit's values
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CircuitProperties:
    """Expressibility and entangling capability of one circuit, with their references."""

    spec: CircuitSpec
    expressibility: float  # KL divergence to Haar; lower = more expressive
    idle_expressibility: float  # the idle circuit's: the largest possible
    entangling_capability: float  # mean Meyer-Wallach Q
    haar_entangling_capability: float  # mean Q of Haar-random states
    samples: int  # random states; expressibility uses samples × NEIGHBOURS pairs of them
    seconds: float


def expressibility(
    spec: CircuitSpec, samples: int = SAMPLES, bins: int = BINS, seed: int = SEED, neighbours: int = NEIGHBOURS
) -> float:
    """KL divergence of the circuit's fidelity distribution from the Haar one (Sim et al. 2019, Eq. 6).

    `samples` states, each with its own parameters: every encoded angle uniform in (0, π) (the
    range of `QuantumLayer.angles`), every trainable weight uniform in [−π, π) (the range of its
    initialisation). Fidelities of each state with its `neighbours` next ones, in a histogram of
    `bins` bins. 0 ≤ value ≤ (N−1)·ln(bins) = `idle_expressibility`; lower = closer to Haar-random.
    """
    states = _draw(spec, samples, np.random.default_rng(seed))
    return fidelity_divergence(state_fidelities(states, neighbours), spec.n_qubits, bins)


def entangling_capability(spec: CircuitSpec, samples: int = SAMPLES, seed: int = SEED) -> float:
    """Mean Meyer-Wallach Q of `samples` random states, parameters drawn as in `expressibility`.

    0 ≤ value ≤ 1; Haar-random states average `haar_entangling_capability`.
    """
    return float(meyer_wallach(_draw(spec, samples, np.random.default_rng(seed)), spec.n_qubits).mean())


def properties(
    spec: CircuitSpec, samples: int = SAMPLES, bins: int = BINS, seed: int = SEED, neighbours: int = NEIGHBOURS
) -> CircuitProperties:
    """Both measures from the same states: equal to `expressibility` and `entangling_capability` with this seed."""
    start = time.perf_counter()
    states = _draw(spec, samples, np.random.default_rng(seed))
    expr = fidelity_divergence(state_fidelities(states, neighbours), spec.n_qubits, bins)
    q = float(meyer_wallach(states, spec.n_qubits).mean())
    return CircuitProperties(
        spec,
        expr,
        idle_expressibility(spec.n_qubits, bins),
        q,
        haar_entangling_capability(spec.n_qubits),
        samples,
        time.perf_counter() - start,
    )


def default_spec(n_qubits: int, depth: int) -> CircuitSpec:
    """The circuit of (n_qubits, depth) with the app's default features, entangler and encoding."""
    features = field_option(ModelConfig, "n_features").default_from({"n_qubits": n_qubits})
    defaults = ModelConfig(n_qubits=n_qubits, depth=depth, n_features=features)
    return CircuitSpec.from_model_config(defaults)


def table(
    qubits: Iterable[int] = range(QUBITS_RANGE[0], QUBITS_RANGE[1] + 1),
    depths: Iterable[int] = range(DEPTH_RANGE[0], DEPTH_RANGE[1] + 1),
    samples: int = SAMPLES,
    seed: int = SEED,
) -> list[CircuitProperties]:
    """`properties` of every (n_qubits, depth) the app offers, with the default other settings."""
    depths = list(depths)
    return [properties(default_spec(n, d), samples, seed=seed) for n in qubits for d in depths]


def markdown_table(rows: Iterable[CircuitProperties]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| qubits | depth | features | expressibility (KL, ↓) | idle circuit (max) | entangling capability Q | Haar Q | s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        s = r.spec
        # Below 0.001 the histogram's own bias (about 0.0002) is as large as the value.
        expr = f"{r.expressibility:.3f}" if r.expressibility >= 0.0005 else "< 0.001"
        lines.append(
            f"| {s.n_qubits} | {s.depth} | {s.n_features} | {expr} | {r.idle_expressibility:.1f} | "
            f"{r.entangling_capability:.3f} | {r.haar_entangling_capability:.3f} | {r.seconds:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Print the table of every size the app offers, and how long it took."""
    start = time.perf_counter()
    rows = table()
    spec = rows[0].spec
    print(
        f"Expressibility and entangling capability (Sim et al. 2019), entangler {spec.entangler}, encoding "
        f"{spec.encoding}, features = 2 × qubits; {SAMPLES} random states, {SAMPLES * NEIGHBOURS} fidelity pairs, "
        f"{BINS} bins, seed {SEED}.\n"
    )
    print(markdown_table(rows))
    print(f"\n{len(rows)} circuits in {time.perf_counter() - start:.1f} s (torch threads: {torch.get_num_threads()}).")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
