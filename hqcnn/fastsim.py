"""A fast, exact, batched statevector simulator for the circuit, compiled from `circuit_ops`.

Why: PennyLane's `default.qubit` applies every gate of a broadcast batch as a separate einsum
and pays Python overhead per gate and per autograd node, which dominates training time for the
small registers used here. This module runs the same circuit in a handful of plain torch ops.

How the fast path stays the *same* circuit (it is derived, not a second copy):

1. **Record.** `compile_program` calls `hqcnn.circuit.circuit_ops` (looked up at call time, so a
   changed or monkeypatched definition is what gets compiled) inside `qml.tape.make_qscript`,
   with *probe* tensors for the angles and the weights: float64 leaves with `requires_grad`,
   filled with random values.
2. **Provenance by autograd.** Every recorded gate parameter is a tensor computed from the
   probes. Its gradient with respect to (angles, weights) has exactly one non-zero entry when
   the parameter is `scale * source + offset` with `source` one input feature `i` or one weight
   `[l, q, k]`; no dependence means a constant. The circuit is recorded a second time with
   other random probes and every parameter must be reproduced by the same affine rule, which
   rejects non-linear uses (e.g. `sin(x)`) and anything else the program could not replay.
3. **Gate semantics from PennyLane.** Nothing is hard-coded per gate name. A one-parameter,
   one-qubit gate is accepted when PennyLane's own matrix has the rotation form
   `U(θ) = cos(θ/2)·I − i·sin(θ/2)·G` with `G` Hermitian and `G² = I` (RX, RY, RZ, ...): `G` is
   read off the recorded gate's matrix at one probe angle and verified at another. A gate
   without parameters is kept as its matrix (`qml.matrix`), checked to be unitary; a product
   of such gates that is a permutation (CNOT rings) is applied as an index gather.
4. **Reject the rest.** Channels (noise), measurements, multi-qubit parametric gates, batched
   or non-affine parameters raise `UnsupportedCircuit` (a `NotImplementedError`), so callers
   can fall back to PennyLane; `supports()` answers the same question without raising.

The result is a `CircuitProgram`: a list of `Instruction`s (gate name, wires, parameter source,
matrix) that can be printed and compared. `_Executor` turns it into stages, evaluated in torch:

* the leading run of one-qubit gates acts on |0…0⟩, so it yields a product state: each qubit's
  gates are multiplied as batched 2×2 matrices and the 2-vectors are Kronecker-multiplied;
* every later run of one-qubit gates is one operator ⊗_q M_q: built as a full 2^n×2^n Kronecker
  product for small registers, or as two half-register factors applied from the left and the
  right of the state viewed as a (2^h, 2^(n−h)) matrix for larger ones;
* runs of fixed multi-qubit gates are fused at compile time into one 2^n×2^n matrix and applied
  as an index gather (permutation), an element-wise product (diagonal) or a matmul;
* all 2×2 gate matrices of a forward pass (weights shared over the batch, inputs per sample)
  come from one vectorised cos/sin evaluation, and the matrices of all stages are composed and
  Kronecker-multiplied together, so the number of torch ops barely grows with depth;
* ⟨Z_q⟩ = |ψ|² @ signs, and ⟨X_q⟩, ⟨Y_q⟩ from pairs of amplitudes that differ in bit q.

Autograd through these ops gives the backward pass (inputs and weights). float64 inputs are
simulated in complex128, float32 in complex64; the output has the dtype of the inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pennylane as qml
import torch

from hqcnn import circuit
from hqcnn.circuit import CircuitSpec

__all__ = [
    "CircuitProgram",
    "FastCircuitLayer",
    "Instruction",
    "ParamSource",
    "UnsupportedCircuit",
    "clear_cache",
    "compile_program",
    "expectations",
    "supports",
]

# Registers with at least this many qubits apply a layer of one-qubit gates as two half-register
# factors instead of one full 2^n x 2^n Kronecker product (chosen by benchmarks/bench_quantum.py
# style measurements: the full product costs B·4^n per stage, the split 2·B·2^n·2^(n/2)).
SPLIT_MIN_QUBITS = 6
_ATOL = 1e-9  # tolerance of the compile-time checks, far above float64 rounding of the probes


class UnsupportedCircuit(NotImplementedError):
    """The circuit contains something the fast simulator cannot replay exactly; use PennyLane."""


# --------------------------------------------------------------------------------------------
# The compiled program
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSource:
    """Where a gate parameter comes from: `scale * source + offset`.

    kind is "input" (index = (i,), feature i of the angles), "weight" (index = (l, q, k)) or
    "const" (index = (), the value is `offset`).
    """

    kind: str
    index: tuple[int, ...] = ()
    scale: float = 1.0
    offset: float = 0.0

    def __str__(self) -> str:
        if self.kind == "const":
            return f"{self.offset:.6g}"
        name = "x" if self.kind == "input" else "w"
        text = f"{name}[{','.join(map(str, self.index))}]"
        if self.scale != 1.0:
            text = f"{self.scale:.6g}*{text}"
        if self.offset != 0.0:
            text = f"{text}{self.offset:+.6g}"
        return text


@dataclass(frozen=True)
class Instruction:
    """One recorded gate.

    For a rotation (`source` set) `matrix` is its generator G, U(θ) = cos(θ/2)·I − i·sin(θ/2)·G;
    for a fixed gate (`source` None) it is the gate's unitary on `wires`, in that wire order.
    """

    name: str
    wires: tuple[int, ...]
    source: ParamSource | None
    matrix: np.ndarray = field(compare=False, repr=False)

    def __str__(self) -> str:
        wires = ",".join(map(str, self.wires))
        return f"{self.name}({self.source}) @ {wires}" if self.source else f"{self.name} @ {wires}"


@dataclass(frozen=True)
class CircuitProgram:
    """The circuit as recorded from `circuit_ops`: instructions in the order they were queued."""

    n_qubits: int
    n_features: int
    weight_shape: tuple[int, ...]
    instructions: tuple[Instruction, ...]

    def describe(self) -> str:
        """One instruction per line, e.g. `RY(x[0]) @ 0`, `RZ(w[1,2,1]) @ 2`, `CNOT @ 0,1`."""
        return "\n".join(str(ins) for ins in self.instructions)

    @property
    def signature(self) -> tuple[tuple[str, tuple[int, ...], ParamSource | None], ...]:
        """(name, wires, source) per instruction: what tests compare to see structure change."""
        return tuple((ins.name, ins.wires, ins.source) for ins in self.instructions)


def _record(spec: CircuitSpec, noise: float, seed: int) -> tuple[list, torch.Tensor, torch.Tensor]:
    """Run `circuit_ops` on random probe tensors and return the queued operations."""
    gen = torch.Generator().manual_seed(seed)

    def probe(shape: Sequence[int]) -> torch.Tensor:
        # Magnitudes in [0.4, 2.4] with random signs: distinct, away from 0 and ±π.
        values = 0.4 + 2.0 * torch.rand(tuple(shape), generator=gen, dtype=torch.float64)
        signs = torch.randint(0, 2, tuple(shape), generator=gen).to(torch.float64) * 2 - 1
        return (values * signs).requires_grad_(True)

    angles, weights = probe((spec.n_features,)), probe(spec.weight_shape)
    # Resolved through the module at call time on purpose: the program follows the definition.
    tape = qml.tape.make_qscript(circuit.circuit_ops)(spec, angles, weights, noise)
    if tape.measurements:
        raise UnsupportedCircuit("circuit_ops queues measurements; the fast simulator cannot.")
    return list(tape.operations), angles, weights


def _source_of(param: object, angles: torch.Tensor, weights: torch.Tensor, where: str) -> ParamSource:
    """The affine source of one recorded parameter, found from its gradient w.r.t. the probes."""
    if not isinstance(param, torch.Tensor):
        try:
            return ParamSource("const", offset=float(param))  # type: ignore[arg-type]
        except (TypeError, ValueError) as err:
            raise UnsupportedCircuit(f"{where}: parameter {param!r} is not a number.") from err
    if param.numel() != 1 or param.dim() != 0:
        raise UnsupportedCircuit(f"{where}: parameter has shape {tuple(param.shape)}, not a scalar.")
    if not param.requires_grad:
        return ParamSource("const", offset=float(param.detach()))
    grads = torch.autograd.grad(param, (angles, weights), retain_graph=True, allow_unused=True)
    hits: list[tuple[str, tuple[int, ...], float]] = []
    for kind, grad in zip(("input", "weight"), grads):
        if grad is None:
            continue
        for index in torch.nonzero(grad).tolist():
            hits.append((kind, tuple(index), float(grad[tuple(index)])))
    if not hits:
        return ParamSource("const", offset=float(param.detach()))
    if len(hits) > 1:
        names = ", ".join(f"{k}{list(i)}" for k, i, _ in hits)
        raise UnsupportedCircuit(f"{where}: parameter mixes several sources ({names}).")
    kind, index, scale = hits[0]
    value = float((angles if kind == "input" else weights).detach()[index])
    return ParamSource(kind, index, scale, float(param.detach()) - scale * value)


def _evaluate(source: ParamSource, angles: torch.Tensor, weights: torch.Tensor) -> float:
    """What the program would feed a gate, for the affine check against a second recording."""
    if source.kind == "const":
        return source.offset
    value = float((angles if source.kind == "input" else weights).detach()[source.index])
    return source.scale * value + source.offset


def _matrix(op: qml.operation.Operator) -> np.ndarray:
    """PennyLane's matrix of an operator on its own wires, as a complex128 numpy array."""
    try:
        mat = qml.matrix(op)
    except Exception as err:  # noqa: BLE001 - any failure means "no matrix": fall back
        raise UnsupportedCircuit(f"{op.name} on wires {op.wires.tolist()} has no matrix.") from err
    if isinstance(mat, torch.Tensor):
        mat = mat.detach().cpu().numpy()
    return np.asarray(mat, dtype=np.complex128)


