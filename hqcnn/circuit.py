"""The variational quantum circuit: angle encoding, RY/RZ layers, an entangler, ⟨Z⟩ per qubit
(and, with the "zz" read-out, ⟨Z_i Z_j⟩ of every pair: `readout_pairs` fixes their order).

`circuit_ops` is the single definition of the circuit. Every use derives from it: the trainable
`TorchLayer`, the gate list the diagram is drawn from (`circuit_gates`), the text drawing, the
OpenQASM export, the Bloch-vector read-out and the noisy or finite-shot devices of the
experiments. Angles arrive already squashed into (0, π) by the model (`QuantumLayer.angles`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pennylane as qml
import torch

from hqcnn.config import ENCODINGS, ENTANGLERS, READOUTS, ModelConfig

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
    "layered": "feature i rotates qubit i mod n: the first n features about Y, the next n about Z, the rest about X",
    "ry": "feature i rotates qubit i mod n about Y only (the angles of features on one qubit add up)",
    "reupload": "the layered encoding, repeated before every variational layer (data re-uploading)",
}
ENTANGLER_DESCRIPTIONS = {
    "ring": "CNOT from each qubit to the next, the last back to the first (the paper's ring)",
    "chain": "CNOT from each qubit to the next, without closing the ring",
    "none": "no entangling gates: the qubits stay independent (an ablation)",
}
assert set(ENTANGLER_PAIRS) == set(ENTANGLERS) == set(ENTANGLER_DESCRIPTIONS)
assert set(ENCODING_DESCRIPTIONS) == set(ENCODINGS)


def readout_pairs(n_qubits: int) -> list[tuple[int, int]]:
    """The qubit pairs (i, j), i < j, of the "zz" read-out in output order: (0,1), (0,2), …, (1,2), …

    The one definition of that order: the simulators, the twin and the studies all read it here.
    """
    return list(itertools.combinations(range(n_qubits), 2))


def readout_width(n_qubits: int, readout: str = "z") -> int:
    """Values the middle layer outputs: n ⟨Z_i⟩, then for "zz" the n(n−1)/2 ⟨Z_i Z_j⟩."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {', '.join(READOUTS)}, got {readout!r}.")
    return n_qubits + (len(readout_pairs(n_qubits)) if readout == "zz" else 0)


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


@dataclass(frozen=True)
class GateInfo:
    """One gate as `circuit_ops` queues it, with where its angle comes from.

    role is "encoding" (its angle is feature `feature`), "trainable" (its angle is
    weights[`weight`]) or "fixed" (no angle, e.g. a CNOT); layer is the variational layer it
    belongs to (the encoding before the first layer counts with layer 0).
    """

    name: str
    wires: tuple[int, ...]
    role: str
    layer: int
    feature: int | None = None
    weight: tuple[int, int, int] | None = None


def circuit_gates(spec: CircuitSpec) -> list[GateInfo]:
    """The gates of `circuit_ops`, recorded on probe inputs that name their own source.

    Recording the real definition (not a second description of it) keeps the diagram and the
    page's words true when the circuit changes. Probes: feature i is i + 1, weight k is −(k + 1).
    """
    angles = np.arange(1, spec.n_features + 1, dtype=np.float64)
    weights = -np.arange(1, spec.n_weights + 1, dtype=np.float64).reshape(spec.weight_shape)
    with qml.queuing.AnnotatedQueue() as queue:
        circuit_ops(spec, angles, weights)
    recorded = []
    for op in qml.tape.QuantumScript.from_queue(queue).operations:
        wires = tuple(int(w) for w in op.wires)
        if not op.parameters:
            recorded.append((op.name, wires, "fixed", None, None))
            continue
        value = float(op.parameters[0])
        code = int(round(value))
        if abs(value - code) > 1e-9 or not -spec.n_weights <= code <= spec.n_features or code == 0:
            recorded.append((op.name, wires, "fixed", None, None))  # a constant or derived angle
        elif code > 0:
            recorded.append((op.name, wires, "encoding", code - 1, None))
        else:
            index = np.unravel_index(-code - 1, spec.weight_shape)
            recorded.append((op.name, wires, "trainable", None, tuple(int(i) for i in index)))
    # An encoding gate belongs to the layer it feeds (the next trainable gate's), a fixed gate to
    # the layer it closes (the last trainable gate's): so re-uploads start their layer.
    layers, nxt = [0] * len(recorded), 0
    for i in range(len(recorded) - 1, -1, -1):
        weight = recorded[i][4]
        nxt = weight[0] if weight else nxt
        layers[i] = nxt
    last = 0
    for i, (_, _, role, _, weight) in enumerate(recorded):
        if weight:
            last = weight[0]
        elif role == "fixed":
            layers[i] = last
    return [GateInfo(n, w, r, layer, f, wt) for (n, w, r, f, wt), layer in zip(recorded, layers, strict=True)]


