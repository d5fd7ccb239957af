"""Device noise: the trained hybrid's circuit on the calibrated noise of real IBM quantum computers.

Unlike the hardware-noise study's uniform depolarising noise, a fake backend's noise model has
each qubit's T1/T2, gate and read-out errors, and its coupling map makes the CNOT ring pay for
SWAPs (`hqcnn.device_noise`). The noiseless simulator with the same shots separates shot noise
from the device's own noise.
"""

from __future__ import annotations

from typing import Any

from hqcnn.errors import ConfigError
from hqcnn.experiments import charts
from hqcnn.experiments.registry import Study, register
from hqcnn.experiments.table import HYBRID, TWIN, compare, in_order, mean_of, select
from hqcnn.experiments.tasks import metrics_row

from ._common import seed_pairs
from .hardware_noise import AS_TRAINED, TWIN_REFERENCE, reference_rows
from .input_noise import noise_seed

DEVICES = ("fake_manila", "fake_nairobi", "fake_kolkata")


def condition_of(backend: str, shots: int) -> str:
    from hqcnn.device_noise import backend_label

    return f"{backend_label(backend)}, {shots} shots"


@register
class DeviceNoise(Study):
    name = "device_noise"
    order = 4
    title = "Device noise"
    question = (
        "What would a real quantum computer's noise (IBM devices' calibrations, offline) do to the trained hybrid?"
    )
    claims = ("hardware",)
    claim_figures = {"hardware": "device_noise_accuracy"}
    metrics = ("transpiled_depth", "two_qubit_gates", "cx_error", "readout_error")
    quick_seconds = 130
    _grid = {"train_per_class": None, "backends": DEVICES}
    grids = {
        "quick": {**_grid, "shots": (100, 1000), "images": 300},
        "full": {**_grid, "shots": (100, 1000, 10000), "images": 1000},
    }

    def unavailable(self, config):
        from hqcnn.device_noise import BACKENDS, SMALLEST_DEVICE, require_qiskit
        from hqcnn.errors import MissingPackageError

        try:
            require_qiskit()
        except MissingPackageError as err:
            return str(err)
        if config.model.n_qubits > SMALLEST_DEVICE:
            smallest = next(b.label for b in BACKENDS.values() if b.qubits == SMALLEST_DEVICE)
            return f"A {config.model.n_qubits}-qubit circuit does not fit on {smallest}; choose at most {SMALLEST_DEVICE} qubits."
        return None

    def tasks(self, config, preset):
        from hqcnn.device_noise import BACKENDS

        reason = self.unavailable(config)
        if reason:  # before any training: say so now, not after minutes of it
            raise ConfigError(reason)
        grid = self.grid(preset)
        unknown = [b for b in grid["backends"] if b not in BACKENDS]
        if unknown or any(int(s) < 1 for s in grid["shots"]):
            raise ConfigError(f"Devices must be among {', '.join(BACKENDS)} and shots at least 1.")
        options = {"backends": list(grid["backends"]), "shots": [int(s) for s in grid["shots"]], "images": grid["images"],
                   "subset_seed": config.base_seed}  # fmt: skip
        return seed_pairs(self, config, preset, options)

    def evaluate(self, task, outcome):
        from hqcnn.device_noise import IDEAL, device_predict_proba
        from hqcnn.metrics import classification_metrics

        x, y, rows = reference_rows(task, outcome)
        if task.model.kind != "hybrid":
            return rows
        model, common = outcome.result.model, {"n_eval": len(y)}
        for i, backend in enumerate([IDEAL, *task.options["backends"]]):
            for j, shots in enumerate(task.options["shots"]):
                probs, circuit = device_predict_proba(model, x, backend, shots, seed=noise_seed(task.seed, 11, i, j))
                metrics = classification_metrics(y.numpy(), probs, outcome.data.info.positive)
                rows.append(
                    metrics_row(
                        task, outcome, metrics, condition=condition_of(backend, shots),
                        simulator="qiskit-aer", backend=backend, shots=f"{shots} shots", x=shots,
                        transpiled_depth=circuit.depth, two_qubit_gates=circuit.two_qubit_gates,
                        cx_error=circuit.cx_error, readout_error=circuit.readout_error,
                        physical_qubits=" ".join(map(str, circuit.physical_qubits)), **common,
                    )
                )  # fmt: skip
        return rows

    def compare(self, table):
        from hqcnn.device_noise import IDEAL, backend_label

        out = []
        devices = select(table, simulator="qiskit-aer") if "simulator" in table else table[:0]
        if select(table, condition=AS_TRAINED).empty:
            return out
        for condition in in_order(devices["condition"]):
            row = select(devices, condition=condition).iloc[0]
            backend, shots = row["backend"], int(row["x"])
            where = "the noiseless simulator" if backend == IDEAL else backend_label(backend)
            out.append(
                compare(
                    table, {"model": HYBRID, "condition": condition}, {"model": HYBRID, "condition": AS_TRAINED},
                    f"hybrid on {condition} − hybrid exact", tag="device", condition=condition,
                    subject=f"On {where} with {shots} shots, the hybrid", other="the exact circuit",
                    extra={"backend": backend, "shots": shots},
                )
            )  # fmt: skip
        most = devices["x"].max() if len(devices) else None
        for backend in in_order(devices["backend"]) if len(devices) else ():
            if backend == IDEAL:
                continue
            condition = condition_of(backend, int(most))
            out.append(
                compare(
                    table, {"model": HYBRID, "condition": condition}, {"model": TWIN},
                    f"hybrid on {condition} − classical twin", tag="device_vs_twin", condition=condition,
                    subject=f"On {backend_label(backend)}, the hybrid", extra={"backend": backend, "shots": int(most)},
                )
            )  # fmt: skip
        return out

    def notes(self, result):
        table = result.table
        devices = select(table, simulator="qiskit-aer")
        if devices.empty:
            return []
        from hqcnn.device_noise import IDEAL, backend_label

        lines = []
        for backend in in_order(devices["backend"]):
            rows = select(devices, backend=backend)
            words = (
                f"{backend_label(backend)}: the transpiled circuit has depth {rows['transpiled_depth'].median():.0f} and "
                f"{rows['two_qubit_gates'].median():.0f} two-qubit gates"
            )
            if backend != IDEAL:
                words += (
                    f", median CNOT error {100 * rows['cx_error'].median():.2f}% and read-out error "
                    f"{100 * rows['readout_error'].median():.2f}% on the qubits used (physical qubits "
                    f"{rows['physical_qubits'].iloc[0]})"
                )
            lines.append(words)
        n_eval = int(table["n_eval"].iloc[0])
        return [
            f"The trained hybrid is evaluated on {n_eval} test images (a fixed random subset when the test set is larger). "
            "Its circuit, with the trained angles, is transpiled once per model for each device (Qiskit, optimisation "
            "level 1, fixed seed) and every image runs on Qiskit Aer with that device's noise model from qiskit-ibm-runtime's "
            "calibration snapshot. These are simulations of recorded calibrations, not runs on hardware; a device's "
            "errors drift from day to day. The noiseless simulator with the same shots shows what shot noise alone does. "
            "The classical twin has no quantum part, so its accuracy is a constant reference. The depolarising study "
            "(Quantum hardware noise) sweeps a uniform error instead; a CNOT error of about 1% there sits between its "
            "p = 0.001 and p = 0.01.",
            "; ".join(lines) + ".",
        ]

    def figures(self, result):
        return {
            "device_noise_accuracy": _figure(result, "accuracy", "test accuracy"),
            "device_noise_auc": _figure(result, "auc", "test ROC-AUC"),
        }


