"""The Circuit page: parameter counts from the configuration, words that follow the settings, the
diagram and text form, and the OpenQASM export of a trained model checked in Qiskit."""

from __future__ import annotations

import base64
import itertools
import math
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from hqcnn.checkpoint import ModelMeta
from hqcnn.circuit import CircuitSpec, circuit_gates, draw_text
from hqcnn.config import ENCODINGS, ENTANGLERS, DataConfig, ModelConfig, RunConfig
from hqcnn.data import PreparedData, prepare_split
from hqcnn.model import QuantumLayer, build_model, count_parameters, parameter_counts
from hqcnn.plots.quantum import DIAGRAM_WIDTH_PX
from ui.state import SETTINGS
from ui.training import HYBRID, TrainedModel

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "pages/2_Circuit.py"

# --- Parameter counts: the formula against the real models -----------------------------------


def _grid() -> list[tuple[ModelConfig, int, int]]:
    """Every qubit count and several depths and feature counts; the other settings cycle through
    all their values, so each meets every qubit count."""
    shapes = [(n, d, f) for n in range(2, 9) for d in (1, 3, 8) for f in sorted({n, 2 * n + 1, 3 * n})]
    cycles = itertools.product(ENTANGLERS, ENCODINGS, (1, 3), (2, 5), (True, False), ((8, 16), (3, 5)), (16, 7))
    others = itertools.islice(itertools.cycle(list(cycles)), 7, None, 11)  # a stride that mixes them
    cases = []
    for (n, d, f), (ent, enc, channels, classes, norm, widths, hidden) in zip(shapes, others, strict=False):
        cfg = ModelConfig(
            n_qubits=n,
            depth=d,
            n_features=f,
            entangler=ent,
            encoding=enc,
            batch_norm=norm,
            channels=widths,
            hidden=hidden,
        )
        cases.append((cfg, channels, classes))
    return cases


GRID = _grid()


def test_grid_covers_every_setting():
    assert {c.n_qubits for c, _, _ in GRID} == set(range(2, 9))
    assert {c.entangler for c, _, _ in GRID} == set(ENTANGLERS)
    assert {c.encoding for c, _, _ in GRID} == set(ENCODINGS)
    assert {(ch, k, c.batch_norm) for c, ch, k in GRID} == set(itertools.product((1, 3), (2, 5), (True, False)))


@pytest.mark.parametrize("cfg,in_channels,n_classes", GRID, ids=lambda v: str(v) if isinstance(v, int) else None)
def test_parameter_counts_from_the_configuration_equal_the_real_models(cfg, in_channels, n_classes, one_torch_thread):
    for kind in ("hybrid", "classical", "backbone"):
        model_cfg = replace(cfg, kind=kind)
        # The PennyLane layer: compiling the fast simulator for each of these shapes is slow.
        real = parameter_counts(build_model(model_cfg, in_channels, n_classes, backend="pennylane"))
        assert count_parameters(model_cfg, in_channels, n_classes) == real, kind


def test_parameter_counts_of_the_fast_backend_too():
    cfg = ModelConfig(n_qubits=3, depth=2, n_features=7, entangler="chain", encoding="reupload")
    model = build_model(cfg, 3, 5, backend="fast")
    assert count_parameters(cfg, 3, 5) == parameter_counts(model)


# --- The page ---------------------------------------------------------------------------------