def _span(values: Sequence[int], prefix: str = "") -> str:
    """A range of values as text: "q0–q3" for consecutive ones, "q0" for one."""
    first, last = values[0], values[-1]
    return f"{prefix}{first}" if first == last else f"{prefix}{first}–{prefix}{last}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _encoding_words(spec: CircuitSpec, gates: Sequence[GateInfo]) -> str:
    groups: list[tuple[str, list[int], list[int]]] = []  # (axis, features, wires) of one pass
    for g in gates:
        if g.role != "encoding" or g.layer != 0:
            continue
        if groups and groups[-1][0] == g.name[-1] and g.wires[0] > groups[-1][2][-1]:
            groups[-1][1].append(g.feature)
            groups[-1][2].append(g.wires[0])
        else:
            groups.append((g.name[-1], [g.feature], [g.wires[0]]))
    passes = "; ".join(
        f"{'feature' if len(f) == 1 else 'features'} {_span(f)} {'rotates' if len(f) == 1 else 'rotate'} "
        f"{_span(w, 'q')} about {axis}"
        for axis, f, w in groups
    )
    words = (
        f"each of the {spec.n_features} backbone features f becomes an angle π/2·(1 + tanh f), between 0 and π, "
        f"and rotates one qubit: {passes}"
    )
    if spec.encoding == "ry" and spec.n_features > spec.n_qubits:
        words += ". Rotations about one axis in a row add up, so each qubit sees only the sum of its features' angles"
    if spec.encoding == "reupload":
        n_rotations = spec.n_features * spec.depth
        words += (
            f". This encoding is repeated before each of the {_plural(spec.depth, 'layer')} "
            f"({n_rotations} encoding rotations in all)"
        )
    return words


def describe(spec: CircuitSpec, readout: str = "z") -> dict[str, str]:
    """Plain sentences (no Markdown) about this circuit and its `readout`, each true for its settings.

    Keys: "caption" (one line under the diagram), "encoding", "variational", "entangler",
    "measurement" (one per stage) and "features" (what the feature count means).
    """
    gates = circuit_gates(spec)
    n, d = spec.n_qubits, spec.depth
    pairs = spec.cnot_pairs
    listed = ", ".join(f"q{c}→q{t}" for c, t in pairs)
    if not pairs:
        entangler = (
            "no entangling gates: each qubit evolves on its own, so its ⟨Z⟩ depends only on the features "
            "encoded on that qubit and on its own trainable angles (an ablation of the paper's ring)"
        )
        per_layer = "with no entangling gates"
        idle = "a Z rotation right before a Z measurement leaves its probabilities alone"
    else:
        if spec.entangler == "ring" and n == 2:
            shape, note = "one CNOT", ": for two qubits the ring is this single CNOT"
        else:
            shape = f"{'a ring' if spec.entangler == 'ring' else 'a chain'} of {_plural(len(pairs), 'CNOT')}"
            note = ""
        per_layer = f"{'each ' if d > 1 else ''}followed by {shape}"
        entangler = (
            f"{shape} per layer ({listed}, control→target){note}. A CNOT entangles its two qubits, so a qubit's "
            "⟨Z⟩ can depend on features encoded on other qubits"
        )
        idle = (
            "only CNOTs follow them, and CNOTs merely reorder basis states, whose probabilities a Z rotation "
            "leaves alone"
        )
    once = "before every layer" if spec.encoding == "reupload" else "once"
    variational = (
        f"{_plural(d, 'layer')}, {'each ' if d > 1 else ''}a trainable RY and then a trainable RZ rotation on every "
        f"qubit: {spec.n_weights} angles, learned with the rest of the network. The {n} RZ angles of the final "
        f"layer cannot change any ⟨Z⟩: {idle}"
    )
    axes = "all about Y, so their angles add up" if spec.encoding == "ry" else "one rotation axis (Y, Z, X) each"
    read = (
        "⟨Z⟩ of every qubit and ⟨Z_i Z_j⟩ of every pair, from one measurement of all qubits"
        if readout == "zz"
        else "⟨Z⟩ measured on every qubit"
    )
    if readout == "zz":
        n_pairs = len(readout_pairs(n))
        measurement = (
            f"the expectation value ⟨Z⟩ of each of the {n} qubits and the correlator ⟨Z_i Z_j⟩ of each of the "
            f"{n_pairs} pairs of qubits ({readout_width(n, readout)} numbers between −1 and +1, the ⟨Z⟩ first, "
            "then the pairs in the order q0q1, q0q2, …, q1q2, …) go to the classical head. All of them come from "
            "the same measurement of every qubit in the computational basis: ⟨Z_i Z_j⟩ is +1 where the two "
            "bits agree and −1 where they differ, averaged over the shots (exact in the simulator)"
        )
    else:
        measurement = (
            f"the expectation value ⟨Z⟩ of each of the {n} qubits, a number between −1 and +1, goes to the "
            "classical head"
        )
    return {
        "caption": (
            f"{n} qubits, depth {d}: {spec.n_features} features angle-encoded {once}, then {_plural(d, 'layer')} of "
            f"trainable RY and RZ rotations, {per_layer}; {read}."
        ),
        "encoding": _encoding_words(spec, gates),
        "variational": variational,
        "entangler": entangler,
        "measurement": measurement,
        "features": f"With {n} qubits each qubit takes 1 to 3 features, {axes}.",
    }