def _generator(op1: qml.operation.Operator, op2: qml.operation.Operator, theta1: float,
               theta2: float, where: str) -> np.ndarray:
    """G with U(θ) = cos(θ/2)·I − i·sin(θ/2)·G, read from U(θ1) and verified at U(θ2)."""
    (ref, theta_ref), (check, theta_check) = sorted(
        ((op1, theta1), (op2, theta2)), key=lambda p: -abs(math.sin(p[1] / 2))
    )
    eye = np.eye(2)
    sin_ref = math.sin(theta_ref / 2)
    if abs(sin_ref) < 1e-3:
        raise UnsupportedCircuit(f"{where}: probe angles too close to 0 to identify the gate.")
    gen = 1j * (_matrix(ref) - math.cos(theta_ref / 2) * eye) / sin_ref
    expected = math.cos(theta_check / 2) * eye - 1j * math.sin(theta_check / 2) * gen
    if not (
        np.allclose(gen, gen.conj().T, atol=_ATOL)
        and np.allclose(gen @ gen, eye, atol=_ATOL)
        and np.allclose(_matrix(check), expected, atol=_ATOL)
    ):
        raise UnsupportedCircuit(f"{where}: {ref.name} is not a rotation exp(-iθG/2) with G²=I.")
    return gen


def _op_key(op: qml.operation.Operator) -> tuple[str, str]:
    """Gates with equal keys have the same θ → matrix map (class and hyper-parameters)."""
    return (type(op).__qualname__, repr(sorted((k, repr(v)) for k, v in op.hyperparameters.items())))


