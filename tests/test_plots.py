"""Tests of the figure builders: house rules (titles, axis titles, serialisable) and the data drawn."""

from __future__ import annotations

import json
import re

import numpy as np
import plotly.graph_objects as go
import pytest

from hqcnn import plots
from hqcnn.metrics import classification_metrics

BINARY = ["normal", "pneumonia"]
FIVE = ["grade 0", "grade 1", "grade 2", "grade 3", "grade 4"]
_AXIS_KEY = re.compile(r"^[xy]axis\d*$")
_CARTESIAN = {"bar", "box", "heatmap", "image", "scatter", "violin", "histogram"}


def _axis_key(ref: str) -> str:
    """Trace axis reference ("x", "y3") -> layout key ("xaxis", "yaxis3")."""
    return f"{ref[0]}axis{ref[1:]}"


def check_house_rules(fig: go.Figure) -> dict:
    """Assert the rules every figure must follow; return the figure as parsed JSON."""
    assert isinstance(fig, go.Figure)
    assert fig.layout.title.text, "figure has no title"
    assert fig.layout.font.size >= 14
    assert fig.layout.template.layout.paper_bgcolor is not None  # a template is applied

    layout = fig.layout.to_plotly_json()
    keys = {k for k in layout if _AXIS_KEY.match(k)}
    # Axes used by traces count even if the layout never mentions them.
    for trace in fig.data:
        if trace.type in _CARTESIAN:
            keys.add(_axis_key(trace.xaxis or "x"))
            keys.add(_axis_key(trace.yaxis or "y"))
    for key in sorted(keys):
        axis = fig.layout[key]
        # Hidden image axes, and the top axis of a shared-x pair (titled once at the bottom), are exempt.
        if axis.visible is False or axis.showticklabels is False:
            continue
        assert axis.title.text, f"{key} is visible but has no title"

    for key in (k for k in layout if re.match(r"^scene\d*$", k)):
        for dim in ("xaxis", "yaxis", "zaxis"):
            assert fig.layout[key][dim].title.text, f"{key}.{dim} has no title"

    parsed = json.loads(fig.to_json())  # serialisable for st.plotly_chart and for saving
    assert "data" in parsed and "layout" in parsed
    return parsed


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _probs(rng: np.random.Generator, y: np.ndarray, k: int) -> np.ndarray:
    """Plausible softmax outputs that favour the true class."""
    logits = rng.normal(size=(len(y), k))
    logits[np.arange(len(y)), y] += 1.5
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------- data


@pytest.mark.parametrize("names", [BINARY, FIVE])
def test_class_balance(names: list[str]) -> None:
    k = len(names)
    counts = {"train": list(range(10, 10 + k)), "val": [3] * k, "test": [5] * k}
    fig = plots.class_balance(counts, names)
    check_house_rules(fig)
    assert len(fig.data) == 3
    assert list(fig.data[0].y) == counts["train"]
    assert list(fig.data[0].x) == names
    # Hover share is a percentage of its own split.
    assert sum(fig.data[1].customdata) == pytest.approx(100.0, abs=0.5)


def test_class_balance_empty_split_has_no_division_by_zero() -> None:
    fig = plots.class_balance({"train": [4, 6], "test": [0, 0]}, BINARY)
    assert list(fig.data[1].customdata) == [0.0, 0.0]


@pytest.mark.parametrize(
    ("shape", "dtype", "trace_type"),
    [
        ((20, 28, 28), np.float32, "heatmap"),
        ((20, 28, 28, 3), np.uint8, "image"),
        ((20, 1, 28, 28), np.float32, "heatmap"),
    ],
)
def test_sample_grid(rng: np.random.Generator, shape: tuple[int, ...], dtype: type, trace_type: str) -> None:
    images = rng.random(shape)
    images = (images * 255).astype(np.uint8) if dtype is np.uint8 else images.astype(dtype)
    labels = np.arange(20) % 5
    labels[labels == 4] = 3  # class 4 has no images: an explanatory note instead of a blank row
    fig = plots.sample_grid(images, labels.reshape(-1, 1), FIVE, per_class=3)
    check_house_rules(fig)
    assert fig.layout.title.text == "Sample images per class"
    assert len(fig.data) == 4 * 3
    assert {t.type for t in fig.data} == {trace_type}
    texts = [a.text for a in fig.layout.annotations]
    assert all(name in texts for name in FIVE)  # row titles
    assert any("no images" in t for t in texts)
    # The first image of class 0 is drawn unchanged, up to the 256 levels a screen shows.
    first = np.asarray(fig.data[0].z, dtype=float)
    expected = images[0].astype(float).squeeze()
    if dtype is np.uint8:
        assert np.array_equal(first, expected)
    else:
        assert np.abs(first - 255 * expected).max() <= 0.5 + 1e-6


