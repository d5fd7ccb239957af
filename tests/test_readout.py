"""The "zz" read-out: ⟨Z_i⟩ then ⟨Z_i Z_j⟩ per pair, on every path the circuit runs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from hqcnn import checkpoint, fastsim
from hqcnn.circuit import CircuitSpec, describe, make_qnode, readout_pairs, readout_width
from hqcnn.config import ENCODINGS, ENTANGLERS, DataConfig, ModelConfig, RunConfig, TrainConfig, options
from hqcnn.datasets_base import ModelMeta
from hqcnn.errors import CheckpointError, ConfigError
from hqcnn.experiments.studies import ablations
from hqcnn.experiments.table import HYBRID, TWIN
from hqcnn.model import build_model, count_parameters, parameter_counts
from hqcnn.noisy import noisy_predict_proba
from hqcnn.train import predict_proba, run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _random(spec: CircuitSpec, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    angles = torch.rand(batch, spec.n_features, generator=g, dtype=torch.float64) * torch.pi
    weights = (torch.rand(spec.weight_shape, generator=g, dtype=torch.float64) * 2 - 1) * torch.pi
    return angles, weights


def _pennylane(spec: CircuitSpec, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    out = make_qnode(spec, observables="zz")(angles, weights)
    return torch.stack(list(out), dim=-1)


def test_pair_order_and_width():
    assert readout_pairs(4) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert [readout_width(n, "zz") for n in (2, 3, 4, 8)] == [3, 6, 10, 36]
    assert readout_width(5, "z") == 5
    with pytest.raises(ValueError, match="readout"):
        readout_width(4, "xx")


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("entangler", ENTANGLERS)
@pytest.mark.parametrize("n_qubits", [2, 3, 4, 5])
def test_fast_correlators_equal_pennylane(n_qubits, entangler, encoding):
    n_features = {2: 4, 3: 7, 4: 8, 5: 12}[n_qubits]  # 2 or 3 features on some qubits
    spec = CircuitSpec(n_qubits, 2, n_features, entangler, encoding)
    for seed in (0, 1):
        angles, weights = _random(spec, 5, seed + 10 * n_qubits)
        fast = fastsim.expectations(spec, angles, weights, "zz")
        assert fast.shape == (5, readout_width(n_qubits, "zz"))
        torch.testing.assert_close(fast, _pennylane(spec, angles, weights), atol=1e-10, rtol=0)
        # The first n values are exactly the "z" read-out.
        torch.testing.assert_close(fast[:, :n_qubits], fastsim.expectations(spec, angles, weights, "z"))


def _rot(axis: str, theta: float) -> np.ndarray:
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return {
        "y": np.array([[c, -s], [s, c]], dtype=complex),
        "z": np.diag([np.exp(-1j * theta / 2), np.exp(1j * theta / 2)]),
    }[axis]


def test_correlators_equal_a_hand_statevector():
    # 2 qubits, depth 1, 4 features (layered: f0, f1 about Y on q0, q1; f2, f3 about Z), ring = one CNOT.
    spec = CircuitSpec(2, 1, 4, "ring", "layered")
    angles = torch.tensor([0.3, 1.1, 2.0, 0.7], dtype=torch.float64)
    weights = torch.tensor([[[0.4, -1.3], [2.2, 0.5]]], dtype=torch.float64)
    a, w = angles.numpy(), weights.numpy()
    q0 = _rot("z", w[0, 0, 1]) @ _rot("y", w[0, 0, 0]) @ _rot("z", a[2]) @ _rot("y", a[0]) @ [1, 0]
    q1 = _rot("z", w[0, 1, 1]) @ _rot("y", w[0, 1, 0]) @ _rot("z", a[3]) @ _rot("y", a[1]) @ [1, 0]
    state = np.kron(q0, q1)  # wire 0 is the most significant bit
    state = state[[0, 1, 3, 2]]  # CNOT q0 → q1 swaps |10⟩ and |11⟩
    p = np.abs(state) ** 2
    z0, z1 = np.array([1, 1, -1, -1]), np.array([1, -1, 1, -1])
    expected = [p @ z0, p @ z1, p @ (z0 * z1)]
    np.testing.assert_allclose(fastsim.expectations(spec, angles, weights, "zz").numpy(), expected, atol=1e-12)
    assert not np.isclose(expected[2], expected[0] * expected[1])  # entangled: not a product


@pytest.mark.parametrize("spec", [CircuitSpec(3, 2, 6, "ring", "layered"), CircuitSpec(4, 2, 8, "chain", "reupload")])
def test_gradients_of_the_correlators_equal_pennylane(spec):
    angles, weights = _random(spec, 4, 3)
    coeffs = torch.randn(4, readout_width(spec.n_qubits, "zz"), generator=torch.Generator().manual_seed(1))
    grads = []
    for f in (lambda a, w: fastsim.expectations(spec, a, w, "zz"), lambda a, w: _pennylane(spec, a, w)):
        a, w = angles.clone().requires_grad_(), weights.clone().requires_grad_()
        (f(a, w) * coeffs.double()).sum().backward()
        grads.append((a.grad, w.grad))
    for fast, reference in zip(*grads, strict=True):
        assert fast.abs().sum() > 0
        torch.testing.assert_close(fast, reference, atol=1e-9, rtol=0)


def test_shot_correlators_come_from_the_same_samples():
    spec = CircuitSpec(3, 1, 6, "ring", "layered")
    angles, weights = _random(spec, 1, 5)
    np.random.seed(0)
    sampled = torch.stack(list(make_qnode(spec, shots=20_000, observables="zz")(angles[0], weights)))
    exact = fastsim.expectations(spec, angles[0], weights, "zz")
    assert sampled.shape == exact.shape == (6,)
    torch.testing.assert_close(sampled, exact, atol=0.05, rtol=0)


def test_describe_says_what_is_read_out():
    spec = CircuitSpec(4, 2, 8)
    zz = describe(spec, "zz")
    assert "⟨Z_i Z_j⟩" in zz["measurement"] and "6 pairs" in zz["measurement"] and "10 numbers" in zz["measurement"]
    assert "⟨Z_i Z_j⟩" in zz["caption"]
    assert "⟨Z_i Z_j⟩" not in describe(spec)["measurement"] + describe(spec)["caption"]


def test_readout_is_a_declared_option():
    opt = options(ModelConfig)["readout"]
    assert opt.default == "z" and opt.choices == ("z", "zz") and opt.flag == "--readout" and opt.help
    with pytest.raises(ConfigError, match="read-out must be one of z, zz"):
        ModelConfig(readout="xyz")


@pytest.mark.parametrize("kind", ["hybrid", "classical"])
def test_model_output_width_and_the_twin_products(kind):
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, readout="zz"), 1, 3).eval()
    logits, readout = model.forward_with_readout(torch.randn(5, 1, 28, 28))
    assert logits.shape == (5, 3) and readout.shape == (5, 10)
    assert readout.abs().max() <= 1.0
    if kind == "classical":
        pairs = readout_pairs(4)
        products = torch.stack([readout[:, i] * readout[:, j] for i, j in pairs], dim=1)
        torch.testing.assert_close(readout[:, 4:], products)


def test_pennylane_backend_gives_the_fast_read_out():
    torch.manual_seed(0)
    cfg = ModelConfig(n_qubits=3, n_features=6, readout="zz")
    fast = build_model(cfg, 1, 2, backend="fast").double().eval()
    slow = build_model(cfg, 1, 2, backend="pennylane").double().eval()
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(4, 1, 28, 28, dtype=torch.float64)
    torch.testing.assert_close(slow.forward_with_readout(x)[1], fast.forward_with_readout(x)[1], atol=1e-9, rtol=0)


@pytest.mark.parametrize("n_qubits,depth,n_features", [(4, 2, 8), (2, 1, 4), (5, 3, 10), (8, 2, 16)])
def test_parameter_counts_match_and_the_twin_stays_matched(n_qubits, depth, n_features):
    cfg = ModelConfig(n_qubits=n_qubits, depth=depth, n_features=n_features, readout="zz")
    counts = {}
    for kind in ("hybrid", "classical", "backbone"):
        model_cfg = replace(cfg, kind=kind)
        counts[kind] = parameter_counts(build_model(model_cfg, 1, 2))
        assert count_parameters(model_cfg, 1, 2) == counts[kind], kind
    hybrid, twin = counts["hybrid"], counts["classical"]
    assert hybrid.head == twin.head == (readout_width(n_qubits, "zz") + 1) * 16 + 17 * 2
    z_hybrid = parameter_counts(build_model(replace(cfg, readout="z"), 1, 2))
    z_twin = parameter_counts(build_model(replace(cfg, kind="classical", readout="z"), 1, 2))
    assert (hybrid.quantum, twin.classical_middle) == (z_hybrid.quantum, z_twin.classical_middle)
    assert counts["backbone"] == parameter_counts(build_model(replace(cfg, kind="backbone", readout="z"), 1, 2))


@pytest.fixture(scope="module")
def trained_zz(small_pneumonia):
    config = RunConfig(
        data=DataConfig(dataset="pneumoniamnist", train_per_class=40),
        model=ModelConfig(n_qubits=3, depth=2, n_features=6, readout="zz"),
        train=TrainConfig(epochs=2, batch_size=32, threads=1),
    )
    return run(config, data=small_pneumonia)


def test_zz_model_trains_and_its_checkpoint_predicts_identically(trained_zz, small_pneumonia, tmp_path):
    model = trained_zz.result.model
    assert model.head[0].in_features == 6
    meta = ModelMeta.from_data(small_pneumonia)
    checkpoint.save(tmp_path, model, trained_zz.config, meta, trained_zz.metrics_json())
    loaded = checkpoint.load(tmp_path)
    assert loaded.config.model.readout == "zz" and loaded.config == trained_zz.config
    x = small_pneumonia.x_test[:50]
    assert (predict_proba(loaded.model, x) == predict_proba(model, x)).all()


def test_checkpoint_without_the_field_loads_as_z(small_pneumonia):
    meta = ModelMeta.from_data(small_pneumonia)
    config = RunConfig(data=DataConfig(dataset="pneumoniamnist", train_per_class=40))
    files = checkpoint.to_bytes(build_model(config.model, 1, 2), config, meta)
    header = json.loads(files["config.json"])
    del header["config"]["model"]["readout"]
    loaded = checkpoint.from_bytes(files["model.safetensors"], json.dumps(header).encode())
    assert loaded.config.model.readout == "z"
    # A "zz" model's weights do not fit once its read-out is forgotten: the head is wider.
    zz = replace(config, model=replace(config.model, readout="zz"))
    files = checkpoint.to_bytes(build_model(zz.model, 1, 2), zz, meta)
    header = json.loads(files["config.json"])
    del header["config"]["model"]["readout"]
    with pytest.raises(CheckpointError, match="needs"):
        checkpoint.from_bytes(files["model.safetensors"], json.dumps(header).encode())


def test_noisy_path_at_zero_noise_matches_the_exact_model(trained_zz):
    model = trained_zz.result.model
    x = trained_zz.data.x_test[:40]
    reference = predict_proba(model, x)
    np.testing.assert_allclose(noisy_predict_proba(model, x, noise=0.0), reference, atol=1e-5)
    np.testing.assert_allclose(noisy_predict_proba(model, x, device="default.qubit"), reference, atol=1e-5)
    shots = noisy_predict_proba(model, x[:8], noise=0.01, shots=100, seed=1)
    assert shots.shape == (8, 2) and np.allclose(shots.sum(1), 1)


def test_ablation_variants_exist_and_are_distinct():
    assert {k: ablations.ABLATIONS[k].group for k in ("readout_z", "readout_zz", "twin_zz")} == dict.fromkeys(
        ("readout_z", "readout_zz", "twin_zz"), "read-out"
    )
    base = ModelConfig()
    names = ("baseline", "readout_z", "readout_zz", "twin", "twin_zz", "no_circuit")
    variants = ablations.ablation_variants(base, names)
    assert [key for key, *_ in variants] == ["baseline", "readout_zz", "twin", "twin_zz", "no_circuit"]
    models = [m for *_, m in variants]
    assert len(set(models)) == len(models)
    assert [(m.kind, m.readout) for m in models[1:4]] == [("hybrid", "zz"), ("classical", "z"), ("classical", "zz")]
    # From a "zz" baseline the z variant is the distinct one.
    zz_keys = [key for key, *_ in ablations.ablation_variants(replace(base, readout="zz"), names)]
    assert zz_keys == ["baseline", "readout_z", "twin", "no_circuit"]
    for preset in ("quick", "full"):
        assert {"readout_zz", "twin_zz"} <= set(ablations.Ablations.grids[preset]["variants"])


def _table(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    """Rows of (variant, condition, model, readout) over 4 seeds with made-up scores."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        [
            {"variant": v, "condition": c, "model": m, "readout": r, "seed": s, "accuracy": rng.uniform(0.7, 0.9),
             "auc": rng.uniform(0.8, 0.95)}
            for v, c, m, r in rows
            for s in range(4)
        ]
    )  # fmt: skip


