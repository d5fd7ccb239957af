"""A trained hybrid whose circuit runs on a noisy or finite-shot quantum simulator.

The model is trained on the exact simulator; here only its circuit moves to PennyLane's
`default.mixed` (depolarising noise after every layer) or a shot-sampling device, with the trained
weights, between the same backbone and head.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hqcnn.errors import ConfigError


def noisy_predict_proba(
    model: Any,
    x: Any,
    noise: float = 0.0,
    shots: int | None = None,
    seed: int = 0,
    device: str = "default.mixed",
) -> np.ndarray:
    """Class probabilities of a trained hybrid whose circuit runs on a noisy/finite-shot simulator.

    backbone → angles → `make_qnode(spec, device, shots, noise)` (depolarising p after every
    layer on `default.mixed`) with the trained circuit weights, read out as the model was trained
    (⟨Z_i⟩, then ⟨Z_i Z_j⟩ for "zz") → head. The batch is broadcast
    through the QNode in chunks sized to keep the density matrices within ~256 MB. `seed` fixes
    the shot sampling.
    """
    import torch

    from hqcnn.circuit import make_qnode, readout_width

    if model.cfg.kind != "hybrid":
        raise ConfigError("Only the hybrid model has a quantum circuit to run on a noisy simulator.")
    spec, readout = model.middle.spec, model.middle.readout
    width = readout_width(spec.n_qubits, readout)
    weights = model.middle.weights.detach().to("cpu", torch.float64)
    np.random.seed(seed % 2**32)  # PennyLane devices with seed="global" draw their generator from numpy
    qnode = make_qnode(spec, device=device, shots=shots, noise=noise, observables=readout)
    chunk = max(1, min(1024, 2**22 // 4**spec.n_qubits))
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            xb = x[start : start + chunk].to(next(model.parameters()).device)
            angles = model.circuit_angles(xb).to("cpu", torch.float64)
            z = qnode(angles, weights)
            z = torch.stack(list(z), dim=-1) if isinstance(z, (list, tuple)) else z
            z = z.reshape(len(xb), width).to(xb.device, torch.float32)
            out.append(torch.softmax(model.head(z), 1).cpu())
    return torch.cat(out).double().numpy()
