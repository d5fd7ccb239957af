"""The registry of experiments: for each name, what it asks, how it runs and how its rows are compared."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hqcnn.experiments.comparisons import (
    _compare_ablations,
    _compare_hardware,
    _compare_input_noise,
    _compare_paired,
    _compare_param_efficiency,
    _hybrid_vs_twin,
)
from hqcnn.experiments.runner import _Runner
from hqcnn.experiments.studies import _ablations, _hardware_noise, _input_noise, _low_data, _paired, _param_efficiency


@dataclass(frozen=True)
class ExperimentSpec:
    """An experiment: what it asks, how it runs, how its rows are compared."""

    name: str
    title: str
    question: str
    run: Callable[[_Runner], None]
    compare: Callable[[Sequence[dict[str, Any]]], list[dict[str, Any]]]
    claims: tuple[str, ...] = ()


EXPERIMENTS: dict[str, ExperimentSpec] = {
    spec.name: spec
    for spec in (
        ExperimentSpec(
            "low_data",
            "Low data",
            "Does the hybrid beat its classical twin when there are few training images?",
            _low_data,
            _hybrid_vs_twin,
            ("little_data",),
        ),
        ExperimentSpec(
            "input_noise",
            "Input noise",
            "Does the hybrid keep its accuracy better when the test images are noisy?",
            _input_noise,
            _compare_input_noise,
            ("noise",),
        ),
        ExperimentSpec(
            "hardware_noise",
            "Quantum hardware noise",
            "What would noisy quantum hardware (depolarising noise, finite shots) do to the trained hybrid?",
            _hardware_noise,
            _compare_hardware,
            ("hardware",),
        ),
        ExperimentSpec(
            "param_efficiency",
            "Parameter efficiency",
            "For a given number of trainable parameters, which model is more accurate?",
            _param_efficiency,
            _compare_param_efficiency,
            ("parameters",),
        ),
        ExperimentSpec(
            "ablations",
            "Ablations",
            "Which parts of the circuit matter: entanglement, depth (including no circuit at all), encoding?",
            _ablations,
            _compare_ablations,
            ("features",),
        ),
        ExperimentSpec(
            "paired",
            "Paired comparison",
            "Over many seeds, is the hybrid better than its twin: accuracy, AUC, generalisation, training cost?",
            _paired,
            _compare_paired,
            ("features", "generalisation", "cost"),
        ),
    )
}
