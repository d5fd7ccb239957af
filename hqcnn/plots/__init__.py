"""Plotly figure builders for the HQCNN Explorer pages.

Every builder takes plain numpy arrays or the JSON-ready dicts of `hqcnn.metrics` /
`hqcnn.train` and RETURNS a `plotly.graph_objects.Figure`; nothing here draws, shows or imports
streamlit, so the same figures serve the app, notebooks and tests. The whole public API is
re-exported here, so callers write `from hqcnn import plots; plots.roc_curves(...)`.

Where things are:

- `style`: the house rules (listed in its docstring), `apply_style`, the `OKABE_ITO` palette and
  the layout helpers every builder shares (titles, legends, wrapped labels, placeholders) and
  `plain`, which makes names from users literal text in a figure;
- `images`: turning arrays into images and image subplots (used by `data` and `attribution`);
- `data`: `class_balance`, `sample_grid`, `before_after`;
- `training`: `training_curves`, `parameter_counts`;
- `evaluation`: `confusion_matrix`, `roc_curves`, `metrics_comparison`, `class_probabilities`;
- `decision`: `reliability_diagram`, `threshold_roc` (reading calibrated answers);
- `quantum`: `qubit_bars`, `qubit_distributions`, `bloch_spheres`;
- `attribution`: `saliency_overlay`, `evidence_overlay` (signed: for / against a class).
"""

from __future__ import annotations

from hqcnn.plots.attribution import evidence_overlay, saliency_overlay
from hqcnn.plots.data import before_after, class_balance, sample_grid
from hqcnn.plots.decision import reliability_diagram, threshold_roc
from hqcnn.plots.evaluation import class_probabilities, confusion_matrix, metrics_comparison, roc_curves
from hqcnn.plots.quantum import bloch_spheres, qubit_bars, qubit_distributions
from hqcnn.plots.style import OKABE_ITO, apply_style, plain
from hqcnn.plots.training import parameter_counts, training_curves

__all__ = [
    "OKABE_ITO",
    "apply_style",
    "before_after",
    "bloch_spheres",
    "class_balance",
    "class_probabilities",
    "confusion_matrix",
    "evidence_overlay",
    "metrics_comparison",
    "parameter_counts",
    "plain",
    "qubit_bars",
    "qubit_distributions",
    "reliability_diagram",
    "roc_curves",
    "sample_grid",
    "saliency_overlay",
    "threshold_roc",
    "training_curves",
]
