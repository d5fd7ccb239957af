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


def check_fits_narrow_column(fig: go.Figure) -> None:
    """Assert `fig` stays usable in a half- or one-third-width column (the builders of this module;
    `check_house_rules` alone is shared with other figure modules).

    No legend in a strip on the right, which leaves such a column almost no plot: a legend that
    can show is horizontal (below the plot) or sits inside the plot area.
    """
    in_legend = [t for t in fig.data if getattr(t, "showlegend", False) is not False and t.name]
    if fig.layout.showlegend is not False and len(in_legend) > 1:
        legend = fig.layout.legend
        inside = legend.x is not None and 0 <= legend.x <= 1 and legend.y is not None and 0 <= legend.y <= 1
        assert legend.orientation == "h" or inside, "legend on the right-hand side"


def title_lines(fig: go.Figure) -> list[str]:
    """The lines of the figure title (plotly does not wrap titles: builders break them)."""
    return fig.layout.title.text.split("<br>")


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
    check_fits_narrow_column(fig)
    assert len(fig.data) == 3
    assert list(fig.data[0].y) == counts["train"]
    assert list(fig.data[0].x) == names
    assert fig.data[0].name == f"train ({sum(counts['train'])} images)"
    # Hover share is a percentage of its own split.
    assert sum(fig.data[1].customdata) == pytest.approx(100.0, abs=0.5)
    # Legend below the plot, and counts either readable (>= 12 px) or hidden, never shrunk away.
    assert fig.layout.legend.orientation == "h"
    assert fig.layout.uniformtext.minsize >= 12 and fig.layout.uniformtext.mode == "hide"
    assert all(t.textposition == "outside" for t in fig.data)
    assert 380 <= fig.layout.height <= 480


