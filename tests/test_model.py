"""Model shapes, parameter counts per stage, gradients, the classical twin's size, bad configs."""

from __future__ import annotations

import pytest
import torch

from hqcnn.circuit import CircuitSpec
from hqcnn.config import ModelConfig
from hqcnn.errors import ConfigError, HQCNNError
from hqcnn.model import build_model, parameter_counts, twin_rank


@pytest.mark.parametrize("kind", ["hybrid", "classical", "backbone"])
@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 1)])
def test_forward_shapes(kind, size, channels):
    model = build_model(ModelConfig(kind=kind), in_channels=channels, n_classes=5)
    logits, readout = model.forward_with_readout(torch.randn(3, channels, size, size))
    assert logits.shape == (3, 5)
    assert readout.shape == (3, 8 if kind == "backbone" else 4)
    if kind != "backbone":
        assert readout.abs().max() <= 1.0  # ⟨Z⟩ and the twin's tanh both live in [-1, 1]


def test_parameter_counts_by_hand():
    cfg = ModelConfig()  # 4 qubits, depth 2, 8 features, channels (8, 16), hidden 16, batch norm
    counts = parameter_counts(build_model(cfg, in_channels=1, n_classes=2))
    conv = (1 * 8 * 9 + 8) + 2 * 8 + (8 * 16 * 9 + 16) + 2 * 16
    projection = 16 * 7 * 7 * 8 + 8
    assert counts.backbone == conv + projection
    assert counts.quantum == 2 * 4 * 2
    assert counts.head == (4 * 16 + 16) + (16 * 2 + 2)
    assert counts.total == counts.backbone + counts.quantum + counts.head
    assert counts.total < 20_000


@pytest.mark.parametrize("n_qubits,depth,n_features", [(4, 2, 8), (5, 4, 10), (8, 4, 16), (3, 1, 9), (2, 8, 6)])
def test_classical_twin_matches_circuit_size(n_qubits, depth, n_features):
    cfg = ModelConfig(n_qubits=n_qubits, depth=depth, n_features=n_features)
    hybrid = parameter_counts(build_model(cfg, 1, 2))
    twin = parameter_counts(build_model(ModelConfig(**{**cfg.__dict__, "kind": "classical"}), 1, 2))
    assert hybrid.backbone == twin.backbone and hybrid.head == twin.head
    spec = CircuitSpec.from_model_config(cfg)
    # The twin is the closest size a rank-r layer can reach: no other rank is nearer.
    best = min(abs(r * (n_features + n_qubits) + n_qubits - spec.n_weights) for r in range(1, n_qubits + 1))
    assert abs(twin.classical_middle - hybrid.quantum) == best
    assert twin_rank(spec) >= 1


@pytest.mark.parametrize("kind", ["hybrid", "classical", "backbone"])
def test_every_parameter_receives_a_gradient(kind):
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind), 1, 3)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(torch.randn(6, 1, 28, 28)), torch.tensor([0, 1, 2, 0, 1, 2]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_same_seed_same_initial_weights():
    torch.manual_seed(7)
    a = build_model(ModelConfig(), 1, 2).state_dict()
    torch.manual_seed(7)
    b = build_model(ModelConfig(), 1, 2).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"n_qubits": 1}, "qubits must be between 2 and 8"),
        ({"n_qubits": 9, "n_features": 9}, "qubits must be between 2 and 8"),
        ({"depth": 0}, "depth must be between 1 and 8"),
        ({"depth": 9}, "depth must be between 1 and 8"),
        ({"n_qubits": 4, "n_features": 3}, "features must be between 4 and 12"),
        ({"n_qubits": 3, "n_features": 10}, "features must be between 3 and 9"),
        ({"entangler": "star"}, "entangler must be one of ring, chain, none"),
        ({"n_qubits": 4.5}, "qubits must be a whole number"),
    ],
)
def test_bad_model_configs_are_clear_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        ModelConfig(**kwargs)
    assert isinstance(info.value, HQCNNError)