def _compile(spec: CircuitSpec, noise: float) -> CircuitProgram:
    ops1, angles1, weights1 = _record(spec, noise, seed=1234)
    ops2, angles2, weights2 = _record(spec, noise, seed=4321)
    if [(op.name, op.wires.tolist()) for op in ops1] != [(op.name, op.wires.tolist()) for op in ops2]:
        raise UnsupportedCircuit("circuit_ops queues different gates for different inputs.")
    generators: dict[tuple[str, str], np.ndarray] = {}
    instructions = []
    for number, (op1, op2) in enumerate(zip(ops1, ops2)):
        where = f"gate {number} ({op1.name} on wires {op1.wires.tolist()})"
        if isinstance(op1, qml.operation.Channel):
            raise UnsupportedCircuit(f"{where}: noise channels need a mixed-state simulator.")
        if not isinstance(op1, qml.operation.Operator):
            raise UnsupportedCircuit(f"{where}: not a gate.")
        wires = tuple(op1.wires.tolist())
        if not all(isinstance(w, int) and 0 <= w < spec.n_qubits for w in wires):
            raise UnsupportedCircuit(f"{where}: wires outside 0..{spec.n_qubits - 1}.")
        if len(set(wires)) != len(wires):
            raise UnsupportedCircuit(f"{where}: repeated wires.")
        if op1.num_params == 0:
            mat = _matrix(op1)
            if mat.shape != (2 ** len(wires),) * 2 or not np.allclose(
                mat @ mat.conj().T, np.eye(mat.shape[0]), atol=_ATOL
            ):
                raise UnsupportedCircuit(f"{where}: not a unitary gate.")
            instructions.append(Instruction(op1.name, wires, None, mat))
            continue
        if op1.num_params != 1 or len(wires) != 1:
            raise UnsupportedCircuit(f"{where}: only one-parameter one-qubit rotations are known.")
        source = _source_of(op1.data[0], angles1, weights1, where)
        theta2 = float(qml.math.toarray(op2.data[0]))
        if abs(_evaluate(source, angles2, weights2) - theta2) > _ATOL * max(1.0, abs(theta2)):
            raise UnsupportedCircuit(f"{where}: parameter is not an affine function of one input or weight.")
        key = _op_key(op1)
        if key not in generators:
            theta1 = float(qml.math.toarray(op1.data[0]))
            generators[key] = _generator(op1, op2, theta1, theta2, where)
        instructions.append(Instruction(op1.name, wires, source, generators[key]))
    return CircuitProgram(spec.n_qubits, spec.n_features, tuple(spec.weight_shape), tuple(instructions))