def test_sample_grid_wraps_long_class_names(rng: np.random.Generator) -> None:
    names = ["basophil", "immature granulocytes (myelocytes, metamyelocytes and promyelocytes)"]
    fig = plots.sample_grid(rng.random((4, 28, 28)), np.array([0, 1, 0, 1]), names, per_class=2)
    check_house_rules(fig)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0] == "basophil"
    assert all(len(line) <= 22 for line in titles[1].split("<br>"))
    assert titles[1].startswith("immature granulocytes<br>")


def test_sample_grid_downsamples_large_thumbnails(rng: np.random.Generator) -> None:
    images = rng.random((4, 128, 128))
    fig = plots.sample_grid(images, np.array([0, 1, 0, 1]), BINARY, per_class=2, max_side=64)
    assert np.asarray(fig.data[0].z).shape == (64, 64)
    assert np.asarray(fig.data[0].z).mean() / 255 == pytest.approx(images[0].mean(), abs=3e-3)


def test_figures_stay_light(rng: np.random.Generator) -> None:
    """A full 8-class grid of 128 px RGB images and a long training run stay well under 1 MB."""
    grid = plots.sample_grid(rng.random((64, 128, 128, 3)), np.arange(64) % 8, [f"c{i}" for i in range(8)])
    assert len(grid.to_json()) < 1_000_000
    run = _run(rng, 20_000, 10)
    curves = plots.training_curves(run["steps"], run["losses"], run["epochs"], run["accuracies"])
    assert len(curves.to_json()) < 200_000


@pytest.mark.parametrize("rgb", [False, True])
def test_before_after(rng: np.random.Generator, rgb: bool) -> None:
    before = rng.random((28, 28, 3) if rgb else (28, 28))
    after = rng.random((64, 64, 3) if rgb else (64, 64))
    fig = plots.before_after(before, after)
    check_house_rules(fig)
    assert len(fig.data) == 2
    titles = [a.text for a in fig.layout.annotations]
    assert any(t.startswith("Original (28×28") for t in titles)
    assert any(t.startswith("Model input (64×64") for t in titles)
    assert fig.layout.xaxis.title.text == "x (pixels)"


# ------------------------------------------------------------------------------------------ training


def _run(rng: np.random.Generator, n_steps: int, n_epochs: int) -> dict:
    steps = list(range(1, n_steps + 1))
    losses = list(np.exp(-np.arange(n_steps) / 50) + 0.1 * rng.random(n_steps))
    accs = list(np.clip(0.5 + np.arange(n_steps) / (2 * n_steps) + 0.1 * rng.normal(size=n_steps), 0, 1))
    per = n_steps // n_epochs
    epochs = [
        {"epoch": e, "step": e * per, "val_accuracy": 0.6 + 0.05 * e, "val_auc": 0.7 + 0.04 * e, "train_loss": 0.5}
        for e in range(1, n_epochs + 1)
    ]
    return {"steps": steps, "losses": losses, "accuracies": accs, "epochs": epochs}


def test_training_curves_single_run(rng: np.random.Generator) -> None:
    run = _run(rng, 120, 4)
    fig = plots.training_curves(run["steps"], run["losses"], run["epochs"], run["accuracies"], baseline_accuracy=0.62)
    check_house_rules(fig)
    names = [t.name for t in fig.data]
    assert names == [
        "loss per batch",
        "loss (smoothed)",
        "training accuracy (smoothed)",
        "validation accuracy (end of epoch)",
    ]
    assert {t.legendgrouptitle.text for t in fig.data} == {"hybrid"}
    val = fig.data[3]
    assert list(val.x) == [30, 60, 90, 120]
    assert list(val.y) == pytest.approx([0.65, 0.70, 0.75, 0.80])
    assert fig.layout.xaxis2.title.text.startswith("training step")
    assert fig.layout.xaxis.showticklabels is False  # shared x: titled once, at the bottom
    assert any("majority-class baseline 0.620" in (a.text or "") for a in fig.layout.annotations)
    # Smoothing reduces noise but keeps the level: the EMA starts at the first value (bias-corrected).
    assert fig.data[1].y[0] == pytest.approx(run["losses"][0], abs=1e-4)
    assert np.std(np.diff(fig.data[1].y)) < np.std(np.diff(fig.data[0].y))


