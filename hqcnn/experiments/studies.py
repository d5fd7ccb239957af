"""The six studies: what each trains, how it perturbs inputs or circuit, and which rows it writes.

Each study takes the runner, sets its number of steps (`r.total`), trains the hybrid and its
twin on the same data with the same seeds, and appends rows and notes. `registry.py` pairs
each study with the comparisons of its rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from hqcnn.config import ModelConfig
from hqcnn.errors import ConfigError
from hqcnn.experiments.presets import ABLATIONS, Preset
from hqcnn.experiments.rows import MODEL_NAMES, NOISE_LABELS
from hqcnn.experiments.runner import _pair, _Runner

# ---------------------------------------------------------------------------------------------
# Low data
# ---------------------------------------------------------------------------------------------


def _size_label(size: int | None, data: Any) -> str:
    return f"all ({len(data.y_train):,} images)" if size is None else f"{size} per class"


def _low_data(r: _Runner) -> None:
    seeds = r.config.seed_list(r.preset)
    sizes = r.preset.low_data_sizes
    r.total = len(sizes) * len(seeds) * 2
    for size in sizes:
        for seed in seeds:
            data = r.data(size, seed)
            label = _size_label(size, data)
            for _, model in _pair(r.config.model):
                outcome = r.train(model, data, seed, f"{MODEL_NAMES[model.kind]}, {label}")
                per_class = len(data.y_train) / data.n_classes
                r.rows.append(r.base_row(outcome, label, seed, x=per_class, train_per_class=size))
    r.notes.append(
        "Each seed draws its own stratified training subset (same subset for both models); "
        "'all' uses every training image. x = training images per class (the mean for 'all')."
    )


# ---------------------------------------------------------------------------------------------
# Input noise
# ---------------------------------------------------------------------------------------------


def _noisy_inputs(data: Any, noise: str, level: float, seed: int) -> Any:
    """The test images with noise added in pixel units (0..1), normalised again as the model expects."""
    import torch

    from hqcnn.data import add_gaussian_noise, add_salt_pepper

    x = data.x_test
    if level == 0:
        return x
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    x01 = x * std + mean if data.config.normalize else x.clone()
    noisy = add_gaussian_noise(x01, level, seed) if noise == "gaussian" else add_salt_pepper(x01, level, seed)
    return (noisy - mean) / std if data.config.normalize else noisy


def _noise_seed(seed: int, *parts: int) -> int:
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0])


def _input_noise(r: _Runner) -> None:
    from hqcnn.train import evaluate

    seeds = r.config.seed_list(r.preset)
    r.total = len(seeds) * 3
    conditions = [("gaussian", s) for s in r.preset.gaussian_sigmas] + [
        ("salt_pepper", a) for a in r.preset.salt_pepper_amounts
    ]
    for seed in seeds:
        data = r.data(r.preset.train_per_class, seed)
        outcomes = [r.train(model, data, seed, name) for name, model in _pair(r.config.model)]
        r.check_stop()
        for index, (noise, level) in enumerate(conditions):
            # The same noisy images for both models: the comparison is paired.
            x = _noisy_inputs(data, noise, level, _noise_seed(seed, 1 + (noise == "salt_pepper"), index))
            for outcome in outcomes:
                metrics = evaluate(outcome.result.model, x, data.y_test)
                label = f"{NOISE_LABELS[noise]} {level:g}"
                r.rows.append(r.metrics_row(outcome, metrics, label, seed, noise=noise, level=level, x=level))
        r.step(f"evaluated noisy test images · seed {seed}")
    r.notes.append(
        "Both models are trained on clean images and tested on noisy copies of the test images "
        "(noise added in pixel units 0..1, clipped, then normalised as in training). "
        "Both models see the same noisy images."
    )


# ---------------------------------------------------------------------------------------------
# Hardware noise: the trained hybrid's circuit on a noisy, finite-shot simulator
# ---------------------------------------------------------------------------------------------


def hardware_subset(n_test: int, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of `n` test images (all of them if n >= n_test)."""
    if n >= n_test:
        return np.arange(n_test)
    return np.sort(np.random.default_rng(seed).choice(n_test, size=n, replace=False))


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
    layer on `default.mixed`) with the trained circuit weights → head. The batch is broadcast
    through the QNode in chunks sized to keep the density matrices within ~256 MB. `seed` fixes
    the shot sampling.
    """
    import torch

    from hqcnn.circuit import make_qnode

    if model.cfg.kind != "hybrid":
        raise ConfigError("Only the hybrid model has a quantum circuit to run on a noisy simulator.")
    spec = model.middle.spec
    weights = model.middle.weights.detach().to("cpu", torch.float64)
    np.random.seed(seed % 2**32)  # PennyLane devices with seed="global" draw their generator from numpy
    qnode = make_qnode(spec, device=device, shots=shots, noise=noise)
    chunk = max(1, min(1024, 2**22 // 4**spec.n_qubits))
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            xb = x[start : start + chunk].to(next(model.parameters()).device)
            angles = model.circuit_angles(xb).to("cpu", torch.float64)
            z = qnode(angles, weights)
            z = torch.stack(list(z), dim=-1) if isinstance(z, (list, tuple)) else z
            z = z.reshape(len(xb), spec.n_qubits).to(xb.device, torch.float32)
            out.append(torch.softmax(model.head(z), 1).cpu())
    return torch.cat(out).double().numpy()


def _shots_label(shots: int | None) -> str:
    return "exact" if shots is None else f"{shots} shots"


def _hardware_noise(r: _Runner) -> None:
    from hqcnn.metrics import classification_metrics
    from hqcnn.train import evaluate

    seeds = r.config.seed_list(r.preset)
    r.total = len(seeds) * 3
    grid = [(p, s) for s in r.preset.shots for p in r.preset.depolarizing]
    for seed in seeds:
        data = r.data(r.preset.train_per_class, seed)
        hybrid, twin = (r.train(model, data, seed, name) for name, model in _pair(r.config.model))
        r.check_stop()
        idx = hardware_subset(len(data.y_test), r.preset.hardware_images, r.config.base_seed)
        x, y = data.x_test[idx], data.y_test[idx]
        common = {"n_eval": len(idx)}
        as_trained = evaluate(hybrid.result.model, x, y)
        r.rows.append(
            r.metrics_row(
                hybrid, as_trained, "as trained (exact, training simulator)", seed, simulator="training", **common
            )
        )
        r.rows.append(
            r.metrics_row(
                twin,
                evaluate(twin.result.model, x, y),
                "classical twin (no quantum part)",
                seed,
                simulator="none",
                **common,
            )
        )
        for i, (p, shots) in enumerate(grid):
            r.check_stop()
            r.report(f"noisy simulator p = {p:g}, {_shots_label(shots)} · seed {seed}", fraction=i / len(grid))
            probs = noisy_predict_proba(hybrid.result.model, x, p, shots, seed=_noise_seed(seed, 7, i))
            metrics = classification_metrics(y.numpy(), probs)
            label = f"p = {p:g}, {_shots_label(shots)}"
            r.rows.append(
                r.metrics_row(
                    hybrid,
                    metrics,
                    label,
                    seed,
                    simulator="default.mixed",
                    p=p,
                    shots=_shots_label(shots),
                    x=p,
                    **common,
                )
            )
        r.step(f"evaluated on the noisy simulator · seed {seed}")
    n_eval = r.rows[0]["n_eval"] if r.rows else r.preset.hardware_images
    r.notes.append(
        f"The trained hybrid is evaluated on {n_eval} test images (a fixed random subset when the test set is larger) "
        "with PennyLane's default.mixed: depolarising noise of probability p on every qubit after every "
        "layer, and exact expectation values or finite shots (one shot-sampled run per image). "
        "The classical twin has no quantum part, so its accuracy is a constant reference. "
        "Depolarising noise shrinks every ⟨Z⟩ towards 0, and the head was trained on noiseless values: "
        "accuracy (a fixed decision threshold) can fall while ROC-AUC (which only ranks images) holds."
    )


# ---------------------------------------------------------------------------------------------
# Parameter efficiency
# ---------------------------------------------------------------------------------------------


def _size_conditions(base: ModelConfig, preset: Preset) -> list[tuple[str, str, ModelConfig]]:
    out: list[tuple[str, str, ModelConfig]] = []
    for q, d in preset.circuit_sizes:
        features = base.n_features if q == base.n_qubits else min(max(2 * q, q), 3 * q)
        model = replace(base, n_qubits=q, depth=d, n_features=features)
        out.append((f"{q} qubits, depth {d}, widths {model.channels[0]}-{model.channels[1]}", "circuit size", model))
    for c1, c2 in preset.widths:
        model = replace(base, channels=(c1, c2))
        out.append((f"{model.n_qubits} qubits, depth {model.depth}, widths {c1}-{c2}", "backbone width", model))
    unique: dict[ModelConfig, tuple[str, str, ModelConfig]] = {}
    for label, family, model in out:
        unique.setdefault(model, (label, family, model))
    return list(unique.values())


def _param_efficiency(r: _Runner) -> None:
    seeds = r.config.seed_list(r.preset)
    conditions = _size_conditions(r.config.model, r.preset)
    r.total = len(conditions) * len(seeds) * 2
    for label, family, base in conditions:
        for seed in seeds:
            data = r.data(r.preset.sweep_train_per_class, seed)
            for name, model in _pair(base):
                outcome = r.train(model, data, seed, f"{name}, {label}")
                r.rows.append(
                    r.base_row(
                        outcome,
                        label,
                        seed,
                        family=family,
                        n_qubits=model.n_qubits,
                        depth=model.depth,
                        channels=f"{model.channels[0]}-{model.channels[1]}",
                        x=outcome.params.total,
                    )
                )
    r.notes.append(
        "Circuit size varies qubits and depth (2 features per qubit unless it is the configured qubit count); "
        "backbone width varies the two convolution widths. Each hybrid has its own parameter-matched twin."
    )


# ---------------------------------------------------------------------------------------------
# Ablations
# ---------------------------------------------------------------------------------------------


def _ablation_variants(base: ModelConfig, names: Sequence[str]) -> list[tuple[str, str, str, ModelConfig]]:
    out: dict[tuple, tuple[str, str, str, ModelConfig]] = {}
    for key in names:
        ablation = ABLATIONS[key]
        model = ablation.derive(base)
        label = ablation.label
        if key == "baseline":
            label = f"baseline: {base.entangler}, depth {base.depth}, {base.encoding}"
        identity = (
            (model.kind, model)
            if model.kind == "hybrid"
            else (model.kind, replace(model, entangler="ring", encoding="layered", depth=1))
        )
        if identity in out:  # e.g. "depth 2" when the baseline has depth 2
            continue
        out[identity] = (key, label, ablation.group, model)
    return list(out.values())


def _ablations(r: _Runner) -> None:
    seeds = r.config.seed_list(r.preset)
    variants = _ablation_variants(r.config.model, r.preset.ablations)
    r.total = len(variants) * len(seeds)
    for seed in seeds:
        data = r.data(r.preset.sweep_train_per_class, seed)
        for key, label, group, model in variants:
            outcome = r.train(model, data, seed, label)
            depth = 0 if model.kind == "backbone" else model.depth
            r.rows.append(r.base_row(outcome, label, seed, variant=key, group=group, depth=depth, x=depth))
    r.notes.append(
        "Every variant changes one thing of the configured hybrid. 'No circuit' feeds the backbone's features "
        "straight to the head (depth 0); the classical twin replaces the circuit by a classical layer of the same size."
    )


# ---------------------------------------------------------------------------------------------
# Paired comparison
# ---------------------------------------------------------------------------------------------


def _paired(r: _Runner) -> None:
    from hqcnn.train import evaluate

    seeds = r.config.seed_list(r.preset, paired=True)
    r.total = len(seeds) * 2
    for seed in seeds:
        data = r.data(r.preset.train_per_class, seed)
        for name, model in _pair(r.config.model):
            outcome = r.train(model, data, seed, name)
            train_accuracy = evaluate(outcome.result.model, data.x_train, data.y_train)["accuracy"]
            row = r.base_row(outcome, "as configured", seed)
            row["train_accuracy"] = train_accuracy
            row["generalisation_gap"] = train_accuracy - row["accuracy"]
            r.rows.append(row)
    r.notes.append(
        "Generalisation gap = accuracy on the (un-augmented) training images minus test accuracy. "
        "Seconds per epoch are wall time of simulated training on this computer, not of a quantum computer."
    )