def _fingerprint() -> tuple:
    """The module-level objects of hqcnn.circuit; a cached program is reused only while they are
    the very same objects (so monkeypatching circuit_ops, ENTANGLER_PAIRS or AXES recompiles)."""
    items = []
    for name, obj in vars(circuit).items():
        if name.startswith("__"):
            continue
        if isinstance(obj, dict):
            obj = tuple(obj.items())
        try:
            hash(obj)
        except TypeError:
            continue
        items.append((name, obj))
    return tuple(items)


_CACHE: dict[tuple, tuple[tuple, _Executor]] = {}


def compile_program(spec: CircuitSpec, noise: float = 0.0) -> CircuitProgram:
    """Record `circuit.circuit_ops(spec, ...)` and compile it; raises UnsupportedCircuit."""
    return _cached_executor(spec, noise).program


def _cached_executor(spec: CircuitSpec, noise: float = 0.0) -> _Executor:
    key = (spec, float(noise))
    fingerprint = _fingerprint()
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == fingerprint:
        return hit[1]
    executor = _Executor(_compile(spec, noise))
    _CACHE[key] = (fingerprint, executor)
    return executor


def clear_cache() -> None:
    """Forget compiled programs (they are also recompiled whenever hqcnn.circuit changes)."""
    _CACHE.clear()


def supports(spec: CircuitSpec, noise: float = 0.0, shots: int | None = None) -> bool:
    """Whether the fast path reproduces this configuration exactly: noiseless, analytic
    (shots=None), and every gate understood by the compiler."""
    if noise > 0 or shots is not None:
        return False
    try:
        _cached_executor(spec, noise)
    except UnsupportedCircuit:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------


def _kron_vectors(v: torch.Tensor) -> torch.Tensor:
    """(..., k, d) → (..., d^k): v[0] ⊗ v[1] ⊗ ... in log2(k) batched steps (wire 0 = MSB)."""
    tail = []
    while v.shape[-2] > 1:
        if v.shape[-2] % 2:  # keep the odd last factor; it goes last again at the end
            tail.append(v[..., -1, :])
            v = v[..., :-1, :]
        a, b = v[..., 0::2, :], v[..., 1::2, :]
        v = (a[..., :, None] * b[..., None, :]).flatten(-2)
    out = v[..., 0, :]
    for t in reversed(tail):
        out = (out[..., :, None] * t[..., None, :]).flatten(-2)
    return out