def test_training_curves_with_twin(rng: np.random.Generator) -> None:
    main, other = _run(rng, 60, 3), _run(rng, 60, 3)
    twin = {**other, "name": "classical twin"}
    fig = plots.training_curves(main["steps"], main["losses"], main["epochs"], main["accuracies"], twin=twin)
    check_house_rules(fig)
    assert len(fig.data) == 8
    groups = [t.legendgrouptitle.text for t in fig.data]
    assert groups.count("hybrid") == 4 and groups.count("classical twin") == 4
    twin_traces = [t for t in fig.data if t.legendgroup == "classical twin" and t.mode == "lines"]
    assert all(t.line.dash == "dash" for t in twin_traces)
    assert fig.data[0].line.color != twin_traces[0].line.color


def test_training_curves_before_first_batch_and_without_steps() -> None:
    fig = plots.training_curves([], [], [])
    check_house_rules(fig)
    assert len(fig.data) == 0
    assert any("Waiting" in a.text for a in fig.layout.annotations)
    # History rows without "step" cannot be placed on the step axis; they are left out, not guessed.
    fig = plots.training_curves([1, 2], [0.7, 0.6], [{"epoch": 1, "val_accuracy": 0.5}])
    assert [t.name for t in fig.data] == ["loss per batch", "loss (smoothed)"]


def test_training_curves_thins_long_runs(rng: np.random.Generator) -> None:
    run = _run(rng, 10_000, 10)
    fig = plots.training_curves(run["steps"], run["losses"], run["epochs"], run["accuracies"], max_points=500)
    assert all(len(t.x) <= 500 for t in fig.data)
    assert fig.data[0].x[-1] == 10_000  # the latest step is always drawn


# ---------------------------------------------------------------------------------------- evaluation


@pytest.mark.parametrize("names", [BINARY, FIVE])
def test_confusion_matrix(rng: np.random.Generator, names: list[str]) -> None:
    k = len(names)
    conf = rng.integers(0, 30, size=(k, k)).tolist()
    conf[0] = [0] * k  # an empty true class must not divide by zero
    fig = plots.confusion_matrix(conf, names)
    check_house_rules(fig)
    hm = fig.data[0]
    assert hm.type == "heatmap"
    assert [list(r) for r in hm.z] == conf
    assert list(hm.x) == names
    assert [y.split(" (n=")[0] for y in hm.y] == names
    assert fig.layout.yaxis.autorange == "reversed"  # first class on the top row
    assert fig.layout.xaxis.title.text == "predicted class" and fig.layout.yaxis.title.text == "true class"
    row = np.asarray(conf[1])
    assert hm.text[1][1] == f"{row[1]}<br>{100 * row[1] / row.sum():.0f}%"
    assert hm.text[0][0] == "0<br>0%"


def test_roc_binary_with_reference(rng: np.random.Generator) -> None:
    y = rng.integers(0, 2, 80)
    m = classification_metrics(y, _probs(rng, y, 2))
    fig = plots.roc_curves(m["roc"], BINARY, m["auc"], reference_auc=0.956)
    check_house_rules(fig)
    assert len(fig.data) == 2  # chance line + curve
    assert f"AUC {m['auc']:.3f}" in fig.layout.title.text
    assert any(a.text == "MedMNIST ResNet-18: AUC 0.956" for a in fig.layout.annotations)
    assert list(fig.layout.xaxis.range) == [0, 1] and list(fig.layout.yaxis.range) == [0, 1]
    assert fig.layout.yaxis.scaleanchor == "x"  # square
    assert fig.layout.xaxis.title.text == "false positive rate (1 − specificity)"


