"""The hybrid quantum–classical CNN, its parameter-matched classical twin, and a backbone-only net.

    image (B, C, H, W)
      → Backbone: [Conv3×3 → BN → ReLU → MaxPool2] ×2 → AdaptiveAvgPool(7) → Linear → BN (B, n_features)
      → middle:   π/2·(1+tanh) → variational circuit → ⟨Z⟩ per qubit                        (B, n_qubits)
                  (read-out "zz": then ⟨Z_i Z_j⟩ per pair               (B, n_qubits + n(n−1)/2))
                  (classical twin: a low-rank tanh layer with as many parameters, as wide)
      → Head:     Linear → ReLU → Linear                                               (B, n_classes)

The adaptive pooling keeps the projection's size independent of the image size, so a model at
128×128 has as many parameters as one at 28×28.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from hqcnn import determinism
from hqcnn.circuit import CircuitSpec, readout_pairs, readout_width, torch_layer
from hqcnn.config import ModelConfig

POOLED_GRID = 7  # spatial size after the adaptive pooling


class Backbone(nn.Module):
    """Stage 1: two convolution blocks and a linear projection to `n_features`."""

    def __init__(self, in_channels: int, cfg: ModelConfig) -> None:
        super().__init__()
        c1, c2 = cfg.channels
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c1) if cfg.batch_norm else nn.Identity()
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)  # the last convolution: Grad-CAM's target
        self.bn2 = nn.BatchNorm2d(c2) if cfg.batch_norm else nn.Identity()
        self.pool = nn.MaxPool2d(2)
        self.grid = nn.AdaptiveAvgPool2d(POOLED_GRID)
        self.dropout = nn.Dropout(cfg.dropout)
        self.project = nn.Linear(c2 * POOLED_GRID * POOLED_GRID, cfg.n_features)
        # Standardised features keep tanh out of saturation, where every angle would be 0 or π and
        # the circuit's output constant (measured: small sets like BreastMNIST collapse without it).
        self.feature_norm = nn.BatchNorm1d(cfg.n_features, affine=False) if cfg.batch_norm else nn.Identity()

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, c2, H/4, W/4): the two convolution blocks."""
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))  # (B, c1, H/2, W/2)
        return self.pool(torch.relu(self.bn2(self.conv2(x))))  # (B, c2, H/4, W/4)

    def project_maps(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, c2, H/4, W/4) → (B, n_features)."""
        x = self.grid(maps).flatten(1)  # (B, c2·7·7)
        return self.feature_norm(self.project(self.dropout(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, n_features)."""
        return self.project_maps(self.feature_maps(x))


class QuantumLayer(nn.Module):
    """Stages 2–3: squash features into angles in (0, π), run the circuit, read ⟨Z⟩ per qubit
    (and ⟨Z_i Z_j⟩ per pair with readout "zz")."""

    def __init__(self, spec: CircuitSpec, backend: str = "auto", readout: str = "z") -> None:
        super().__init__()
        self.spec = spec
        self.readout = readout
        self.backend = resolve_backend(spec, backend)
        if self.backend == "fast":
            from hqcnn.fastsim import FastCircuitLayer

            self.circuit = FastCircuitLayer(spec, readout)
        else:
            self.circuit = torch_layer(spec, readout)

    @property
    def weights(self) -> torch.Tensor:
        """The trainable circuit angles, (depth, n_qubits, 2)."""
        return self.circuit.weights

    @staticmethod
    def angles(features: torch.Tensor) -> torch.Tensor:
        """Features → rotation angles in (0, π): π/2 · (1 + tanh(f)).

        cos is one-to-one on (0, π), so ⟨Z⟩ = cos(a) after the first rotation keeps the sign of
        the feature; π·tanh spans (−π, π), where cos(a) = cos(−a) throws it away. Measured on
        BreastMNIST (2 seeds, `benchmarks/recipe.py` recipe): test AUC 0.64–0.76 with π·tanh,
        0.81–0.87 with this map; PneumoniaMNIST unchanged.
        """
        return (math.pi / 2) * (1 + torch.tanh(features))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, n_features) → (B, readout_width) expectation values in [−1, 1]: ⟨Z_i⟩, then any ⟨Z_i Z_j⟩."""
        return self.circuit(self.angles(features)).to(features.dtype)


def twin_rank(spec: CircuitSpec) -> int:
    """Rank r of the twin layer whose r·(F + n) + n parameters come closest to the circuit's 2·d·n."""
    n, f = spec.n_qubits, spec.n_features
    ranks = range(1, min(n, f) + 1)
    return min(ranks, key=lambda r: (abs(r * (f + n) + n - spec.n_weights), r))