def _kron2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched Kronecker product of two square matrices: (..., p, p), (..., r, r) → (..., pr, pr)."""
    p, r = a.shape[-1], b.shape[-1]
    out = a[..., :, None, :, None] * b[..., None, :, None, :]
    return out.reshape(*out.shape[:-4], p * r, p * r)


def _kron_matrices(m: torch.Tensor) -> torch.Tensor:
    """(..., k, d, d) → (..., d^k, d^k): m[0] ⊗ m[1] ⊗ ... in log2(k) batched steps."""
    tail = []
    while m.shape[-3] > 1:
        if m.shape[-3] % 2:
            tail.append(m[..., -1, :, :])
            m = m[..., :-1, :, :]
        m = _kron2(m[..., 0::2, :, :], m[..., 1::2, :, :])
    out = m[..., 0, :, :]
    for t in reversed(tail):
        out = _kron2(out, t)
    return out


def _embed(unitary: np.ndarray, wires: tuple[int, ...], n_qubits: int) -> np.ndarray:
    """The 2^n x 2^n matrix of a gate acting on `wires` of an n-qubit register (wire 0 = MSB)."""
    k, dim = len(wires), 2**n_qubits
    grid = np.eye(dim, dtype=np.complex128).reshape((2,) * n_qubits + (dim,))
    gate = unitary.reshape((2,) * (2 * k))
    out = np.tensordot(gate, grid, axes=(list(range(k, 2 * k)), list(wires)))
    return np.moveaxis(out, list(range(k)), list(wires)).reshape(dim, dim)


@dataclass
class _LocalStage:
    """A run of one-qubit gates: slot table (n, m) of bank indices, identity-padded."""

    slots: np.ndarray
    batched: bool
    active: tuple[bool, bool]  # whether the high / low half of the register has any gate
    position: int = 0  # index of this stage within its table (shared or batched)


@dataclass
class _FixedStage:
    """A run of fixed multi-qubit gates fused into one matrix, stored in its cheapest form."""

    kind: str  # "perm" | "diag" | "dense"
    data: np.ndarray


class _Executor:
    """Executable stages of a CircuitProgram (see the module docstring)."""

    def __init__(self, program: CircuitProgram) -> None:
        self.program = program
        n = self.n_qubits = program.n_qubits
        self.dim = 2**n
        self.split = n >= SPLIT_MIN_QUBITS
        self.high = (n + 1) // 2  # qubits in the high (most significant) half when split

        # Bank of 2x2 matrices. Shared part: [identity, fixed one-qubit gates..., rotations fed
        # by weights or constants...]; batched part: rotations fed by input features.
        fixed_mats: list[np.ndarray] = [np.eye(2, dtype=np.complex128)]
        shared_rot: list[Instruction] = []
        data_rot: list[Instruction] = []
        bank_ref: list[tuple[str, int]] = []  # per instruction: ("fixed"|"shared"|"data", index)
        for ins in program.instructions:
            if len(ins.wires) != 1:
                bank_ref.append(("multi", -1))
            elif ins.source is None:
                bank_ref.append(("fixed", len(fixed_mats)))
                fixed_mats.append(ins.matrix)
            elif ins.source.kind == "input":
                bank_ref.append(("data", len(data_rot)))
                data_rot.append(ins)
            else:
                bank_ref.append(("shared", len(shared_rot)))
                shared_rot.append(ins)
        self.fixed_mats = np.stack(fixed_mats)
        n_fixed = len(fixed_mats)
        self.n_shared_bank = n_fixed + len(shared_rot)
        self.shared_rot = self._rotation_table(shared_rot, program)
        self.data_rot = self._rotation_table(data_rot, program)

        def bank_index(ref: tuple[str, int]) -> int:
            kind, idx = ref
            return {"fixed": idx, "shared": n_fixed + idx, "data": self.n_shared_bank + idx}[kind]

        # Split the instruction list into runs of one-qubit gates and runs of fixed
        # multi-qubit gates; the first run acts on |0...0> and gives the product state.
        runs: list[tuple[bool, list[int]]] = []
        for i, ins in enumerate(program.instructions):
            single = len(ins.wires) == 1
            if not single and ins.source is not None:
                raise UnsupportedCircuit(f"{ins}: parametrised multi-qubit gates are not supported.")
            if runs and runs[-1][0] == single:
                runs[-1][1].append(i)
            else:
                runs.append((single, [i]))
        if not runs or not runs[0][0]:
            runs.insert(0, (True, []))  # no leading one-qubit gates: the product state is |0..0>

        self.stages: list[_LocalStage | _FixedStage] = []
        for single, members in runs:
            if single:
                per_wire: list[list[int]] = [[] for _ in range(n)]
                for i in members:
                    per_wire[program.instructions[i].wires[0]].append(bank_index(bank_ref[i]))
                longest = max(1, *(len(w) for w in per_wire))
                width = 1 << (longest - 1).bit_length()  # a power of two for the pairwise products
                slots = np.zeros((n, width), dtype=np.int64)  # 0 = identity padding
                for q, idxs in enumerate(per_wire):
                    slots[q, : len(idxs)] = idxs
                batched = any(bank_ref[i][0] == "data" for i in members)
                active = (any(per_wire[: self.high]), any(per_wire[self.high :]))
                self.stages.append(_LocalStage(slots, batched, active))
            else:
                total = np.eye(self.dim, dtype=np.complex128)
                for i in members:
                    ins = program.instructions[i]
                    total = _embed(ins.matrix, ins.wires, n) @ total
                fixed = self._classify(total)
                if fixed is not None:
                    self.stages.append(fixed)

        # Stages after the first are built together, one table per kind (shared / batched), so
        # their matrices come out of one vectorised gather-compose-kron pipeline per table.
        later = [s for s in self.stages[1:] if isinstance(s, _LocalStage)]
        self.tables: dict[bool, np.ndarray] = {}
        for batched in (False, True):
            group = [s for s in later if s.batched == batched]
            if group:
                width = max(s.slots.shape[1] for s in group)
                table = np.zeros((len(group), n, width), dtype=np.int64)
                for pos, s in enumerate(group):
                    s.position = pos
                    table[pos, :, : s.slots.shape[1]] = s.slots
                self.tables[batched] = table

        qubit_bits = (np.arange(self.dim)[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1
        self.z_signs = 1.0 - 2.0 * qubit_bits  # (2^n, n): ⟨Z_q⟩ = probs @ z_signs
        zero_rows = [np.flatnonzero(qubit_bits[:, q] == 0) for q in range(n)]
        self.pair_lo = np.stack(zero_rows)  # (n, 2^(n-1)): indices with bit q = 0
        self.pair_hi = self.pair_lo | (1 << (n - 1 - np.arange(n)))[:, None]
        self._consts: dict[tuple[torch.dtype, torch.device], dict[str, torch.Tensor]] = {}

    @staticmethod
    def _rotation_table(rotations: list[Instruction], program: CircuitProgram) -> dict:
        """Gather indices, affine coefficients and −iG per rotation for one bank part."""
        n_weights = int(np.prod(program.weight_shape))
        index, scale, offset, minus_i_g = [], [], [], []
        for ins in rotations:
            src = ins.source
            assert src is not None
            if src.kind == "input":
                index.append(src.index[0])
            elif src.kind == "weight":
                index.append(int(np.ravel_multi_index(src.index, program.weight_shape)))
            else:  # constants live after the weights in the extended parameter vector
                index.append(n_weights)
            scale.append(src.scale if src.kind != "const" else 0.0)
            offset.append(src.offset)
            minus_i_g.append(-1j * ins.matrix)
        return {
            "index": np.asarray(index, dtype=np.int64),
            "scale": np.asarray(scale, dtype=np.float64),
            "offset": np.asarray(offset, dtype=np.float64),
            "gen": np.asarray(minus_i_g, dtype=np.complex128).reshape(-1, 2, 2),
            # Plain gathers skip the multiply-add, constants need a zero slot after the weights.
            "affine": any(s != 1.0 for s in scale) or any(o != 0.0 for o in offset),
            "has_const": any(ins.source.kind == "const" for ins in rotations if ins.source),
        }

    def _classify(self, total: np.ndarray) -> _FixedStage | None:
        """The cheapest exact form of a fused fixed-gate matrix (None for the identity)."""
        if np.allclose(total, np.eye(self.dim), atol=1e-12):
            return None
        nonzero = np.abs(total) > 1e-12
        if np.all(nonzero.sum(axis=1) == 1) and np.allclose(total[nonzero], 1.0, atol=1e-12):
            return _FixedStage("perm", np.argmax(nonzero, axis=1))  # new[i] = old[src[i]]
        if not np.any(nonzero & ~np.eye(self.dim, dtype=bool)):
            return _FixedStage("diag", np.diag(total).copy())
        return _FixedStage("dense", total)

    def consts(self, cdtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
        """Constant tensors for one complex dtype and device, made once."""
        key = (cdtype, device)
        if key not in self._consts:
            rdtype = torch.float64 if cdtype == torch.complex128 else torch.float32
            out: dict[str, torch.Tensor] = {
                "fixed": torch.as_tensor(self.fixed_mats, dtype=cdtype, device=device),
                "eye2": torch.eye(2, dtype=cdtype, device=device),
                "z_signs": torch.as_tensor(self.z_signs, dtype=rdtype, device=device),
                "pair_lo": torch.as_tensor(self.pair_lo, device=device),
                "pair_hi": torch.as_tensor(self.pair_hi, device=device),
                "slots0": torch.as_tensor(self.stages[0].slots.reshape(-1), device=device),
            }
            for part in ("shared", "data"):
                table = self.shared_rot if part == "shared" else self.data_rot
                out[f"{part}_index"] = torch.as_tensor(table["index"], device=device)
                out[f"{part}_scale"] = torch.as_tensor(table["scale"], dtype=rdtype, device=device)
                out[f"{part}_offset"] = torch.as_tensor(table["offset"], dtype=rdtype, device=device)
                out[f"{part}_gen"] = torch.as_tensor(table["gen"], dtype=cdtype, device=device)
            for batched, table in self.tables.items():
                out[f"table{int(batched)}"] = torch.as_tensor(table.reshape(-1), device=device)
            for i, stage in enumerate(self.stages):
                if isinstance(stage, _FixedStage):
                    dtype = None if stage.kind == "perm" else cdtype
                    out[f"fixed{i}"] = torch.as_tensor(stage.data, dtype=dtype, device=device)
            self._consts[key] = out
        return self._consts[key]

    @staticmethod
    def _rotations(theta: torch.Tensor, table: dict, c: dict, part: str) -> torch.Tensor:
        """cos(θ/2)·I − i·sin(θ/2)·G for every rotation of a bank part: (..., R, 2, 2)."""
        if table["affine"]:
            theta = theta * c[f"{part}_scale"] + c[f"{part}_offset"]
        half = theta * 0.5
        cos, sin = torch.cos(half)[..., None, None], torch.sin(half)[..., None, None]
        return cos * c["eye2"] + sin * c[f"{part}_gen"]

    @staticmethod
    def _compose(bank: torch.Tensor, flat_slots: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """Gather slot matrices and multiply each wire's sequence: (..., *shape[:-1], 2, 2)."""
        g = bank.index_select(-3, flat_slots)
        g = g.reshape(*bank.shape[:-3], *shape, 2, 2)
        while g.shape[-3] > 1:  # later gates on the left: slot 1 @ slot 0, then pairs of pairs
            g = g[..., 1::2, :, :] @ g[..., 0::2, :, :]
        return g[..., 0, :, :]

    def run(self, angles: torch.Tensor, weights: torch.Tensor, observables: str) -> torch.Tensor:
        """angles (B, F) real, weights real; returns (B, n) or (B, n, 3), real, B broadcast."""
        cdtype = torch.complex128 if angles.dtype == torch.float64 else torch.complex64
        c = self.consts(cdtype, angles.device)
        n, batch = self.n_qubits, angles.shape[0]

        shared = c["fixed"]
        if len(self.shared_rot["index"]):
            flat_w = weights.reshape(-1)
            if self.shared_rot["has_const"]:
                flat_w = torch.cat([flat_w, flat_w.new_zeros(1)])  # slot for constant angles
            theta = flat_w.index_select(0, c["shared_index"])
            shared = torch.cat([shared, self._rotations(theta, self.shared_rot, c, "shared")])
        bank = shared
        if len(self.data_rot["index"]):
            theta = angles.index_select(-1, c["data_index"])
            data = self._rotations(theta, self.data_rot, c, "data")
            bank = torch.cat([shared.expand(batch, *shared.shape), data], dim=-3)

        # Product state from the leading one-qubit gates.
        first = self.stages[0]
        assert isinstance(first, _LocalStage)
        m0 = self._compose(bank if first.batched else shared, c["slots0"], first.slots.shape)
        state = _kron_vectors(m0[..., :, 0])  # each qubit's matrix applied to |0>
        if state.dim() == 1:
            state = state.unsqueeze(0)

        # Operators of all later one-qubit stages, one pipeline per table.
        ops: dict[bool, tuple[torch.Tensor, ...]] = {}
        for batched, table in self.tables.items():
            m = self._compose(bank if batched else shared, c[f"table{int(batched)}"], table.shape)
            if self.split:
                ops[batched] = (_kron_matrices(m[..., : self.high, :, :]),
                                _kron_matrices(m[..., self.high :, :, :]))
            else:
                ops[batched] = (_kron_matrices(m),)

        for i, stage in enumerate(self.stages[1:], start=1):
            if isinstance(stage, _FixedStage):
                const = c[f"fixed{i}"]
                if stage.kind == "perm":
                    state = state.index_select(-1, const)
                elif stage.kind == "diag":
                    state = state * const
                else:
                    state = state @ const.mT
                continue
            mats = [m[..., stage.position, :, :] if stage.batched else m[stage.position]
                    for m in ops[stage.batched]]
            if not self.split:
                state = _apply(state, mats[0])
                continue
            grid = state.reshape(*state.shape[:-1], 2**self.high, 2 ** (n - self.high))
            if stage.active[0]:
                grid = mats[0] @ grid
            if stage.active[1]:
                grid = grid @ mats[1].mT
            state = grid.reshape(*grid.shape[:-2], self.dim)

        if observables == "z":
            probs = torch.view_as_real(state).square().sum(-1)
            out = probs @ c["z_signs"]
        else:
            lo, hi = state[..., c["pair_lo"]], state[..., c["pair_hi"]]
            cross = (lo.conj() * hi).sum(-1)
            z = (torch.view_as_real(lo).square().sum(-1) - torch.view_as_real(hi).square().sum(-1)).sum(-1)
            out = torch.stack([2 * cross.real, 2 * cross.imag, z], dim=-1)
        return out.expand(batch, *out.shape[1:])


