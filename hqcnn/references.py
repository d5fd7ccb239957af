"""Published reference figures to show beside a user's results.

MedMNIST v2 benchmark (Yang et al., "MedMNIST v2", Scientific Data 10:41, 2023), test split,
28×28 inputs. Protocol: Adam lr 1e-3, batch 128, 100 epochs, model chosen on validation AUC.
ResNet-18 has about 11 million trainable parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = "MedMNIST v2 benchmark (Yang et al., Scientific Data 10:41, 2023), test split, 28×28"
RESNET18_PARAMS = 11_000_000  # approximate


@dataclass(frozen=True)
class Reference:
    """Test AUC and accuracy of one published model on one dataset."""

    auc: float
    accuracy: float


BENCHMARK: dict[str, dict[str, Reference]] = {
    "pneumoniamnist": {
        "ResNet-18 (28)": Reference(0.944, 0.854),
        "ResNet-50 (28)": Reference(0.948, 0.854),
        "auto-sklearn": Reference(0.942, 0.855),
        "AutoKeras": Reference(0.947, 0.878),
        "Google AutoML Vision": Reference(0.991, 0.946),
    },
    "breastmnist": {
        "ResNet-18 (28)": Reference(0.901, 0.863),
        "ResNet-50 (28)": Reference(0.857, 0.812),
        "auto-sklearn": Reference(0.836, 0.803),
        "AutoKeras": Reference(0.871, 0.831),
        "Google AutoML Vision": Reference(0.919, 0.861),
    },
    "retinamnist": {
        "ResNet-18 (28)": Reference(0.717, 0.524),
        "ResNet-50 (28)": Reference(0.726, 0.528),
        "auto-sklearn": Reference(0.690, 0.515),
        "AutoKeras": Reference(0.719, 0.503),
        "Google AutoML Vision": Reference(0.750, 0.531),
    },
    "bloodmnist": {
        "ResNet-18 (28)": Reference(0.998, 0.958),
        "ResNet-50 (28)": Reference(0.997, 0.956),
        "auto-sklearn": Reference(0.984, 0.877),
        "AutoKeras": Reference(0.998, 0.961),
        "Google AutoML Vision": Reference(0.998, 0.966),
    },
    "dermamnist": {
        "ResNet-18 (28)": Reference(0.917, 0.735),
        "ResNet-50 (28)": Reference(0.913, 0.735),
        "auto-sklearn": Reference(0.902, 0.719),
        "AutoKeras": Reference(0.915, 0.749),
        "Google AutoML Vision": Reference(0.914, 0.768),
    },
    "organamnist": {
        "ResNet-18 (28)": Reference(0.997, 0.934),
        "ResNet-50 (28)": Reference(0.997, 0.935),
        "auto-sklearn": Reference(0.963, 0.762),
        "AutoKeras": Reference(0.994, 0.905),
        "Google AutoML Vision": Reference(0.990, 0.886),
    },
    "pathmnist": {
        "ResNet-18 (28)": Reference(0.983, 0.907),
        "ResNet-50 (28)": Reference(0.990, 0.911),
        "auto-sklearn": Reference(0.934, 0.716),
        "AutoKeras": Reference(0.959, 0.834),
        "Google AutoML Vision": Reference(0.944, 0.728),
    },
    "octmnist": {
        "ResNet-18 (28)": Reference(0.943, 0.743),
        "ResNet-50 (28)": Reference(0.952, 0.762),
        "auto-sklearn": Reference(0.887, 0.601),
        "AutoKeras": Reference(0.955, 0.763),
        "Google AutoML Vision": Reference(0.963, 0.771),
    },
}


def resnet18(dataset: str) -> Reference | None:
    """The MedMNIST ResNet-18 (28) figures for `dataset`, or None where none are listed here."""
    return BENCHMARK.get(dataset, {}).get("ResNet-18 (28)")