def test_roc_multiclass_skips_absent_class(rng: np.random.Generator) -> None:
    y = rng.integers(0, 4, 100)  # class 4 never occurs
    m = classification_metrics(y, _probs(rng, y, 5))
    assert m["roc"]["4"] is None
    fig = plots.roc_curves(m["roc"], FIVE, m["auc"])
    check_house_rules(fig)
    assert len(fig.data) == 1 + 4
    assert not any("ResNet" in (a.text or "") for a in fig.layout.annotations)
    assert any("grade 4" in (a.text or "") for a in fig.layout.annotations)
    assert "macro AUC" in fig.layout.title.text
    # Per-class AUC in the legend matches sklearn's one-vs-rest AUC.
    from sklearn.metrics import roc_auc_score

    p = _probs(np.random.default_rng(1), y, 5)
    m = classification_metrics(y, p)
    fig = plots.roc_curves(m["roc"], FIVE, m["auc"])
    assert fig.data[1].name == f"grade 0 (AUC {roc_auc_score(y == 0, p[:, 0]):.3f})"


def test_roc_undefined() -> None:
    fig = plots.roc_curves(None, BINARY, None)
    check_house_rules(fig)
    assert "undefined" in fig.layout.title.text


def test_metrics_comparison_skips_none() -> None:
    rows = {
        "hybrid": {"accuracy": 0.85, "auc": 0.91, "f1": 0.8, "recall": None},
        "classical twin": {"accuracy": 0.84, "auc": 0.9, "f1": 0.79, "recall": 0.8},
        "majority-class baseline": {"accuracy": 0.625, "auc": None},
        "MedMNIST ResNet-18": {"accuracy": 0.854, "auc": 0.944},
    }
    fig = plots.metrics_comparison(rows, "Test-set metrics")
    check_house_rules(fig)
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == set(rows)
    assert list(by_name["majority-class baseline"].x) == ["accuracy"]
    assert "recall (sensitivity)" not in by_name["hybrid"].x
    assert list(by_name["hybrid"].y) == [0.85, 0.91, 0.8]
    assert list(by_name["hybrid"].text) == ["0.850", "0.910", "0.800"]
    assert list(fig.layout.yaxis.range) == [0, 1]
    assert fig.layout.yaxis.title.text == "score (0–1)"
    assert by_name["MedMNIST ResNet-18"].marker.pattern.shape == "/"  # references look different
    assert not by_name["hybrid"].marker.pattern.shape


# -------------------------------------------------------------------------------------- explanations


@pytest.mark.parametrize(("shape", "att_shape"), [((28, 28), (28, 28)), ((28, 28, 3), (14, 14))])
def test_saliency_overlay(rng: np.random.Generator, shape: tuple[int, ...], att_shape: tuple[int, int]) -> None:
    att = rng.random(att_shape)
    fig = plots.saliency_overlay(rng.random(shape), att, "Grad-CAM for 'pneumonia'", opacity=0.4)
    check_house_rules(fig)
    heat = fig.data[1]
    assert heat.colorbar.title.text == "relevance (0–1)"
    assert heat.opacity == 0.4
    assert np.allclose(np.asarray(heat.z), att, atol=1e-3)
    # A coarser map covers the whole image: its cells span [-0.5, W - 0.5].
    n = att_shape[1]
    assert heat.x0 - heat.dx / 2 == pytest.approx(-0.5)
    assert heat.x0 + (n - 0.5) * heat.dx == pytest.approx(shape[1] - 0.5)
    assert fig.layout.xaxis.title.text == "x (pixels)" and fig.layout.yaxis.title.text == "y (pixels)"


# ------------------------------------------------------------------------------------------- quantum


@pytest.mark.parametrize("n_qubits", [2, 8])
def test_qubit_bars(rng: np.random.Generator, n_qubits: int) -> None:
    readout = rng.uniform(-1, 1, n_qubits)
    fig = plots.qubit_bars(readout)
    check_house_rules(fig)
    bar = fig.data[0]
    assert list(bar.x) == [f"q{i}" for i in range(n_qubits)]
    assert np.allclose(bar.y, readout)
    assert list(fig.layout.yaxis.range) == [-1.05, 1.05]
    assert fig.layout.yaxis.zeroline is True
    assert bar.text[0] == f"{readout[0]:+.2f}"


