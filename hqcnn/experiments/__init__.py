"""Experiments that measure what the paper's Table 2 only expects of the hybrid model.

Each experiment trains the hybrid model AND its parameter-matched classical twin on the same data
with the same seeds, so that every seed gives a paired comparison:

=================  ==========================================================================
low_data           test ACC/AUC against training images per class (10, 25, ..., all)
input_noise        accuracy as Gaussian or salt-and-pepper noise is added to the test images
hardware_noise     the trained hybrid on a noisy quantum simulator (depolarising p, finite shots)
param_efficiency   accuracy against trainable parameters (circuit sizes; backbone widths)
ablations          circuit variants: entangler, depth (0 = no circuit), encoding
paired             the default hybrid against its twin over several seeds: accuracy, AUC,
                   train–test gap, training time
=================  ==========================================================================

An experiment is `run_experiment(name, ExperimentConfig, Preset, callback, stop)`; it returns an
`ExperimentResult` whose `rows` are a tidy table (one row per model × condition × seed). The
summary (means with 95% confidence intervals) and the paired comparisons (t-test, Wilcoxon,
Cohen's d_z, a verdict in words) are computed from the rows, so a result loaded from disk is
summarised exactly as a fresh one. `save(folder)` writes results.csv, summary.csv and
results.json (rows, config, preset, seeds, library versions, timestamps, the command that
reproduces it). Seeds fix everything: the same config and preset give the same rows (timings
aside). `table2(results)` puts the paper's expectations beside the measured verdicts.

Progress goes to `callback(done, total, message)`; a `threading.Event` stops an experiment between
(and, through `hqcnn.train.run`, inside) training runs. A run cut short is not recorded.
Nothing here imports streamlit; plotly is imported only by the figure builders.

Where things are (each module imports only those above it, so there are no import cycles):

==============  ===============================================================================
presets         `Preset`, `PRESETS`, `ExperimentConfig`, the ablation variants (`ABLATIONS`)
rows            the rows' vocabulary (`HYBRID`, `TWIN`, `METRICS`, ...), `summarize`, `strip_timing`
comparisons     paired comparisons: `compare`, `robustness_comparisons`, one per experiment
runner          the runner the studies share: training, progress, `Stopped`, `twin_of`
studies         the six studies, and `noisy_predict_proba` for the noisy quantum simulator
registry        `EXPERIMENTS`: name → question, study, comparisons, claims it tests
results         `ExperimentResult`, save/load, CSV/JSON, run folders, `summary_table`
run             `run_experiment`
claims          the paper's Table 2: `CLAIMS`, `claim_status`, `table2`
chart_parts     colours, confidence bands and the paired-difference figure shared by the charts
charts          the plotly figures of each experiment: `figures`
==============  ===============================================================================

Everything public is re-exported here: import it from `hqcnn.experiments`. Names starting with
an underscore belong to their module (a test that patches one patches it there).
"""

from __future__ import annotations

from hqcnn.experiments.charts import figures
from hqcnn.experiments.claims import CLAIMS, NOT_MEASURED, Claim, claim_status, table2
from hqcnn.experiments.comparisons import compare, robustness_comparisons
from hqcnn.experiments.presets import ABLATIONS, PRESETS, Ablation, ExperimentConfig, Preset
from hqcnn.experiments.registry import EXPERIMENTS, ExperimentSpec
from hqcnn.experiments.results import (
    FORMAT,
    FORMAT_VERSION,
    PUBLISHED_ENV,
    ROOT,
    RUNS_ENV,
    ExperimentResult,
    default_folder,
    library_versions,
    list_runs,
    published_dir,
    rows_to_csv,
    runs_dir,
    safe_name,
    summary_table,
)
from hqcnn.experiments.rows import (
    BACKBONE,
    HYBRID,
    METRICS,
    MODEL_NAMES,
    NOISE_LABELS,
    TIMING_KEYS,
    TWIN,
    strip_timing,
    summarize,
)
from hqcnn.experiments.run import run_experiment
from hqcnn.experiments.runner import Progress, Stopped, twin_of
from hqcnn.experiments.studies import hardware_subset, noisy_predict_proba

__all__ = [
    "ABLATIONS",
    "BACKBONE",
    "CLAIMS",
    "EXPERIMENTS",
    "FORMAT",
    "FORMAT_VERSION",
    "HYBRID",
    "METRICS",
    "MODEL_NAMES",
    "NOISE_LABELS",
    "NOT_MEASURED",
    "PRESETS",
    "ROOT",
    "PUBLISHED_ENV",
    "RUNS_ENV",
    "TIMING_KEYS",
    "TWIN",
    "Ablation",
    "Claim",
    "ExperimentConfig",
    "ExperimentResult",
    "ExperimentSpec",
    "Preset",
    "Progress",
    "Stopped",
    "claim_status",
    "compare",
    "default_folder",
    "figures",
    "hardware_subset",
    "library_versions",
    "list_runs",
    "noisy_predict_proba",
    "robustness_comparisons",
    "rows_to_csv",
    "run_experiment",
    "published_dir",
    "runs_dir",
    "safe_name",
    "strip_timing",
    "summarize",
    "summary_table",
    "table2",
    "twin_of",
]