def make_qnode(
    spec: CircuitSpec,
    device: str = "default.qubit",
    shots: int | None = None,
    noise: float = 0.0,
    observables: str = "z",
) -> qml.QNode:
    """A QNode `f(inputs, weights)` returning ⟨Z_i⟩ per qubit ("z"), those then ⟨Z_i Z_j⟩ in
    `readout_pairs` order ("zz"), or ⟨X_i⟩,⟨Y_i⟩,⟨Z_i⟩ ("xyz").

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
        z = [qml.expval(qml.PauliZ(q)) for q in wires]
        if observables == "zz":
            z += [qml.expval(qml.PauliZ(i) @ qml.PauliZ(j)) for i, j in readout_pairs(spec.n_qubits)]
        return z

    qnode = qml.QNode(circuit, dev, interface="torch", diff_method=diff_method)
    if shots is not None:
        qnode = qml.set_shots(qnode, shots=shots)
    return qnode


def torch_layer(spec: CircuitSpec, readout: str = "z") -> qml.qnn.TorchLayer:
    """The trainable circuit as a torch module: (B, n_features) angles → (B, readout_width) read-out."""
    readout_width(spec.n_qubits, readout)  # rejects an unknown read-out
    init = {"weights": lambda t: torch.nn.init.uniform_(t, -torch.pi, torch.pi)}
    qnode = make_qnode(spec, observables=readout)
    return qml.qnn.TorchLayer(qnode, {"weights": spec.weight_shape}, init_method=init)


def _example_args(spec: CircuitSpec, weights: torch.Tensor | None) -> tuple:
    """Symbolic-looking sample arguments for drawing: zeros unless real weights are given."""
    angles = torch.zeros(spec.n_features, dtype=torch.float64)
    if weights is None:
        weights = torch.zeros(spec.weight_shape, dtype=torch.float64)
    return angles, weights.detach().to(torch.float64)


TEXT_WIDTH = 96  # columns of the text drawing: about what a page's code block shows unscrolled


def draw_text(
    spec: CircuitSpec, weights: torch.Tensor | None = None, decimals: int | None = None, width: int = TEXT_WIDTH
) -> str:
    """The circuit as text (PennyLane's drawer), wrapped into blocks of at most `width` columns;
    angles shown only when `decimals` is given."""
    return qml.draw(make_qnode(spec), decimals=decimals, max_length=width)(*_example_args(spec, weights))


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
MAX_COMMENT = 200  # characters of one comment line


def qasm_comment(text: str) -> str:
    """`text` as one OpenQASM comment line: a line break in it (say, in an uploaded dataset's name)
    would otherwise end the comment and turn the rest into statements."""
    line = _UNPRINTABLE.sub(" ", str(text)).strip()
    if len(line) > MAX_COMMENT:
        line = line[: MAX_COMMENT - 1] + "…"
    return f"// {line}" if line else "//"


def to_openqasm(
    spec: CircuitSpec,
    angles: Sequence[float] | torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    comments: Sequence[str] = (),
) -> str:
    """OpenQASM 2.0 of the circuit for one input with the given weights (zeros where not given).

    `comments` become `//` lines right after the version line, where every reader expects it.
    """
    example_angles, example_weights = _example_args(spec, weights)
    if angles is not None:
        example_angles = torch.as_tensor(angles, dtype=torch.float64).detach().reshape(spec.n_features)
    qasm = qml.to_openqasm(make_qnode(spec), measure_all=True)(example_angles, example_weights)
    if not comments:
        return qasm
    version, rest = qasm.split("\n", 1)
    return "\n".join([version, *(qasm_comment(c) for c in comments), rest])