def test_class_balance_wraps_long_class_names() -> None:
    names = ["basophil", "immature granulocytes (myelocytes, metamyelocytes and promyelocytes)"]
    fig = plots.class_balance({"train": [5, 7]}, names)
    assert list(fig.data[0].x) == names  # the categories stay the full names (hover)
    assert list(fig.layout.xaxis.tickvals) == names
    assert all(len(line) <= 16 for tick in fig.layout.xaxis.ticktext for line in tick.split("<br>"))


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
    check_fits_narrow_column(fig)
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
    check_fits_narrow_column(fig)
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
    check_fits_narrow_column(fig)
    assert len(fig.data) == 2
    titles = [a.text for a in fig.layout.annotations]
    # Name and size on two short lines: one line each overprinted in a one-third-width column.
    assert "Original<br>28×28 px" in titles
    assert "Model input<br>64×64 px" in titles
    assert all(len(line) <= 16 for t in titles for line in t.split("<br>"))
    assert fig.layout.xaxis.title.text == "x (pixels)" and fig.layout.xaxis2.title.text == "x (pixels)"
    assert fig.layout.yaxis.title.text == "y (pixels)"
    # Only the left image has y ticks and a y title: nothing of it sits on the other image.
    assert fig.layout.yaxis2.showticklabels is False and not fig.layout.yaxis2.title.text
    assert fig.layout.xaxis.domain[1] + 0.05 < fig.layout.xaxis2.domain[0]
    # Subplot titles fit under the figure title (top margin holds both).
    assert fig.layout.margin.t >= 100
    assert 300 <= fig.layout.height <= 420


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
    check_fits_narrow_column(fig)
    names = [t.name for t in fig.data]
    assert names == [
        "loss per batch",
        "loss (smoothed)",
        "training accuracy (smoothed)",
        "validation accuracy per epoch",
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
    assert fig.layout.legend.orientation == "h"


def test_training_curves_shade_the_averaged_stretch(rng: np.random.Generator) -> None:
    run = _run(rng, 120, 4)
    fig = plots.training_curves(run["steps"], run["losses"], run["epochs"], run["accuracies"], averaged_steps=(60, 120))
    check_house_rules(fig)
    shaded = [shape for shape in fig.layout.shapes if shape.type == "rect"]
    assert len(shaded) == 2  # loss and accuracy rows
    assert all((shape.x0, shape.x1) == (60, 120) for shape in shaded)
    plain = plots.training_curves(run["steps"], run["losses"], run["epochs"], run["accuracies"])
    added = [a.text for a in fig.layout.annotations][len(plain.layout.annotations) :]
    assert added == ["weights averaged into the kept model"]  # said once, and nothing else added
    assert not [shape for shape in plain.layout.shapes if shape.type == "rect"]


@pytest.mark.parametrize(("n_steps", "dtick"), [(4, 1), (10, 1), (16, 2), (25, 5)])
def test_training_curves_short_runs_have_whole_step_ticks(rng: np.random.Generator, n_steps: int, dtick: int) -> None:
    """A run of a few batches must not show ticks at step 1.5, 2.5, ..."""
    run = _run(rng, n_steps, 2)
    fig = plots.training_curves(run["steps"], run["losses"], run["epochs"], run["accuracies"])
    for axis in (fig.layout.xaxis, fig.layout.xaxis2):
        assert axis.tickformat == ",d"
        assert axis.tickmode == "linear" and axis.dtick == dtick and axis.tick0 == 0
        assert axis.rangemode == "nonnegative"


def test_training_curves_long_runs_keep_automatic_integer_ticks(rng: np.random.Generator) -> None:
    run = _run(rng, 600, 3)
    fig = plots.training_curves(run["steps"], run["losses"], run["epochs"], run["accuracies"])
    assert fig.layout.xaxis2.tickformat == ",d"
    assert fig.layout.xaxis2.tickmode is None and fig.layout.xaxis2.dtick is None


def test_training_curves_with_twin(rng: np.random.Generator) -> None:
    main, other = _run(rng, 60, 3), _run(rng, 60, 3)
    twin = {**other, "name": "classical twin"}
    fig = plots.training_curves(main["steps"], main["losses"], main["epochs"], main["accuracies"], twin=twin)
    check_house_rules(fig)
    check_fits_narrow_column(fig)
    assert len(fig.data) == 8
    groups = [t.legendgrouptitle.text for t in fig.data]
    assert groups.count("hybrid") == 4 and groups.count("classical twin") == 4
    twin_traces = [t for t in fig.data if t.legendgroup == "classical twin" and t.mode == "lines"]
    assert all(t.line.dash == "dash" for t in twin_traces)
    assert fig.data[0].line.color != twin_traces[0].line.color


def test_training_curves_before_first_batch_and_without_steps() -> None:
    fig = plots.training_curves([], [], [])
    check_house_rules(fig)
    check_fits_narrow_column(fig)
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
    check_fits_narrow_column(fig)
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
    check_fits_narrow_column(fig)
    assert len(fig.data) == 2  # chance line + curve
    assert f"AUC {m['auc']:.3f}" in fig.layout.title.text
    reference = [a for a in fig.layout.annotations if a.text == "MedMNIST ResNet-18: AUC 0.956"]
    assert len(reference) == 1
    # The reference note sits above the plot, starting at its left edge (paper coordinates):
    # it can neither spill left over the y-axis title nor cover a curve.
    ref = reference[0]
    assert (ref.xref, ref.yref, ref.x, ref.xanchor, ref.y, ref.yanchor) == ("paper", "paper", 0, "left", 1, "bottom")
    assert list(fig.layout.xaxis.range) == [0, 1] and list(fig.layout.yaxis.range) == [0, 1]
    # No 1:1 lock (a small square in a half-width column); a fixed, balanced height instead.
    assert fig.layout.yaxis.scaleanchor is None
    assert 380 <= fig.layout.height <= 480
    # Legend inside the plot at the bottom right, on a semi-transparent box.
    legend = fig.layout.legend
    assert (legend.xanchor, legend.yanchor) == ("right", "bottom") and legend.x > 0.9 and legend.y < 0.1
    assert legend.bgcolor.startswith("rgba(") and not legend.bgcolor.endswith(",1)")
    assert fig.layout.xaxis.title.text == "false positive rate (1 − specificity)"


def test_roc_multiclass_skips_absent_class(rng: np.random.Generator) -> None:
    y = rng.integers(0, 4, 100)  # class 4 never occurs
    m = classification_metrics(y, _probs(rng, y, 5))
    assert m["roc"]["4"] is None
    fig = plots.roc_curves(m["roc"], FIVE, m["auc"])
    check_house_rules(fig)
    check_fits_narrow_column(fig)
    assert len(fig.data) == 1 + 4
    assert not any("ResNet" in (a.text or "") for a in fig.layout.annotations)
    assert any("grade 4" in (a.text or "") for a in fig.layout.annotations)
    assert "macro AUC" in fig.layout.title.text
    assert all(len(line) <= 34 for line in title_lines(fig))  # fits a half-width column
    missing_note = [a for a in fig.layout.annotations if "grade 4" in (a.text or "")][0]
    assert missing_note.yref == "paper" and missing_note.y == 1  # above the plot, clear of the legend
    # Per-class AUC in the legend matches sklearn's one-vs-rest AUC.
    from sklearn.metrics import roc_auc_score

    p = _probs(np.random.default_rng(1), y, 5)
    m = classification_metrics(y, p)
    fig = plots.roc_curves(m["roc"], FIVE, m["auc"])
    assert fig.data[1].name == f"grade 0 (AUC {roc_auc_score(y == 0, p[:, 0]):.3f})"


def test_roc_undefined() -> None:
    fig = plots.roc_curves(None, BINARY, None)
    check_house_rules(fig)
    check_fits_narrow_column(fig)
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
    check_fits_narrow_column(fig)
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == set(rows)
    assert list(by_name["majority-class baseline"].x) == ["accuracy"]
    assert "recall (sensitivity)" not in by_name["hybrid"].x
    assert list(by_name["hybrid"].y) == [0.85, 0.91, 0.8]
    assert list(by_name["hybrid"].text) == ["0.85", "0.91", "0.80"]
    # Room above 1 for the labels; ticks stop at 1.
    assert fig.layout.yaxis.range[0] == 0 and 1.05 <= fig.layout.yaxis.range[1] <= 1.2
    assert max(fig.layout.yaxis.tickvals) == 1
    assert fig.layout.yaxis.title.text == "score (0–1)"
    assert by_name["MedMNIST ResNet-18"].marker.pattern.shape == "/"  # references look different
    assert not by_name["hybrid"].marker.pattern.shape
    assert fig.layout.legend.orientation == "h"
    # One horizontal label per bar (on top of all bars, so a taller neighbour never hides it).
    labels = [a for a in fig.layout.annotations if a.yanchor == "bottom" and a.textangle in (None, 0)]
    assert len(labels) == sum(len(t.y) for t in fig.data)
    # Bars of a metric are packed: the baseline (accuracy only) leaves no gap elsewhere, and
    # within a metric no two bars overlap.
    for metric in by_name["hybrid"].x:
        spans = sorted(
            (t.offset[list(t.x).index(metric)], t.offset[list(t.x).index(metric)] + t.width)
            for t in fig.data
            if metric in t.x
        )
        assert all(a[1] <= b[0] + 1e-9 for a, b in zip(spans, spans[1:], strict=False))
        assert spans[0][0] == pytest.approx(-spans[-1][1], abs=0.05)  # centred on the category


def test_metrics_comparison_zero_is_a_value_none_is_not() -> None:
    """A score of 0 (no positive predictions) is drawn with a "0.00" label; None gets nothing."""
    rows = {"hybrid": {"accuracy": 0.375, "precision": 0.0, "recall": None, "f1": 0.0}}
    fig = plots.metrics_comparison(rows, "Test-set metrics")
    check_house_rules(fig)
    check_fits_narrow_column(fig)
    bar = fig.data[0]
    assert list(bar.x) == ["accuracy", "precision", "F1"]
    assert list(bar.y) == [0.375, 0.0, 0.0]
    assert list(bar.text) == ["0.38", "0.00", "0.00"]
    # Recall is None for the only model: no bar, no "0.00", but "n/a" over its category.
    labels = sorted(a.text for a in fig.layout.annotations)
    assert labels == ["0.00", "0.00", "0.38", "n/a"]


def test_metrics_comparison_says_na_for_a_metric_no_model_has() -> None:
    rows = {"hybrid": {"accuracy": 0.8, "auc": None}, "majority-class baseline": {"accuracy": 0.6, "auc": None}}
    fig = plots.metrics_comparison(rows, "Test-set metrics")
    check_house_rules(fig)
    assert list(fig.layout.xaxis.categoryarray) == ["accuracy", "ROC-AUC"]
    na = [a for a in fig.layout.annotations if a.text == "n/a"]
    assert len(na) == 1 and na[0].x == 1  # over the ROC-AUC category


def test_metrics_comparison_lifts_labels_of_close_neighbours() -> None:
    rows = {"hybrid": {"accuracy": 0.85}, "classical twin": {"accuracy": 0.84}, "other": {"accuracy": 0.2}}
    fig = plots.metrics_comparison(rows, "Test-set metrics")
    shift = {a.text: a.yshift for a in fig.layout.annotations}
    assert shift["0.84"] > shift["0.85"] + 10  # lifted clear of its neighbour's label
    assert shift["0.20"] == shift["0.85"]  # far apart: left where it is


# -------------------------------------------------------------------------------------- explanations


@pytest.mark.parametrize(("shape", "att_shape"), [((28, 28), (28, 28)), ((28, 28, 3), (14, 14))])
def test_saliency_overlay(rng: np.random.Generator, shape: tuple[int, ...], att_shape: tuple[int, int]) -> None:
    att = rng.random(att_shape)
    fig = plots.saliency_overlay(rng.random(shape), att, "Grad-CAM for 'pneumonia'", opacity=0.4)
    check_house_rules(fig)
    check_fits_narrow_column(fig)
    heat = fig.data[1]
    assert heat.colorbar.title.text == "relevance (0–1)"
    assert heat.opacity == 0.4
    # Low relevance is transparent, so the image shows through; high relevance is opaque.
    low, high = heat.colorscale[0][1], heat.colorscale[-1][1]
    assert low.startswith("rgba(") and low.endswith(",0.00)")
    assert high.endswith(",1.00)")
    # A thin colour bar close to the map: horizontal, under the image, a fixed length.
    bar = heat.colorbar
    assert bar.orientation == "h" and bar.thickness <= 16 and bar.lenmode == "pixels"
    assert bar.x == 0.5 and bar.xanchor == "center"
    assert 420 <= fig.layout.height <= 540
    assert np.allclose(np.asarray(heat.z), att, atol=1e-3)
    # A coarser map covers the whole image: its cells span [-0.5, W - 0.5].
    n = att_shape[1]
    assert heat.x0 - heat.dx / 2 == pytest.approx(-0.5)
    assert heat.x0 + (n - 0.5) * heat.dx == pytest.approx(shape[1] - 0.5)
    assert fig.layout.xaxis.title.text == "x (pixels)" and fig.layout.yaxis.title.text == "y (pixels)"


def test_saliency_overlay_default_opacity_lets_the_image_through(rng: np.random.Generator) -> None:
    fig = plots.saliency_overlay(rng.random((28, 28)), rng.random((28, 28)), "Saliency")
    assert fig.data[1].opacity == pytest.approx(0.45)


def test_evidence_overlay_diverges_from_zero(rng: np.random.Generator) -> None:
    evidence = rng.uniform(-1.5, 1.5, (28, 28))
    fig = plots.evidence_overlay(rng.random((28, 28)), evidence, "Occlusion for 'pneumonia'", "<b>pneumonia</b>")
    check_house_rules(fig)
    check_fits_narrow_column(fig)
    heat = fig.data[1]
    assert (heat.zmin, heat.zmid, heat.zmax) == (-1.0, 0.0, 1.0)
    assert np.allclose(np.asarray(heat.z), np.clip(evidence, -1, 1), atol=1e-6)
    # Reversed RdBu: blue (against) at −1, red (for) at +1, transparent where there is no evidence.
    low, middle, high = heat.colorscale[0][1], heat.colorscale[len(heat.colorscale) // 2][1], heat.colorscale[-1][1]
    (r_low, _, b_low), (r_high, _, b_high) = ([int(v) for v in c[5:].split(",")[:3]] for c in (low, high))
    assert b_low > r_low and r_high > b_high
    assert middle.endswith(",0.00)") and low.endswith(",1.00)") and high.endswith(",1.00)")
    # The class named in the colour bar is literal text, not markup.
    assert heat.colorbar.title.text == "evidence for / against '&lt;b&gt;pneumonia&lt;/b&gt;'"
    assert heat.colorbar.orientation == "h"


def test_class_probabilities_marks_the_class_called() -> None:
    """A decision threshold may call the less probable class: that one is marked, not the argmax."""
    fig = plots.class_probabilities(
        np.array([0.3, 0.7]),
        ["normal", "pneumonia"],
        predicted=0,
        title="Calibrated probability of each class",
        x_title="calibrated probability (T = 0.58)",
    )
    check_house_rules(fig)
    assert "predicted" in fig.data[0].text[0] and "predicted" not in fig.data[0].text[1]
    assert fig.layout.title.text == "Calibrated probability of each class"
    assert fig.layout.xaxis.title.text == "calibrated probability (T = 0.58)"


# ------------------------------------------------------------------------------------------- quantum


@pytest.mark.parametrize("n_qubits", [2, 8])
def test_qubit_bars(rng: np.random.Generator, n_qubits: int) -> None:
    readout = rng.uniform(-1, 1, n_qubits)
    fig = plots.qubit_bars(readout)
    check_house_rules(fig)
    check_fits_narrow_column(fig)
    bar = fig.data[0]
    assert list(bar.x) == [f"q{i}" for i in range(n_qubits)]
    assert np.allclose(bar.y, readout)
    assert list(fig.layout.yaxis.range) == [-1.05, 1.05]
    assert fig.layout.yaxis.zeroline is True
    assert bar.text[0] == f"{readout[0]:+.2f}"
    # Says what the bars are: the numbers the head reads; +1 always measured 0, −1 always 1.
    assert fig.layout.yaxis.title.text == "⟨Z⟩: what the classifier head reads"
    assert fig.layout.yaxis.ticktext[0] == "−1 (always 1)" and fig.layout.yaxis.ticktext[-1] == "+1 (always 0)"


@pytest.mark.parametrize(("n_qubits", "names"), [(2, BINARY), (8, FIVE)])
def test_qubit_distributions(rng: np.random.Generator, n_qubits: int, names: list[str]) -> None:
    n = 60
    readouts = rng.uniform(-1, 1, (n, n_qubits))
    labels = rng.integers(0, len(names), n)
    fig = plots.qubit_distributions(readouts, labels, names)
    check_house_rules(fig)
    check_fits_narrow_column(fig)
    assert fig.layout.title.text == "Each qubit's ⟨Z⟩ per class<br>(test set)"
    assert all(len(line) <= 30 for line in title_lines(fig))  # not cut off at half width
    assert fig.layout.legend.orientation == "h"
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
    check_fits_narrow_column(fig)
    scenes = [k for k in fig.layout.to_plotly_json() if k.startswith("scene")]
    assert len(scenes) == n_qubits
    assert fig.layout.scene.xaxis.title.text == "⟨X⟩"
    assert fig.layout.scene.aspectmode == "cube"
    for scene in scenes:
        for dim in ("xaxis", "yaxis", "zaxis"):
            axis = fig.layout[scene][dim]
            # The whole sphere (and the labels just beyond it) in view, the same on every axis.
            lo, hi = axis.range
            assert lo == -hi and hi >= 1
            # No stray tick labels, grid boxes, zero lines or panes around the spheres.
            assert axis.showticklabels is False and axis.showgrid is False
            assert axis.showbackground is False and axis.zeroline is False
    # The axes are labelled where they are, by text on the sphere, for every qubit.
    labels = [t for t in fig.data if t.name == "axis labels"]
    assert len(labels) == n_qubits
    assert list(labels[0].text) == ["X", "Y", "|0⟩", "|1⟩"]
    assert labels[0].x[0] > 1 and labels[0].y[1] > 1 and list(labels[0].z[2:]) == [1, -1]
    titles = [a.text for a in fig.layout.annotations]
    assert any(t == "q0: length 0.50<br>entangled" for t in titles)
    assert any(t == "q1: length 1.00<br>not entangled" for t in titles)
    # Subplot titles short enough for four spheres side by side in a half-width column.
    assert all(len(line) <= 16 for t in titles if t.startswith("q") for line in t.split("<br>"))
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
    check_fits_narrow_column(fig)
    bar = fig.data[0]
    assert list(bar.y) == names
    assert np.allclose(bar.x, p)
    pred = int(np.argmax(p))
    assert "predicted" in bar.text[pred]
    assert len(set(bar.marker.color)) == 2 and bar.marker.color[pred] != bar.marker.color[pred - 1]
    assert list(fig.layout.xaxis.range) == [0, 1]
    # The chance line's label sits above the plot, where no bar or value can run into it.
    chance = [a for a in fig.layout.annotations if f"1/{len(names)}" in (a.text or "")]
    assert len(chance) == 1
    assert chance[0].yref == "paper" and chance[0].y == 1 and chance[0].yanchor == "bottom"
    # Each value is written past its bar on an opaque-enough box drawn over the dotted line.
    values = [a for a in fig.layout.annotations if a not in chance]
    assert [a.text for a in values] == list(bar.text)
    assert [a.x for a in values] == pytest.approx(list(p))
    assert all(a.xanchor == "left" and a.bgcolor for a in values)
    assert bar.textposition == "none"  # not drawn twice


def test_class_probabilities_value_next_to_the_chance_line() -> None:
    """The reviewer's case: 0.42 just left of the 0.5 line of a binary task."""
    fig = plots.class_probabilities(np.array([0.58, 0.42]), ["normal", "pneumonia"])
    label = [a for a in fig.layout.annotations if a.text == "0.42"][0]
    # On a box of (nearly) opaque white, so the dotted line does not strike through the digits.
    alpha = float(label.bgcolor.rstrip(")").split(",")[-1])
    assert alpha >= 0.85


def test_parameter_counts() -> None:
    rows = {
        "hybrid": {"backbone": 1200, "quantum": 24, "classical_middle": 0, "head": 18, "total": 1242},
        "classical twin": {"backbone": 1200, "quantum": 0, "classical_middle": 25, "head": 18, "total": 1243},
    }
    fig = plots.parameter_counts(rows)
    check_house_rules(fig)
    check_fits_narrow_column(fig)
    # One bar per model in each stage, on a log axis: the 18-parameter head is as visible as the
    # 1,200-parameter backbone.
    assert [t.name for t in fig.data] == ["hybrid", "classical twin"]
    stages = ["CNN backbone", "quantum circuit", "classical stand-in layer", "classifier head"]
    assert all(list(t.x) == stages for t in fig.data)
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.yaxis.title.text == "trainable parameters (log scale)"
    assert list(fig.data[0].y) == [1200, 24, None, 18]  # log axes cannot draw 0: no bar ...
    assert list(fig.data[0].text) == ["1,200", "24", "0", "18"]  # ... but the value is kept
    assert all(t.textposition == "outside" for t in fig.data)
    # ... and the empty slot says "none", over that model's own slot.
    nones = [a for a in fig.layout.annotations if a.text == "none"]
    assert len(nones) == 2
    hybrid_slot = fig.data[0].offset + fig.data[0].width / 2
    assert nones[0].x == pytest.approx(2 + hybrid_slot)
    # The totals (recomputed, not taken from the "total" key) in one note.
    totals = [a.text for a in fig.layout.annotations if "total" in a.text]
    assert totals == ["hybrid: 1,242 in total<br>classical twin: 1,243 in total"]
    assert fig.layout.legend.orientation == "h"
    assert 380 <= fig.layout.height <= 460


def test_parameter_counts_drops_a_stage_no_model_has() -> None:
    fig = plots.parameter_counts({"hybrid": {"backbone": 7576, "quantum": 16, "classical_middle": 0, "head": 114}})
    check_house_rules(fig)
    check_fits_narrow_column(fig)
    assert list(fig.data[0].x) == ["CNN backbone", "quantum circuit", "classifier head"]


def test_apply_style_breaks_long_titles_and_makes_room_for_them() -> None:
    short = plots.apply_style(go.Figure(), "A title", None, None)
    long = plots.apply_style(
        go.Figure(), "Test accuracy against training images per class (mean of 5 seeds, 95% CI)", None, None
    )
    assert "<br>" not in short.layout.title.text
    assert all(len(line) <= 56 for line in title_lines(long)) and len(title_lines(long)) == 2
    assert long.layout.margin.t > short.layout.margin.t
    # Anchored to the top of the figure, so extra lines grow down into the margin made for them.
    assert (long.layout.title.yref, long.layout.title.y, long.layout.title.yanchor) == ("container", 1, "top")


def test_apply_style_sets_house_rules() -> None:
    fig = plots.apply_style(go.Figure(go.Scatter(x=[0, 1], y=[1, 0])), "A title", "x (s)", "y (m)")
    check_house_rules(fig)
    assert fig.layout.xaxis.title.text == "x (s)"
    assert list(fig.layout.colorway) == plots.OKABE_ITO


def test_a_live_chart_spans_the_planned_steps_from_the_first_batch(rng: np.random.Generator) -> None:
    """Early in a long run (5 of 1,122 steps, the averaged stretch shaded ahead), the step axis
    already spans the whole run with automatic ticks, not one tick per step over 1,122 steps."""
    run = _run(rng, 5, 1)
    fig = plots.training_curves(
        run["steps"], run["losses"], [], run["accuracies"], averaged_steps=(561, 1122), total_steps=1122
    )
    axis = fig.layout.xaxis2
    assert axis.tickmode is None and axis.dtick is None
    assert axis.range[0] == 0 and axis.range[1] >= 1122
