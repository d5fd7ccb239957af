"""Input noise: accuracy of the hybrid and its twin as Gaussian or salt-and-pepper noise is added
to the test images (both models are trained on clean images and see the same noisy copies)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hqcnn.experiments import charts
from hqcnn.experiments.registry import Study, register
from hqcnn.experiments.table import HYBRID, NOISE_LABELS, TWIN, Comparison, compare, hybrid_vs_twin, mean_of, summarize
from hqcnn.experiments.tasks import metrics_row

from ._common import seed_pairs

_X_TITLES = {
    "gaussian": "noise standard deviation σ (pixel values 0–1)",
    "salt_pepper": "fraction of pixels set to black or white",
}


def noisy_inputs(data: Any, noise: str, level: float, seed: int) -> Any:
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


def noise_seed(seed: int, *parts: int) -> int:
    """A seed for one noisy copy, derived from the run's seed: the same for both models."""
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0])


@register
class InputNoise(Study):
    name = "input_noise"
    order = 2
    title = "Input noise"
    question = "Does the hybrid keep its accuracy better when the test images are noisy?"
    claims = ("noise",)
    claim_figures = {"noise": "input_noise_difference"}
    quick_seconds = 27
    grids = {
        "quick": {
            "train_per_class": None,
            "gaussian": (0.0, 0.025, 0.05, 0.1, 0.2, 0.5),
            "salt_pepper": (0.0, 0.01, 0.02, 0.05, 0.1, 0.2),
        },
        "full": {
            "train_per_class": None,
            "gaussian": (0.0, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5),
            "salt_pepper": (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
        },
    }

    def tasks(self, config, preset):
        grid = self.grid(preset)
        levels = [("gaussian", s) for s in grid["gaussian"]] + [("salt_pepper", a) for a in grid["salt_pepper"]]
        return seed_pairs(self, config, preset, {"levels": levels})

    def evaluate(self, task, outcome):
        from hqcnn.train import evaluate

        rows = []
        for index, (noise, level) in enumerate(task.options["levels"]):
            x = noisy_inputs(outcome.data, noise, level, noise_seed(task.seed, 1 + (noise == "salt_pepper"), index))
            metrics = evaluate(outcome.result.model, x, outcome.data.y_test, outcome.data.info.positive)
            condition = f"{NOISE_LABELS[noise]} {level:g}"
            rows.append(metrics_row(task, outcome, metrics, condition=condition, noise=noise, level=level, x=level))
        return rows

    def compare(self, table):
        return [*hybrid_vs_twin(table, ("accuracy",)), *robustness_comparisons(table)]

    def notes(self, result):
        return [
            "Both models are trained on clean images and tested on noisy copies of the test images "
            "(noise added in pixel units 0..1, clipped, then normalised as in training). "
            "Both models see the same noisy images."
        ]

    def figures(self, result) -> dict[str, Any]:
        import plotly.graph_objects as go

        from hqcnn.plots import apply_style

        figs = {}
        for noise in ("gaussian", "salt_pepper"):
            rows = result.table[result.table["noise"] == noise]
            if rows.empty:
                continue
            fig = go.Figure()
            charts.band_lines(fig, charts.records(summarize(rows)), "accuracy", (HYBRID, TWIN), "test accuracy")
            charts.reference_line(fig, mean_of(result.table, "majority_accuracy"), "majority-class baseline")
            title = "Gaussian noise" if noise == "gaussian" else "salt-and-pepper noise"
            apply_style(fig, f"Test accuracy under {title} ({charts.ci_note(result)})", _X_TITLES[noise], "test accuracy")
            figs[f"input_noise_{noise}"] = fig
        per_level = [c for c in result.comparisons if c.tag == "twin"]
        if per_level:
            figs["input_noise_difference"] = charts.difference_figure(
                result, "Hybrid − classical twin accuracy at each noise level", "accuracy", per_level
            )
        return figs


def robustness_comparisons(table: pd.DataFrame) -> list[Comparison]:
    """Per noise type: accuracy averaged over the noisy levels (level > 0), hybrid − twin, paired by seed.

    The mean over all noisy levels is the area under the accuracy–noise curve (per level, not per
    σ unit). The drop from clean to the strongest level is not used: once both models predict a
    single class it only repeats the difference in clean accuracy.
    """
    out = []
    for noise in ("gaussian", "salt_pepper") if "noise" in table else ():
        noisy = table[(table["noise"] == noise) & (table["level"] > 0)]
        if noisy.empty:
            continue
        levels = sorted(noisy["level"].unique().tolist())
        # One row per model and seed measured at every noisy level: its mean accuracy over them.
        per_seed = noisy.groupby(["model", "seed"])["accuracy"].agg(["mean", "count"]).reset_index()
        per_seed = per_seed[per_seed["count"] == len(levels)].rename(columns={"mean": "noisy_accuracy"})
        worst = levels[-1]
        floor = mean_of(table, "majority_accuracy", noise=noise, level=worst)
        collapsed = [
            m
            for m in (HYBRID, TWIN)
            if floor is not None and (mean_of(table, model=m, noise=noise, level=worst) or 0) <= floor + 0.005
        ]
        out.append(
            compare(
                per_seed,
                {"model": HYBRID},
                {"model": TWIN},
                f"mean accuracy over {NOISE_LABELS[noise]} {', '.join(f'{v:g}' for v in levels)}: hybrid − classical twin",
                "noisy_accuracy",
                tag="robustness",
                condition=f"{NOISE_LABELS[noise]} > 0",
                extra={"noise": noise, "levels": levels, "collapsed_at_worst": collapsed},
            )
        )
    return out
