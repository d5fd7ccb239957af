"""A model card (Mitchell et al. 2019) for one trained model, as Markdown: what it is for, the data
it saw, its test results with 95% intervals beside the majority-class baseline and MedMNIST's
ResNet-18, its calibration and unusual-image check, what it cannot tell, and its exact settings.

Every name that came from a user or a file (dataset, class names) is escaped with
`hqcnn.markdown.md`, so the card is safe to render as Markdown.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from hqcnn import determinism
from hqcnn.checkpoint import CARD_FILE
from hqcnn.config import RunConfig
from hqcnn.datasets_base import ModelMeta
from hqcnn.markdown import md
from hqcnn.metrics import bootstrap_interval, operating_point
from hqcnn.posthoc import PostHoc
from hqcnn.references import SOURCE, resnet18

FILE_NAME = CARD_FILE
KIND_WORDS = {
    "hybrid": "hybrid quantum–classical CNN",
    "classical": "classical twin (the circuit replaced by a classical layer with as many parameters)",
    "backbone": "backbone-only CNN (no middle layer)",
}
OPERATING = (("sensitivity", "Sensitivity"), ("specificity", "Specificity"), ("ppv", "PPV"), ("npv", "NPV"))


def _number(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _interval(ci: Any) -> str:
    return "n/a" if not ci else f"{ci[0]:.3f}–{ci[1]:.3f}"


def operating_intervals(
    labels: np.ndarray, probs: np.ndarray, positive: int, threshold: float, seed: int = 0
) -> dict[str, tuple[float, float] | None]:
    """95% bootstrap intervals of sensitivity, specificity, PPV and NPV at one threshold."""
    return {
        key: bootstrap_interval(labels, probs, lambda y, p, k=key: operating_point(y, p, positive, threshold)[k], seed=seed)
        for key, _ in OPERATING
    }


def model_card(
    config: RunConfig,
    meta: ModelMeta,
    metrics: dict[str, Any],
    posthoc: PostHoc,
    dataset_title: str,
    test_probs: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
) -> str:
    """The card. `test_probs` (calibrated, (N, K)) and `test_labels` give the binary operating
    point and its intervals; without them that section says it was not computed."""
    model, labels = config.model, list(meta.label_names)
    test = metrics.get("test") or {}
    ci = metrics.get("test_ci") or {}
    reference = resnet18(meta.dataset)
    title = md(dataset_title)
    lines = [
        f"# Model card: {KIND_WORDS[model.kind].split(' (')[0]} for {title}",
        "",
        "**Intended use: research and teaching only.** This model is not a medical device. It must not be used to "
        "diagnose, treat or triage anyone. It was made with HQCNN Explorer to study hybrid quantum–classical "
        "networks on small medical images.",
        "",
        "## Model",
        f"- Kind: {KIND_WORDS[model.kind]}.",
    ]
    if model.kind != "backbone":
        readout = "⟨Z⟩ of each qubit and ⟨Z_i Z_j⟩ of each pair" if model.readout == "zz" else "⟨Z⟩ of each qubit"
        lines.append(
            f"- Circuit: {model.n_qubits} qubits, depth {model.depth}, {model.n_features} features angle-encoded "
            f"({model.encoding}), entangler {model.entangler}, read-out {readout}; simulated exactly (a statevector), "
            "not run on quantum hardware."
        )
    params = metrics.get("params") or {}
    if params:
        lines.append(f"- Trainable parameters: {params.get('total', 0):,} (circuit: {params.get('quantum', 0)}).")
    train = config.train
    lines += [
        f"- Training: Adam, learning rate {train.lr:g}, batch {train.batch_size}, {train.epochs} epochs, seed "
        f"{train.seed}; kept {md(metrics.get('kept', 'the best epoch'))}.",
        "",
        "## Data",
        f"- Dataset: {title} ({len(labels)} classes: {', '.join(md(n, limit=80) for n in labels)}).",
        f"- Images: {meta.image_size}×{meta.image_size} pixels, {meta.in_channels} channel(s), normalised with the "
        "training split's mean and standard deviation.",
        f"- Split: the dataset's own training / validation / test split; {test.get('n', 'n/a')} test images. "
        + (
            f"Training used at most {config.data.train_per_class} images per class. "
            if config.data.train_per_class
            else "Training used every training image. "
        )
        + "The calibration, decision threshold and unusual-image check were fitted on the validation split, "
        "never on the test split.",
        "",
        f"## Test results ({test.get('n', 'n/a')} test images, 95% bootstrap intervals)",
        "",
        "| metric | this model | 95% interval | majority-class baseline | MedMNIST ResNet-18 |",
        "|---|---:|---:|---:|---:|",
        f"| accuracy | {_number(test.get('accuracy'))} | {_interval(ci.get('accuracy'))} | "
        f"{_number(test.get('majority_accuracy'))} | {_number(reference.accuracy if reference else None)} |",
        f"| ROC-AUC | {_number(test.get('auc'))} | {_interval(ci.get('auc'))} | 0.500 | "
        f"{_number(reference.auc if reference else None)} |",
        "",
        f"ResNet-18: {SOURCE}; about 11 million parameters." if reference else "No published reference for this dataset.",
        "",
    ]
    lines += _operating_section(posthoc, labels, test_probs, test_labels, config.train.seed)
    lines += _calibration_section(metrics.get("calibration"), posthoc)
    lines += _ood_section(posthoc, title)
    lines += [
        "## Known limitations",
        f"- Small images: {meta.image_size}×{meta.image_size} pixels hold far less detail than a clinical image.",
        f"- Small test set: {test.get('n', 'n/a')} images, so the intervals above are wide; one training seed only "
        "(another seed can differ by a few points).",
        "- The quantum circuit is simulated exactly; real quantum hardware adds noise (see the device-noise study).",
        "- The labels and images come from one public research collection; performance on other hospitals, "
        "devices or populations is unknown.",
        "- Calibration and the unusual-image check were fitted on a small validation split; the check catches "
        "images unlike the training data, not every kind of difference.",
        "",
        "## Exact configuration",
        "",
        _computed_under(metrics.get("compute")),
        "",
        "```json",
        json.dumps({"config": config.to_dict(), "posthoc": _posthoc_summary(posthoc)}, indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def _computed_under(compute: Any) -> str:
    """How the weights were computed (threads, kernels), which a re-run needs as much as the configuration."""
    if not isinstance(compute, dict) or not compute:
        return "Trained before runs recorded their torch threads and CPU kernels."
    return "Trained with " + md(determinism.describe(compute), limit=600) + "."


def _operating_section(
    posthoc: PostHoc, labels: list[str], probs: np.ndarray | None, y: np.ndarray | None, seed: int
) -> list[str]:
    if posthoc.positive is None or posthoc.threshold is None:
        return []
    name = md(labels[posthoc.positive], limit=80)
    head = [
        f"## Decision threshold: called {name} when its calibrated probability is at least {posthoc.threshold:.2f}",
        "",
    ]
    if posthoc.youden is not None:
        head += [f"The Youden-optimal threshold on the validation split is {posthoc.youden:.2f}.", ""]
    if probs is None or y is None:
        return [*head, "The operating point was not computed for this card.", ""]
    point = operating_point(y, probs, posthoc.positive, posthoc.threshold)
    intervals = operating_intervals(y, probs, posthoc.positive, posthoc.threshold, seed)
    rows = [f"| {label} | {_number(point[key])} | {_interval(intervals[key])} |" for key, label in OPERATING]
    return [
        *head,
        "| at this threshold | value | 95% interval |",
        "|---|---:|---:|",
        *rows,
        "",
        f"Confusion on the test split: {point['tp']} true positives, {point['fp']} false positives, "
        f"{point['tn']} true negatives, {point['fn']} false negatives.",
        "",
    ]


def _calibration_section(calibration: dict[str, Any] | None, posthoc: PostHoc) -> list[str]:
    if not calibration:
        return ["## Calibration", "", "Not measured for this model: its probabilities are the raw softmax.", ""]
    before, after = calibration["as_trained"], calibration["scaled"]
    return [
        "## Calibration",
        "",
        f"Temperature scaling: the logits are divided by T = {posthoc.temperature:.2f} (fitted on the validation "
        "split) before the softmax; it never changes the most probable class.",
        "",
        "| test split | expected calibration error | 95% interval | Brier score |",
        "|---|---:|---:|---:|",
        f"| as trained | {_number(before['ece'])} | {_interval(before['ece_ci'])} | {_number(before['brier'])} |",
        f"| temperature-scaled | {_number(after['ece'])} | {_interval(after['ece_ci'])} | {_number(after['brier'])} |",
        "",
    ]


def _ood_section(posthoc: PostHoc, title: str) -> list[str]:
    if posthoc.ood is None:
        return ["## Unusual-image check", "", "None for this model.", ""]
    return [
        "## Unusual-image check",
        "",
        f"An image whose backbone features are farther from every class of {title} (Mahalanobis distance) than "
        f"{posthoc.ood.threshold:.1f} is flagged as unlike the training data. The threshold flags "
        f"{posthoc.ood.rate:.0%} of validation images by design (measured {posthoc.ood.val_rate:.1%}).",
        "",
    ]


def _posthoc_summary(posthoc: PostHoc) -> dict[str, Any]:
    """The post-training settings without the detector's matrices (those are in config.json)."""
    out = posthoc.to_dict()
    if posthoc.ood is not None:
        out["ood"] = {"threshold": posthoc.ood.threshold, "rate": posthoc.ood.rate, "val_rate": posthoc.ood.val_rate}
    return out
