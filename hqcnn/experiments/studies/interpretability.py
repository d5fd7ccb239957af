"""Interpretability: are the Explain page's maps faithful to the model, and do they depend on its middle layer?

Faithfulness (Petsiuk et al. 2018): delete the pixels in the order of the map, most important
first (set them to the training mean, 0 after normalisation), and follow the predicted class's
probability; the area under that curve is small when the map found what the model uses.
Insertion starts from the mean image and adds pixels; its area is large for a faithful map.
Both are compared with a random order. Score = insertion − deletion area (higher: more faithful).

Sanity check (Adebayo et al. 2018), only possible here: re-randomise the middle layer alone (the
circuit's angles for the hybrid, the twin layer's weights for the twin) and take the rank
correlation of each map before and after. A map that barely changes does not depend on that layer.

Both measures are `hqcnn.faithfulness`'s, which the Explain page shows for a single image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hqcnn.experiments import charts
from hqcnn.experiments.registry import Study, register
from hqcnn.experiments.table import HYBRID, TWIN, compare, in_order
from hqcnn.experiments.tasks import base_row
from hqcnn.faithfulness import STEPS, curve_areas, faithfulness, randomised_middle, rank_correlation

from ._common import seed_pairs

# The measures themselves live in hqcnn.faithfulness, shared with the Explain page.
__all__ = ["STEPS", "Interpretability", "curve_areas", "faithfulness", "randomised_middle", "rank_correlation"]


@register
class Interpretability(Study):
    name = "interpretability"
    order = 10
    title = "Interpretability"
    question = "Are the hybrid's attribution maps more faithful than its twin's, and do they depend on the circuit?"
    claims = ("interpretability",)
    claim_figures = {"interpretability": "interpretability_difference"}
    metrics = ("faithfulness", "random_faithfulness", "sanity_rank_correlation", "deletion_auc", "insertion_auc")
    bounded = ("deletion_auc", "insertion_auc")
    quick_seconds = 100
    grids = {
        "quick": {"train_per_class": None, "images": 40, "methods": ("saliency", "integrated_gradients", "gradcam")},
        "full": {"train_per_class": None, "images": 200, "methods": ("saliency", "integrated_gradients", "gradcam", "occlusion")},
    }  # fmt: skip

    def tasks(self, config, preset):
        grid = self.grid(preset)
        options = {"images": grid["images"], "methods": tuple(grid["methods"])}
        return seed_pairs(self, config, preset, options)

    def evaluate(self, task, outcome):
        import torch

        from hqcnn.explain import ATTRIBUTIONS, attribute

        data, model = outcome.data, outcome.result.model.eval()
        rng = np.random.default_rng(task.seed)
        chosen = np.sort(rng.permutation(len(data.y_test))[: task.options["images"]])
        random_model = randomised_middle(model, task.seed)
        rows = []
        for method in task.options["methods"]:
            scores: dict[str, list[float]] = {k: [] for k in ("deletion", "insertion", "random_deletion", "random_insertion", "rank")}
            for i in chosen:
                x = data.x_test[i]
                with torch.no_grad():
                    target = int(model(x.unsqueeze(0)).argmax())
                saliency = attribute(model, x, target, method)
                # The random orders come from the task's one generator, image after image.
                f = faithfulness(model, x, saliency, target, rng)
                # A constant map (e.g. Grad-CAM of nothing) has no rank: nan, skipped in the mean.
                rank = rank_correlation(saliency, attribute(random_model, x, target, method))
                values = (f.deletion, f.insertion, f.random_deletion, f.random_insertion, rank)
                for key, value in zip(scores, values, strict=True):
                    scores[key].append(float(value))
            mean = {k: float(np.nanmean(v)) if not np.isnan(v).all() else float("nan") for k, v in scores.items()}
            row = base_row(task, outcome, condition=ATTRIBUTIONS[method].label, method=method, n_explained=len(chosen))
            row |= {f"{k}_auc": mean[k] for k in ("deletion", "insertion", "random_deletion", "random_insertion")}
            row["faithfulness"] = mean["insertion"] - mean["deletion"]
            row["random_faithfulness"] = mean["random_insertion"] - mean["random_deletion"]
            row["sanity_rank_correlation"] = mean["rank"]
            rows.append(row)
        return rows

    def compare(self, table):
        out = []
        for c in in_order(table["condition"]):
            a, b = {"model": HYBRID, "condition": c}, {"model": TWIN, "condition": c}
            out.append(compare(table, a, b, f"faithfulness, {c}: hybrid − classical twin", "faithfulness",
                               tag="faithfulness", condition=c, subject=f"The hybrid's {c} maps", other="the twin's",
                               verb="were", higher="more faithful", lower="less faithful"))
            out.append(compare(table, a, b, f"rank correlation after randomising the middle layer, {c}: hybrid − twin",
                               "sanity_rank_correlation", tag="sanity", condition=c, subject=f"The hybrid's {c} maps",
                               other="the twin's", verb="stayed", higher="more alike", lower="less alike"))
        return out  # fmt: skip

    def notes(self, result):
        n = int(result.table["n_explained"].iloc[0])
        return [
            f"{n} test images per training (seeded); the class explained is the predicted one. Faithfulness = area "
            f"under the insertion curve − area under the deletion curve ({STEPS} steps, in points of probability); a "
            "random pixel order scores about 0. Rank correlation: Spearman's ρ between each map and the map of the "
            "same model with its middle layer re-randomised; near 1 means the map hardly depends on that layer."
        ]

    def figures(self, result) -> dict[str, Any]:
        import plotly.graph_objects as go

        from hqcnn.plots import apply_style

        summary = charts.records(result.summary)
        figs = {}
        for metric, title, y_title in (
            ("faithfulness", "Faithfulness of each attribution method (insertion − deletion area)", "faithfulness score"),
            ("sanity_rank_correlation", "How alike each map stays when the middle layer is re-randomised",
             "Spearman ρ, before vs after"),
        ):  # fmt: skip
            fig = go.Figure()
            charts.grouped_bars(fig, summary, metric, (HYBRID, TWIN), y_title)
            if metric == "faithfulness":
                random = [s.get("random_faithfulness_mean") for s in summary]
                charts.reference_line(fig, float(np.nanmean([r for r in random if r is not None] or [0.0])), "random order")
            apply_style(fig, f"{title} ({charts.ci_note(result)})", "attribution method", y_title)
            figs[f"interpretability_{metric}"] = fig
        figs["interpretability_difference"] = charts.difference_figure(
            result, "Hybrid − classical twin faithfulness, per method", "faithfulness"
        )
        return figs