class ClassicalTwinLayer(nn.Module):
    """The circuit's classical stand-in: tanh(U·V·x + b), output in [−1, 1] like ⟨Z⟩.

    A low-rank linear map is the smallest dense classical layer from n_features to n_qubits; its
    rank is chosen so that its parameter count matches the circuit's as closely as possible.

    With readout "zz" the pairwise products t_i·t_j of its n outputs follow them, as the circuit's
    ⟨Z_i Z_j⟩ follow its ⟨Z_i⟩: the head is as wide as the hybrid's, and the twin stays
    parameter-matched (products cost no parameters; a wider linear map would, at rank 1 already
    28 against the circuit's 16 at 4 qubits, depth 2).
    """

    def __init__(self, spec: CircuitSpec, readout: str = "z") -> None:
        super().__init__()
        rank = twin_rank(spec)
        self.readout = readout
        self.down = nn.Linear(spec.n_features, rank, bias=False)
        self.up = nn.Linear(rank, spec.n_qubits)
        pairs = torch.tensor(readout_pairs(spec.n_qubits) if readout == "zz" else [], dtype=torch.long)
        self.register_buffer("pairs", pairs.reshape(-1, 2), persistent=False)  # not in checkpoints
        readout_width(spec.n_qubits, readout)  # rejects an unknown read-out

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, n_features) → (B, readout_width)."""
        t = torch.tanh(self.up(self.down(features)))
        if self.readout != "zz":
            return t
        return torch.cat([t, t[:, self.pairs[:, 0]] * t[:, self.pairs[:, 1]]], dim=1)


class HybridNet(nn.Module):
    """Backbone → middle (quantum, classical twin, or nothing) → head."""

    def __init__(self, cfg: ModelConfig, in_channels: int, n_classes: int, backend: str = "auto") -> None:
        super().__init__()
        self.cfg = cfg
        self.in_channels = in_channels
        self.n_classes = n_classes
        spec = CircuitSpec.from_model_config(cfg)
        self.backbone = Backbone(in_channels, cfg)
        if cfg.kind == "hybrid":
            self.middle: nn.Module = QuantumLayer(spec, backend, cfg.readout)
            head_in = readout_width(cfg.n_qubits, cfg.readout)
        elif cfg.kind == "classical":
            self.middle = ClassicalTwinLayer(spec, cfg.readout)
            head_in = readout_width(cfg.n_qubits, cfg.readout)
        else:
            self.middle = nn.Identity()
            head_in = cfg.n_features
        self.head = nn.Sequential(nn.Linear(head_in, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, n_classes))

    def forward_with_readout(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, n_classes) and the middle stage's output (B, readout_width; n_features for the
        backbone-only net): ⟨Z⟩ for the hybrid, then ⟨Z_i Z_j⟩ with readout "zz"."""
        readout = self.middle(self.backbone(x))
        return self.head(readout), readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → logits (B, n_classes)."""
        return self.forward_with_readout(x)[0]

    def circuit_angles(self, x: torch.Tensor) -> torch.Tensor:
        """The encoded rotation angles (B, n_features) of the hybrid model's circuit."""
        return QuantumLayer.angles(self.backbone(x))


def resolve_backend(spec: CircuitSpec, backend: str) -> str:
    """ "fast" (exact torch statevector) where it covers the circuit, else PennyLane's TorchLayer."""
    if backend not in ("auto", "fast", "pennylane"):
        raise ValueError(f"unknown quantum backend {backend!r}")
    if backend == "auto":
        try:
            from hqcnn.fastsim import supports
        except ImportError:
            return "pennylane"
        return "fast" if supports(spec) else "pennylane"
    return backend


def build_model(cfg: ModelConfig, in_channels: int, n_classes: int, backend: str = "auto") -> HybridNet:
    """The network described by `cfg`, for images with `in_channels` channels and `n_classes` classes.

    Every model is built under the torch settings of the determinism contract (hqcnn/determinism.py),
    so that whatever trains or evaluates it, in whichever process, computes with the same kernels.
    """
    determinism.apply_torch()
    return HybridNet(cfg, in_channels, n_classes, backend)


@dataclass(frozen=True)
class ParamCounts:
    """Trainable parameters per stage."""

    backbone: int
    quantum: int  # circuit angles (0 for the classical models)
    classical_middle: int  # the twin's stand-in layer (0 for the hybrid)
    head: int

    @property
    def total(self) -> int:
        """All trainable parameters."""
        return self.backbone + self.quantum + self.classical_middle + self.head

    def to_dict(self) -> dict[str, int]:
        """JSON-ready, with the total."""
        return {
            "backbone": self.backbone,
            "quantum": self.quantum,
            "classical_middle": self.classical_middle,
            "head": self.head,
            "total": self.total,
        }


def count_parameters(cfg: ModelConfig, in_channels: int, n_classes: int) -> ParamCounts:
    """The trainable parameters per stage of `build_model(cfg, in_channels, n_classes)`, from the
    configuration alone: no model is built (the Circuit page shows them on every change).

    tests/test_circuit_page.py holds this to `parameter_counts` of the real models.
    """
    c1, c2 = cfg.channels
    norm = 2 if cfg.batch_norm else 0  # BatchNorm2d: a scale and a shift per channel
    backbone = (
        (in_channels * 9 + 1 + norm) * c1  # conv1 (3×3 kernels, bias) and bn1
        + (c1 * 9 + 1 + norm) * c2  # conv2 and bn2
        + (c2 * POOLED_GRID * POOLED_GRID + 1) * cfg.n_features  # the projection (feature_norm has none)
    )
    spec = CircuitSpec.from_model_config(cfg)
    quantum = spec.n_weights if cfg.kind == "hybrid" else 0
    rank = twin_rank(spec)
    middle = rank * (cfg.n_features + cfg.n_qubits) + cfg.n_qubits if cfg.kind == "classical" else 0
    head_in = cfg.n_features if cfg.kind == "backbone" else readout_width(cfg.n_qubits, cfg.readout)
    head = (head_in + 1) * cfg.hidden + (cfg.hidden + 1) * n_classes
    return ParamCounts(backbone=backbone, quantum=quantum, classical_middle=middle, head=head)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def parameter_counts(model: HybridNet) -> ParamCounts:
    """Trainable parameters of each stage of `model`."""
    middle = _count(model.middle)
    is_hybrid = model.cfg.kind == "hybrid"
    return ParamCounts(
        backbone=_count(model.backbone),
        quantum=middle if is_hybrid else 0,
        classical_middle=0 if is_hybrid else middle,
        head=_count(model.head),
    )