@pytest.mark.parametrize(("n_qubits", "names"), [(2, BINARY), (8, FIVE)])
def test_qubit_distributions(rng: np.random.Generator, n_qubits: int, names: list[str]) -> None:
    n = 60
    readouts = rng.uniform(-1, 1, (n, n_qubits))
    labels = rng.integers(0, len(names), n)
    fig = plots.qubit_distributions(readouts, labels, names)
    check_house_rules(fig)
    assert fig.layout.title.text == "Distribution of each qubit's ⟨Z⟩ per class (test set)"
    assert fig.layout.boxmode == "group"
    assert len(fig.data) == len(np.unique(labels))
    box = fig.data[0]
    assert len(box.y) == (labels == 0).sum() * n_qubits
    # Values line up with their qubit position, and the positions are labelled q0, q1, ...
    assert box.x[1] == 1 and box.y[1] == pytest.approx(readouts[labels == 0][0, 1], abs=1e-6)
    assert list(fig.layout.xaxis.ticktext) == [f"q{i}" for i in range(n_qubits)]
    assert list(fig.layout.yaxis.range) == [-1.05, 1.05]


@pytest.mark.parametrize("n_qubits", [2, 8])
def test_bloch_spheres(rng: np.random.Generator, n_qubits: int) -> None:
    vec = rng.normal(size=(n_qubits, 3))
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    vec[0] *= 0.5  # an entangled qubit
    fig = plots.bloch_spheres(vec)
    check_house_rules(fig)
    scenes = [k for k in fig.layout.to_plotly_json() if k.startswith("scene")]
    assert len(scenes) == n_qubits
    assert fig.layout.scene.xaxis.title.text == "⟨X⟩"
    assert list(fig.layout.scene.zaxis.range) == [-1, 1]
    assert fig.layout.scene.aspectmode == "cube"
    titles = [a.text for a in fig.layout.annotations]
    assert any(t.startswith("q0: length 0.50") and "entangled with others" in t for t in titles)
    assert any(t.startswith("q1: length 1.00") and "not entangled" in t for t in titles)
    assert len(fig.data) == 4 * n_qubits
    surface = fig.data[0]
    assert np.asarray(surface.z).size <= 25 * 25  # light
    tip = [t for t in fig.data if t.name == "q0 Bloch vector"][0]
    assert [tip.x[1], tip.y[1], tip.z[1]] == pytest.approx(vec[0].tolist())
    # At most 4 scenes per row.
    rows = {round(fig.layout[s].domain.y[0], 3) for s in scenes}
    assert len(rows) == -(-n_qubits // 4)


# ------------------------------------------------------------------------------------ prediction, size


@pytest.mark.parametrize("names", [BINARY, FIVE])
def test_class_probabilities(rng: np.random.Generator, names: list[str]) -> None:
    p = rng.dirichlet(np.ones(len(names)))
    fig = plots.class_probabilities(p, names)
    check_house_rules(fig)
    bar = fig.data[0]
    assert list(bar.y) == names
    assert np.allclose(bar.x, p)
    pred = int(np.argmax(p))
    assert "predicted" in bar.text[pred]
    assert len(set(bar.marker.color)) == 2 and bar.marker.color[pred] != bar.marker.color[pred - 1]
    assert list(fig.layout.xaxis.range) == [0, 1]
    assert any(f"1/{len(names)}" in (a.text or "") for a in fig.layout.annotations)


def test_parameter_counts() -> None:
    rows = {
        "hybrid": {"backbone": 1200, "quantum": 24, "classical_middle": 0, "head": 18, "total": 1242},
        "classical twin": {"backbone": 1200, "quantum": 0, "classical_middle": 25, "head": 18, "total": 1243},
    }
    fig = plots.parameter_counts(rows)
    check_house_rules(fig)
    assert fig.layout.barmode == "stack"
    assert [t.name for t in fig.data] == [
        "CNN backbone",
        "quantum circuit",
        "classical stand-in layer",
        "classifier head",
    ]
    assert list(fig.data[1].y) == [24, 0]
    assert fig.layout.yaxis.title.text == "trainable parameters"
    totals = [a.text for a in fig.layout.annotations]
    assert totals == ["total 1,242", "total 1,243"]


def test_apply_style_sets_house_rules() -> None:
    fig = plots.apply_style(go.Figure(go.Scatter(x=[0, 1], y=[1, 0])), "A title", "x (s)", "y (m)")
    check_house_rules(fig)
    assert fig.layout.xaxis.title.text == "x (s)"
    assert list(fig.layout.colorway) == plots.OKABE_ITO