@pytest.mark.parametrize("base_readout", ["z", "zz"])
def test_readout_comparisons(base_readout):
    if base_readout == "z":
        rows = [("baseline", "base", HYBRID, "z"), ("readout_zz", "zz", HYBRID, "zz"), ("twin", "twin", TWIN, "z"),
                ("twin_zz", "twin zz", TWIN, "zz")]  # fmt: skip
        zz, z, twin = "zz", "base", "twin zz"
    else:
        rows = [("baseline", "base", HYBRID, "zz"), ("readout_z", "z", HYBRID, "z"), ("twin", "twin", TWIN, "zz")]
        zz, z, twin = "base", "z", "twin"
    table = _table(rows)
    comps = [c for c in ablations.Ablations().compare(table) if c.tag in ablations.READOUT_TAGS]
    assert [(c.label, c.metric) for c in comps] == [
        ("hybrid zz − hybrid z", "accuracy"),
        ("hybrid zz − hybrid z", "auc"),
        ("hybrid zz − twin zz", "accuracy"),
        ("hybrid zz − twin zz", "auc"),
    ]
    assert [(c.a["condition"], c.b["condition"]) for c in comps[::2]] == [(zz, z), (zz, twin)]
    for c in comps:
        a = table[table.condition == c.a["condition"]][c.metric].to_numpy()
        b = table[table.condition == c.b["condition"]][c.metric].to_numpy()
        assert c.n == 4 and c.mean_diff == pytest.approx((a - b).mean())
    # Without the read-out variants there is nothing to compare.
    assert not [c for c in ablations.Ablations().compare(_table(rows[:1])) if c.tag in ablations.READOUT_TAGS]