def _figure(result, metric: str, label: str) -> Any:
    import plotly.graph_objects as go

    from hqcnn.device_noise import IDEAL, backend_label
    from hqcnn.plots import OKABE_ITO, apply_style

    summary, table = charts.records(result.summary), result.table
    devices = select(table, simulator="qiskit-aer")
    categories = [f"{s:g}" for s in sorted(devices["x"].unique())]
    dashes, symbols = ["dot", "solid", "dash", "dashdot"], ["circle", "square", "triangle-up", "diamond"]
    fig = go.Figure()
    for i, backend in enumerate(in_order(devices["backend"])):
        pts = sorted((s for s in summary if s.get("backend") == backend and s["model"] == HYBRID), key=lambda s: s["x"])
        name = "hybrid, noiseless simulator" if backend == IDEAL else f"hybrid, {backend_label(backend)}"
        fig.add_trace(
            go.Scatter(
                x=[f"{s['x']:g}" for s in pts],
                y=[s[f"{metric}_mean"] for s in pts],
                mode="lines+markers",
                name=name,
                line={"color": OKABE_ITO[(2 * i + 2) % 8], "dash": dashes[i % 4], "width": 3},
                marker={"symbol": symbols[i % 4], "size": 11},
                error_y=charts.error_bars(pts, metric),
                hovertemplate=f"%{{x}} shots<br>{label} %{{y:.3f}}<extra>{name}</extra>",
            )
        )
    for model, text in ((HYBRID, "hybrid, exact (as trained)"), (TWIN, "classical twin")):
        ref = next(
            (s for s in summary if s["model"] == model and s["condition"] in (AS_TRAINED, TWIN_REFERENCE)),
            None,
        )
        if ref and categories:
            fig.add_trace(
                go.Scatter(
                    x=categories, y=[ref[f"{metric}_mean"]] * len(categories), mode="lines", name=text,
                    line={"color": charts.colour(model), "dash": "longdash" if model == TWIN else "solid", "width": 2},
                    hovertemplate=f"{text} %{{y:.3f}}<extra></extra>",
                )
            )  # fmt: skip
    reference = mean_of(table, "majority_accuracy") if metric == "accuracy" else 0.5
    charts.reference_line(fig, reference, "majority-class baseline" if metric == "accuracy" else "chance (AUC 0.5)")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=categories)
    fig.update_layout(scattermode="group", scattergap=0.6)
    lows = [s[f"{metric}_ci_low"] for s in summary if f"{metric}_ci_low" in s]
    bottom = min([*lows, reference if reference is not None else 1.0]) - 0.05
    fig.update_yaxes(range=[max(0.0, bottom), 1.02])
    n_eval = int(table["n_eval"].iloc[0])
    return apply_style(
        fig,
        f"{charts.upper_first(label)} of the trained hybrid on simulated IBM devices ({n_eval} test images, {charts.ci_note(result)})",
        "shots per image",
        label,
    )