def _apply(state: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """matrix · state for row-vector states (..., D); matrix (D, D) shared or (B, D, D)."""
    if matrix.dim() == 2:
        return state @ matrix.mT
    return (matrix @ state.unsqueeze(-1)).squeeze(-1)


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def _run(executor: _Executor, angles: torch.Tensor, weights: torch.Tensor, observables: str) -> torch.Tensor:
    """Shape and dtype handling shared by the layer and the functional form."""
    if observables not in ("z", "xyz"):
        raise ValueError(f"observables must be 'z' or 'xyz', got {observables!r}.")
    program = executor.program
    if not torch.is_floating_point(angles):
        angles = angles.to(weights.dtype if torch.is_floating_point(weights) else torch.get_default_dtype())
    out_dtype = angles.dtype
    if angles.shape[-1:] != (program.n_features,):
        raise ValueError(f"angles must end in {program.n_features} features, got {tuple(angles.shape)}.")
    if tuple(weights.shape) != program.weight_shape:
        raise ValueError(f"weights must have shape {program.weight_shape}, got {tuple(weights.shape)}.")
    # complex128 when either side is float64, else complex64 (half precision runs in float32).
    real = torch.promote_types(angles.dtype, weights.dtype)
    real = torch.float64 if real == torch.float64 else torch.float32
    lead = angles.shape[:-1]
    flat = angles.reshape(-1, program.n_features).to(real)
    out = executor.run(flat, weights.to(real), observables)
    return out.reshape(*lead, *out.shape[1:]).to(out_dtype)


def expectations(
    spec: CircuitSpec, angles: torch.Tensor, weights: torch.Tensor, observables: str = "z"
) -> torch.Tensor:
    """⟨Z_q⟩ per qubit ("z": (..., n_qubits)) or ⟨X_q⟩, ⟨Y_q⟩, ⟨Z_q⟩ ("xyz": (..., n_qubits, 3)).

    `angles` is (n_features,) or (..., n_features); matches `make_qnode(spec, observables=...)`.
    Differentiable w.r.t. angles and weights. Raises UnsupportedCircuit where `supports` is False.
    """
    return _run(_cached_executor(spec), angles, weights, observables)


class FastCircuitLayer(torch.nn.Module):
    """Drop-in replacement for `circuit.torch_layer(spec)`: same `weights` parameter (name, shape,
    uniform(−π, π) init), same output, computed by the compiled simulator.

    The program is compiled once here; raises UnsupportedCircuit if the circuit cannot be
    replayed (callers then use the TorchLayer).
    """

    def __init__(self, spec: CircuitSpec) -> None:
        super().__init__()
        self.spec = spec
        self._executor = _cached_executor(spec)
        self.weights = torch.nn.Parameter(torch.empty(spec.weight_shape))
        torch.nn.init.uniform_(self.weights, -torch.pi, torch.pi)

    @property
    def program(self) -> CircuitProgram:
        """The compiled program this layer runs."""
        return self._executor.program

    def forward(self, angles: torch.Tensor) -> torch.Tensor:
        """(B, n_features) → (B, n_qubits) ⟨Z⟩; (n_features,) → (n_qubits,)."""
        return _run(self._executor, angles, self.weights, "z")

    def extra_repr(self) -> str:
        s = self.spec
        return f"n_qubits={s.n_qubits}, depth={s.depth}, entangler={s.entangler!r}, encoding={s.encoding!r}"