# --- The app and the CLI ----------------------------------------------------------------------


def test_circuit_page_offers_the_read_out_and_describes_it():
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/2_Circuit.py").run()
    assert not at.exception and not at.error
    at.selectbox(key="w_readout").set_value("zz").run()
    assert not at.exception and not at.error
    assert at.session_state["settings"]["readout"] == "zz"
    n = at.session_state["settings"]["n_qubits"]
    captions = " ".join(c.value for c in at.caption)
    assert f"The head sees {readout_width(n, 'zz')} numbers" in captions
    assert "⟨Z_i Z_j⟩" in " ".join(m.value for m in at.markdown)


def test_explain_page_shows_one_bar_per_qubit_for_a_zz_model(trained_zz):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from ui.training import HYBRID, TrainedModel

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=120)
    at.session_state["models"] = {HYBRID: TrainedModel.from_outcome(trained_zz)}
    at.run()
    at.switch_page("pages/4_Explain.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    bars = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    bars = [b for b in bars if b["layout"]["title"]["text"].startswith("Per-qubit ⟨Z⟩")]
    assert len(bars) == 1 and bars[0]["data"][0]["x"] == ["q0", "q1", "q2"]
    assert any("read-out zz" in c.value for c in at.caption)


def test_cli_takes_the_read_out():
    from hqcnn.__main__ import build_parser

    args = build_parser().parse_args(["train", "--dataset", "pneumoniamnist", "--readout", "zz"])
    assert args.readout == "zz"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--readout", "xx"])
