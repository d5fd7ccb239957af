"""Studies that measure what the paper's Table 2 only expects of the hybrid model.

Each study trains the hybrid AND its parameter-matched classical twin on the same data with the
same seeds, so that every seed gives a paired comparison:

=================  ==========================================================================
low_data           test ACC/AUC against training images per class (10, 25, ..., all)
input_noise        accuracy as Gaussian or salt-and-pepper noise is added to the test images
hardware_noise     the trained hybrid on a noisy quantum simulator (depolarising p, finite shots)
param_efficiency   accuracy against trainable parameters (circuit sizes; backbone widths)
ablations          circuit variants: entangler, depth (no circuit at all), encoding
paired             the default hybrid against its twin over many seeds: accuracy, AUC,
                   train–test gap, training time
calibration        ECE, Brier score, reliability diagram; as trained and temperature-scaled
representation     a linear probe and Fisher's criterion on the head's inputs (⟨Z⟩ vs the twin layer)
interpretability   deletion/insertion faithfulness of the attribution maps; maps after re-randomising
                   the middle layer alone
=================  ==========================================================================

`run_study(name, ExperimentConfig, Preset, callback, stop, executor="local" | "ray", ...)`
returns an `ExperimentResult` whose `table` is tidy (pandas: one row per study × dataset ×
condition × model × seed). Its summary (means with 95% confidence intervals) and paired
comparisons (`Comparison`: t-test, Wilcoxon, Cohen's d_z, a verdict in words) are computed from
the table, so a result loaded from disk reads exactly as a fresh one. Seeds fix everything: the
same configuration and preset give the same table (timings aside) on either executor, with any
number of workers. `table2(results)` puts the paper's expectations beside the measured verdicts.

A results set is every study on several datasets, made by one command
(`python -m hqcnn experiment all --datasets A B C --out SET`) with its provenance; `load_set`
reads one, `table2_by_dataset` and `plain_summary` read Table 2 across its datasets, and the app
ships one (`shipped_dir()`).

Where things are (each module imports only those above it):

==============  ===============================================================================
presets         `Preset`, `PRESETS`, `ExperimentConfig`
registry        `Study`, `Task`, `@register`, `STUDIES`
table           the table's vocabulary, `summarize`, `Comparison`, `compare`
tasks           the worker's side: `run_task` trains one task's model and returns its rows
results         `ExperimentResult`, save/load, run folders
charts          colours, confidence bands and the paired-difference figure the studies share
studies/        one module per study: its tasks, rows, comparisons, notes and figures
executors       `local` (in-process) and `ray` (an embedded local cluster, or one to join)
run             `run_study`, with run folders that an interrupted run resumes from
claims          the paper's Table 2: `CLAIMS`, `status`, `judge`, `table2`
provenance      a results set's provenance.json: code, versions, machine, times, skipped studies
results_set     a results set on disk: `load_set`, `shipped_dir`, its one-line label
set_table       Table 2 with a column per dataset, and `plain_summary`
==============  ===============================================================================
"""

from __future__ import annotations

from hqcnn.experiments import studies  # noqa: F401  (registers every study)
from hqcnn.experiments.claims import CLAIMS, NOT_MEASURED, Finding, Judgement, judge, status, table2
from hqcnn.experiments.executors import EXECUTORS
from hqcnn.experiments.presets import PRESETS, ExperimentConfig, Preset
from hqcnn.experiments.registry import STUDIES, Study, Task, register
from hqcnn.experiments.results import (
    FORMAT,
    FORMAT_VERSION,
    PUBLISHED_ENV,
    RUNS_ENV,
    ExperimentResult,
    default_folder,
    list_runs,
    published_dir,
    records_to_csv,
    runs_dir,
    safe_name,
    summary_table,
)
from hqcnn.experiments.results_set import SHIPPED_ENV, ResultsSet, load_set, shipped_dir
from hqcnn.experiments.run import RunLog, run_study
from hqcnn.experiments.set_table import ClaimRow, plain_summary, table2_by_dataset
from hqcnn.experiments.table import HYBRID, TWIN, Comparison, summarize, without_timing


def figures(result: ExperimentResult) -> dict:
    """The study's plotly figures, by name (an empty dict when it has no rows)."""
    return result.study.figures(result) if len(result.table) else {}


__all__ = [
    "CLAIMS",
    "EXECUTORS",
    "FORMAT",
    "FORMAT_VERSION",
    "HYBRID",
    "NOT_MEASURED",
    "PRESETS",
    "PUBLISHED_ENV",
    "RUNS_ENV",
    "SHIPPED_ENV",
    "STUDIES",
    "TWIN",
    "ClaimRow",
    "Comparison",
    "ExperimentConfig",
    "ExperimentResult",
    "Finding",
    "Judgement",
    "Preset",
    "ResultsSet",
    "RunLog",
    "Study",
    "Task",
    "default_folder",
    "figures",
    "judge",
    "list_runs",
    "load_set",
    "plain_summary",
    "published_dir",
    "records_to_csv",
    "register",
    "run_study",
    "runs_dir",
    "safe_name",
    "shipped_dir",
    "status",
    "summarize",
    "summary_table",
    "table2",
    "table2_by_dataset",
    "without_timing",
]