def open_circuit(models: dict | None = None, **settings) -> AppTest:
    """The app with `settings` (and `models`) seeded, on the Circuit page (page links need app.py)."""
    at = AppTest.from_file(APP, default_timeout=120)
    values = {name: spec.default for name, spec in SETTINGS.items()}
    values.update(settings)
    at.session_state["settings"] = values
    if models is not None:
        at.session_state["models"] = models
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def page_text(at: AppTest) -> str:
    """Every sentence the page shows (markdown, captions, image captions, widget help)."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [img.caption for image in at.get("image") for img in image.proto.imgs if img.caption]
    parts += [w.help or "" for w in [*at.selectbox, *at.slider]]
    return "\n".join(parts)


@pytest.mark.parametrize("entangler", ENTANGLERS)
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.slow
def test_words_follow_the_entangler_and_encoding(entangler, encoding):
    at = open_circuit(n_qubits=4, depth=2, n_features=9, entangler=entangler, encoding=encoding)
    text = page_text(at)
    stages = next(m.value for m in at.markdown if "**Encoding**" in m.value)
    assert "Cnot" not in text and "none CNOT" not in text
    assert "−π" not in text and "between 0 and π" in stages
    if entangler == "none":
        assert "CNOT" not in stages and "share information" not in text
        assert "with no entangling gates" in text
    else:
        cnots = 4 if entangler == "ring" else 3
        assert f"**Entangler ({entangler})**: A {entangler} of {cnots} CNOTs per layer" in stages
        assert f"each followed by a {entangler} of {cnots} CNOTs" in text
    if encoding == "ry":
        assert "about Z" not in stages and "about X" not in stages and "add up" in stages
    else:
        assert "features 4–7 rotate q0–q3 about Z; feature 8 rotates q0 about X" in stages
    assert ("repeated before each of the 2 layers" in stages) == (encoding == "reupload")
    # The captions under the two choices are the registry's words, capitals kept.
    assert any(c.value.startswith("CNOT from") for c in at.caption) == (entangler != "none")


def test_the_angle_range_stated_is_the_models():
    features = torch.tensor([-1e3, -3.0, 0.0, 3.0, 1e3])
    angles = QuantumLayer.angles(features)
    assert angles.min() >= 0 and angles.max() <= math.pi
    assert (angles[1:4] > 0).all() and (angles[1:4] < math.pi).all()
    torch.testing.assert_close(angles[2], torch.tensor(math.pi / 2))


@pytest.mark.slow
def test_largest_setting_shows_the_whole_text_form_and_one_diagram():
    at = open_circuit(n_qubits=8, depth=8, n_features=24, entangler="ring", encoding="reupload")
    images = at.get("image")
    assert len(images) == 1
    # The SVG the browser receives: never wider than its column, so its labels keep their size.
    url = images[0].proto.imgs[0].url
    assert url.startswith("data:image/svg+xml;base64,")
    root = ElementTree.fromstring(base64.b64decode(url.split(",", 1)[1]))
    assert float(root.get("width")) <= DIAGRAM_WIDTH_PX
    assert min(float(t.get("font-size")) for t in root.iter("{http://www.w3.org/2000/svg}text")) >= 14
    spec = CircuitSpec(8, 8, 24, "ring", "reupload")
    assert at.code[0].value == draw_text(spec)  # all of it, in blocks that fit the code box
    stages = next(m.value for m in at.markdown if "**Encoding**" in m.value)
    assert "192 encoding rotations in all" in stages


@pytest.mark.slow
def test_page_counts_are_the_formula():
    at = open_circuit(n_qubits=5, depth=3, n_features=11, dataset="retinamnist")
    table = at.table[0].value
    cfg = ModelConfig(n_qubits=5, depth=3, n_features=11)
    for column, kind in (("hybrid", "hybrid"), ("classical twin", "classical")):
        expected = count_parameters(replace(cfg, kind=kind), 3, 5).to_dict()
        assert [int(v.replace(",", "")) for v in table[column]] == list(expected.values())


@pytest.mark.parametrize("entangler", ["chain", "none"])
def test_page_shows_expressibility_and_entangling_capability(entangler):
    from hqcnn import expressibility
    from tests.test_plots import check_house_rules

    at = open_circuit(n_qubits=3, depth=2, n_features=6, entangler=entangler, encoding="layered")
    here = expressibility.properties(CircuitSpec(3, 2, 6, entangler, "layered"))
    bare = expressibility.properties(CircuitSpec(3, 2, 6, "none", "layered"))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Expressibility (lower = more expressive)"] == f"{here.expressibility:.3f}"
    assert metrics["Entangling capability (Meyer–Wallach Q)"] == f"{here.entangling_capability:.3f}"
    words = next(m.value for m in at.markdown if "**Entangling capability**" in m.value)
    assert "Haar-random states: 0" in words
    assert f"(N − 2)/(N + 1) = {6 / 9:.3f} with N = 8" in words  # Q of Haar states, 3 qubits
    assert f"{7 * math.log(75):.1f}, that is (N − 1)·ln 75 with N = 2ⁿ = 8" in words  # the idle circuit's
    if entangler == "none":
        assert "already the one without entanglers" in words and "so Q is 0" in words
        assert here.entangling_capability == pytest.approx(0, abs=1e-12)
    else:
        assert f"without entanglers (entangler none): {bare.expressibility:.3f}" in words
        assert "without entanglers: 0.000 (product states have Q = 0)" in words
    notes = page_text(at)
    assert "properties of the circuit alone, not of your trained model" in notes
    assert "not thereby more accurate" in notes and "arXiv:1905.10876" in notes
    chart = next(c for c in at.get("plotly_chart") if "Across depths" in c.proto.spec)
    import plotly.io

    fig = plotly.io.from_json(chart.proto.spec)
    check_house_rules(fig)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert len(lines) == (2 if entangler == "none" else 4)  # both measures, this entangler (and none)
    assert list(lines[0].x) == list(range(1, 9))  # every depth the app offers
    assert lines[0].y[1] == pytest.approx(here.expressibility)


# --- OpenQASM of a trained model ----------------------------------------------------------------


def _trained(data: PreparedData, model_cfg: ModelConfig, source: str = "trained") -> TrainedModel:
    config = RunConfig(data=DataConfig(dataset=data.info.key, train_per_class=40), model=model_cfg)
    torch.manual_seed(3)
    model = build_model(model_cfg, data.in_channels, len(data.info.label_names)).eval()
    return TrainedModel(model, config, ModelMeta.from_data(data), {}, source)


def _qiskit_readout(qasm: str) -> np.ndarray:
    import qiskit
    from qiskit.quantum_info import SparsePauliOp, Statevector

    circuit = qiskit.qasm2.loads(qasm).remove_final_measurements(inplace=False)
    state = Statevector(circuit)
    n = circuit.num_qubits
    # Qiskit numbers qubits little-endian; a Pauli on qubit q named by index avoids that trap.
    return np.array(
        [state.expectation_value(SparsePauliOp.from_sparse_list([("Z", [q], 1.0)], n)).real for q in range(n)]
    )


def _model_readout(trained: TrainedModel, index: int) -> tuple[np.ndarray, int]:
    x, y = prepare_split(trained.config.data, "test", trained.meta.mean, trained.meta.std)
    with torch.no_grad():
        readout = trained.model.forward_with_readout(x[index : index + 1])[1][0]
    return readout.double().numpy(), int(y[index].reshape(-1)[0])


def _exported(at: AppTest) -> str:
    return next(c.value for c in at.code if c.value.startswith("OPENQASM 2.0;"))


@pytest.mark.parametrize(
    "model_cfg",
    [
        ModelConfig(n_qubits=4, depth=2, n_features=8),
        ModelConfig(n_qubits=3, depth=3, n_features=7, entangler="chain", encoding="reupload"),
        ModelConfig(n_qubits=5, depth=1, n_features=10, entangler="none", encoding="ry"),
    ],
)
def test_trained_model_openqasm_gives_the_models_readout_in_qiskit(small_pneumonia, model_cfg):
    trained = _trained(small_pneumonia, model_cfg)
    at = open_circuit({HYBRID: trained})
    qasm = _exported(at)
    expected, label = _model_readout(trained, 0)
    np.testing.assert_allclose(_qiskit_readout(qasm), expected, atol=2e-5)
    header = [line for line in qasm.splitlines() if line.startswith("//")]
    assert any("trained in this session" in line for line in header)
    assert any(
        "PneumoniaMNIST" in line and f"{model_cfg.n_qubits} qubits, depth {model_cfg.depth}" in line for line in header
    )
    assert any(f"test split, image 0, true class {label}" in line for line in header)
    same = model_cfg == ModelConfig()
    assert any(("shape designed above" in c.value) == same for c in at.caption if "hybrid model" in c.value)
    # Another image: new angles, the same trained weights, the readout still the model's.
    at.number_input(key="circuit_qasm_index").set_value(7).run()
    qasm7 = _exported(at)
    expected7, label7 = _model_readout(trained, 7)
    np.testing.assert_allclose(_qiskit_readout(qasm7), expected7, atol=2e-5)
    assert f"image 7, true class {label7} ({small_pneumonia.info.label_names[label7]})" in qasm7
    names = [b.proto.label for b in at.get("download_button")]
    assert "Trained circuit for this image (OpenQASM 2.0)" in names


def test_placeholder_export_says_so_without_a_model():
    at = open_circuit()
    assert not any(c.value.startswith("OPENQASM") for c in at.code)
    assert any("placeholder angles (all 0)" in c.value for c in at.caption)


def test_uploaded_model_names_are_escaped_and_unavailable_data_is_an_error(small_pneumonia):
    trained = _trained(small_pneumonia, ModelConfig(), source="uploaded")
    # A dataset this session never uploaded: the page must refuse to read it, and say so.
    trained.meta = replace(trained.meta, dataset="upload:[x](http://evil)")
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["models"] = {HYBRID: trained}
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception
    assert any("not available to this session" in e.value for e in at.error)
    assert not any("](http" in c.value for c in at.caption)  # the name shown is literal text
    assert at.get("page_link")  # the rest of the page is still drawn


def test_export_header_of_a_crafted_name_stays_a_comment():
    import qiskit

    from hqcnn.circuit import to_openqasm

    spec = CircuitSpec(2, 1, 2)
    circuit = qiskit.qasm2.loads(to_openqasm(spec, comments=["dataset evil\nqreg r[3];\nx q[0];"]))
    assert circuit.num_qubits == 2
    names = [instruction.operation.name for instruction in circuit.data]
    assert len(names) == len(circuit_gates(spec)) + spec.n_qubits and "x" not in names  # gates, measurements
