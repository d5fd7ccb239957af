"""Quantum hardware noise: the trained hybrid's circuit on a noisy, finite-shot simulator."""

from __future__ import annotations

from typing import Any

import numpy as np

from hqcnn.errors import ConfigError
from hqcnn.experiments import charts
from hqcnn.experiments.registry import Study, register
from hqcnn.experiments.table import HYBRID, TWIN, compare, in_order, mean_of, select
from hqcnn.experiments.tasks import metrics_row
from hqcnn.noisy import noisy_predict_proba

from ._common import seed_pairs
from .input_noise import noise_seed

EXACT = "p = 0, exact"  # the noiseless circuit, the reference of every noisy condition


def hardware_subset(n_test: int, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of `n` test images (all of them if n >= n_test)."""
    if n >= n_test:
        return np.arange(n_test)
    return np.sort(np.random.default_rng(seed).choice(n_test, size=n, replace=False))


AS_TRAINED = "as trained (exact, training simulator)"
TWIN_REFERENCE = "classical twin (no quantum part)"


def reference_rows(task: Any, outcome: Any) -> tuple[Any, Any, list[dict[str, Any]]]:
    """The seeded test subset (x, y) a simulator study evaluates on, and its reference row: the
    twin's accuracy (it has no quantum part) or the hybrid's as trained, on the training simulator."""
    from hqcnn.train import evaluate

    data, model = outcome.data, outcome.result.model
    idx = hardware_subset(len(data.y_test), task.options["images"], task.options["subset_seed"])
    x, y = data.x_test[idx], data.y_test[idx]
    hybrid = task.model.kind == "hybrid"
    condition, simulator = (AS_TRAINED, "training") if hybrid else (TWIN_REFERENCE, "none")
    metrics = evaluate(model, x, y, data.info.positive)
    row = metrics_row(task, outcome, metrics, condition=condition, simulator=simulator, n_eval=len(idx))
    return x, y, [row]


def shots_label(shots: int | None) -> str:
    return "exact" if shots is None else f"{shots} shots"


@register
class HardwareNoise(Study):
    name = "hardware_noise"
    order = 3
    title = "Quantum hardware noise"
    question = "What would noisy quantum hardware (depolarising noise, finite shots) do to the trained hybrid?"
    claims = ("hardware",)
    claim_figures = {"hardware": "hardware_noise_accuracy"}
    quick_seconds = 44
    _grid = {"train_per_class": None, "depolarizing": (0.0, 0.001, 0.01, 0.05), "shots": (None, 1000, 100)}
    grids = {"quick": {**_grid, "images": 300}, "full": {**_grid, "images": 1000}}

    def tasks(self, config, preset):
        grid = self.grid(preset)
        for p in grid["depolarizing"]:
            if not 0 <= p <= 1:
                raise ConfigError(f"Depolarising probabilities must lie in [0, 1], got {p}.")
        options = {
            "grid": [(p, s) for s in grid["shots"] for p in grid["depolarizing"]],
            "images": grid["images"],
            "subset_seed": config.base_seed,
        }
        return seed_pairs(self, config, preset, options)

    def evaluate(self, task, outcome):
        from hqcnn.metrics import classification_metrics

        x, y, rows = reference_rows(task, outcome)
        if task.model.kind != "hybrid":
            return rows
        model, common = outcome.result.model, {"n_eval": len(y)}
        for i, (p, shots) in enumerate(task.options["grid"]):
            probs = noisy_predict_proba(model, x, p, shots, seed=noise_seed(task.seed, 7, i))
            rows.append(
                metrics_row(
                    task, outcome, classification_metrics(y.numpy(), probs, outcome.data.info.positive), condition=f"p = {p:g}, {shots_label(shots)}",
                    simulator="default.mixed", p=p, shots=shots_label(shots), x=p, **common,
                )
            )  # fmt: skip
        return rows

    def compare(self, table):
        out = []
        noisy = table[table["simulator"] == "default.mixed"] if "simulator" in table else table[:0]
        for condition in in_order(noisy["condition"]):
            if condition == EXACT:
                continue
            p, _, shots = condition.partition(", ")
            read_out = "exact read-out" if shots == "exact" else shots
            out.append(
                compare(
                    table, {"model": HYBRID, "condition": condition}, {"model": HYBRID, "condition": EXACT},
                    f"hybrid at {condition} − hybrid exact (p = 0)", tag="hardware", condition=condition,
                    subject=f"With depolarising {p} and {read_out}, the hybrid", other="the noiseless circuit",
                    extra={"p": float(select(noisy, condition=condition)["p"].iloc[0]), "shots": shots},
                )
            )  # fmt: skip
        if not select(table, condition=EXACT).empty:
            out.append(
                compare(
                    table,
                    {"model": HYBRID, "condition": EXACT},
                    {"model": TWIN},
                    "hybrid exact (p = 0) − classical twin",
                )
            )
        return out

    def notes(self, result):
        n_eval = int(result.table["n_eval"].iloc[0])
        return [
            f"The trained hybrid is evaluated on {n_eval} test images (a fixed random subset when the test set is "
            "larger) with PennyLane's default.mixed: depolarising noise of probability p on every qubit after every "
            "layer, and exact expectation values or finite shots (one shot-sampled run per image). "
            "The classical twin has no quantum part, so its accuracy is a constant reference. "
            "Depolarising noise shrinks every ⟨Z⟩ towards 0, and the head was trained on noiseless values: "
            "accuracy (a fixed decision threshold) can fall while ROC-AUC (which only ranks images) holds."
        ]

    def figures(self, result):
        return {
            "hardware_noise_accuracy": _figure(result, "accuracy", "test accuracy"),
            "hardware_noise_auc": _figure(result, "auc", "test ROC-AUC"),
        }


def exact_matches_model(table) -> bool | None:
    """Does the noiseless default.mixed run reproduce the trained model's accuracy on every seed?"""
    exact = select(table, model=HYBRID, condition=EXACT).set_index("seed")["accuracy"]
    trained = select(table, simulator="training").set_index("seed")["accuracy"]
    seeds = exact.index.intersection(trained.index)
    if seeds.empty:
        return None
    return bool(((exact[seeds] - trained[seeds]).abs() < 1e-9).all())


def _figure(result, metric: str, label: str) -> Any:
    import plotly.graph_objects as go

    from hqcnn.plots import OKABE_ITO, apply_style

    summary, table = charts.records(result.summary), result.table
    noisy = table[table["simulator"] == "default.mixed"]
    categories = [f"{p:g}" for p in sorted(noisy["p"].unique())]
    dashes, symbols = ["solid", "dash", "dot", "dashdot"], ["circle", "square", "triangle-up", "x"]
    fig = go.Figure()
    for i, shots in enumerate(in_order(noisy["shots"])):
        pts = sorted((s for s in summary if s.get("shots") == shots and s["model"] == HYBRID), key=lambda s: s["p"])
        fig.add_trace(
            go.Scatter(
                x=[f"{s['p']:g}" for s in pts],
                y=[s[f"{metric}_mean"] for s in pts],
                mode="lines+markers",
                name=f"hybrid, {shots}",
                line={"color": OKABE_ITO[(2 * i) % 8], "dash": dashes[i % 4], "width": 3},
                marker={"symbol": symbols[i % 4], "size": 11},
                error_y=charts.error_bars(pts, metric),
                hovertemplate=f"p = %{{x}}<br>{label} %{{y:.3f}}<extra>hybrid, {shots}</extra>",
            )
        )
    twin = next((s for s in summary if s["model"] == TWIN and f"{metric}_mean" in s), None)
    if twin and categories:
        colour = charts.colour(TWIN)
        # A shape, not a filled trace: the grouped x offsets of the hybrid's series would bend a filled trace.
        fig.add_hrect(
            y0=twin[f"{metric}_ci_low"], y1=twin[f"{metric}_ci_high"], fillcolor=charts.rgba(colour, 0.18), line_width=0,
            layer="below", annotation_text="classical twin: 95% CI", annotation_position="top left",
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=categories,
                y=[twin[f"{metric}_mean"]] * len(categories),
                mode="lines",
                name="classical twin (no quantum part)",
                line={"color": colour, "dash": "longdash", "width": 2},
                hovertemplate="classical twin %{y:.3f}<extra></extra>",
            )
        )
    reference = mean_of(table, "majority_accuracy") if metric == "accuracy" else 0.5
    charts.reference_line(fig, reference, "majority-class baseline" if metric == "accuracy" else "chance (AUC 0.5)")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=categories)
    fig.update_layout(scattermode="group", scattergap=0.6)  # side by side, so error bars do not overlap
    # Grouped scatter autoranges like bars (from 0); set the range from the data and the reference line.
    lows = [s[f"{metric}_ci_low"] for s in summary if f"{metric}_ci_low" in s]
    bottom = min([*lows, reference if reference is not None else 1.0]) - 0.05
    fig.update_yaxes(range=[max(0.0, bottom), 1.02])
    n_eval = int(table["n_eval"].iloc[0])
    return apply_style(
        fig,
        f"{charts.upper_first(label)} of the trained hybrid on a noisy quantum simulator ({n_eval} test images, "
        f"{charts.ci_note(result)})",
        "depolarising probability p per qubit per layer",
        label,
    )
