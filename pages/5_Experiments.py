"""Experiments: measure what the paper's Table 2 expects of the hybrid, against its classical twin."""

from __future__ import annotations

import time

import streamlit as st

from ui import state
from ui.common import ensure_dataset, user_errors
from ui.sidebar import render as render_sidebar

st.set_page_config(page_title="Experiments · HQCNN Explorer", page_icon="🧪", layout="wide")
st.title("Experiments")
values = render_sidebar()

from hqcnn import experiments as ex  # noqa: E402
from hqcnn.markdown import md  # noqa: E402
from ui.experiment_job import ExperimentJob  # noqa: E402
from ui.experiment_view import render_result  # noqa: E402
from ui.jobs import SCHEDULER, current_owner  # noqa: E402
from ui.shipped_view import SHIPPED, choose_view, render_shipped  # noqa: E402
from ui.sidebar import require_session_dataset  # noqa: E402
from ui.uploads import file_uploader  # noqa: E402

RESULTS_KEY = "experiment_results"  # {experiment name: ExperimentResult} shown on this page
JOB_KEY = "experiment_job"
EXTRA_PRESETS_KEY = "experiment_extra_presets"  # {name: Preset}, e.g. a tiny one in the tests
MESSAGE_KEY = "experiment_message"

def _presets() -> dict[str, ex.Preset]:
    return {**ex.PRESETS, **st.session_state.get(EXTRA_PRESETS_KEY, {})}


def _results() -> dict[str, ex.ExperimentResult]:
    return st.session_state.setdefault(RESULTS_KEY, {})


def _show(result: ex.ExperimentResult) -> None:
    """Show `result` in this session (results from files only on datasets this session may use)."""
    require_session_dataset(result.dataset, "This result")
    _results()[result.name] = result


st.markdown(
    "The paper's Table 2 lists what it **expects** of the hybrid model compared with a classical CNN. "
    "Here those expectations are **measured**: every experiment trains the hybrid and its **classical twin** "
    "(the same network with the circuit replaced by a classical layer with as many parameters) on the same "
    "images with the same seeds, repeats that over several seeds, and tests the paired differences. "
    "Whatever the numbers say is shown; *no significant difference* is a valid result."
)

# The page opens on the results set shipped with the app, when there is one; the radio switches
# to this session's runs (run, load, upload), which is all there is without one.
if choose_view() == SHIPPED and render_shipped():
    st.stop()

# ---------------------------------------------------------------------------------------------
# Run an experiment
# ---------------------------------------------------------------------------------------------

st.subheader("Run an experiment")
job: ExperimentJob | None = st.session_state.get(JOB_KEY)
running = job is not None and job.running
presets = _presets()

c1, c2 = st.columns([2, 1])
name = c1.selectbox(
    "Experiment",
    list(ex.STUDIES),
    format_func=lambda n: ex.STUDIES[n].title,
    key="exp_name",
    disabled=running,
)
preset_name = c2.radio(
    "Preset", list(presets), horizontal=True, key="exp_preset", disabled=running, help="quick: a classroom demo"
)
preset = presets[preset_name]
study = ex.STUDIES[name]
st.caption(f"**Question:** {study.question}")
default_seeds = study.default_seeds(preset)
c3, c4, c5 = st.columns(3)
seeds = c3.number_input(
    "Seeds",
    min_value=1,
    max_value=20,
    value=default_seeds,
    step=1,
    key=f"exp_seeds_{name}_{preset_name}",
    disabled=running,
    help="Each condition is trained once per seed, for both models. More seeds: narrower confidence intervals.",
)
base_seed = c4.number_input(
    "First seed", min_value=0, max_value=10_000, value=0, step=1, key="exp_base_seed", disabled=running
)
model = state.run_config().model
if name == "hardware_noise" and model.n_qubits > 6:
    c5.warning("Noisy simulation of more than 6 qubits is slow (a density matrix of 4ⁿ numbers per image).")
if preset_name == "quick" and study.quick_seconds:
    estimate = (
        f"at most {study.quick_seconds} s in our runs with the default {default_seeds} seeds and 4 qubits on a "
        "shared 2-core CPU; more seeds or qubits take longer"
    )
elif preset_name == "full":
    estimate = "tens of minutes on a laptop CPU; the command line suits it better"
else:
    estimate = "depends on the preset"
c5.caption(f"**{preset.name}** preset: {preset.description or 'custom'}. Time: {estimate}.")
st.caption(
    f"Runs on **{values['dataset']}** with the hybrid set in the sidebar ({model.n_qubits} qubits, depth "
    f"{model.depth}, {model.n_features} features, {model.entangler} entangler, {model.encoding} encoding) and "
    "its classical twin. Results stay in this browser session (download them below to keep them). "
    "Same settings and seeds, same numbers."
)

available = ensure_dataset(values["dataset"])
cannot_run = study.unavailable(ex.ExperimentConfig(dataset=values["dataset"], model=model))
if cannot_run:  # said before Run, not after the trainings
    st.warning(cannot_run)
b1, b2, _ = st.columns([1, 1, 4])
if b1.button("Run", type="primary", disabled=running or not available or bool(cannot_run), key="exp_run"):
    with user_errors():
        config = ex.ExperimentConfig(
            dataset=values["dataset"],
            seeds=int(seeds),
            base_seed=int(base_seed),
            model=model,
        )
        job = SCHEDULER.submit(ExperimentJob(name, config, preset, owner=current_owner()))
    st.session_state[JOB_KEY] = job
    running = True
if b2.button("Stop", disabled=not running, key="exp_stop", help="Stops after the current batch; keeps finished runs."):
    job.stop()


def _finish(job: ExperimentJob) -> None:
    """Move a finished job's result into the session (once)."""
    if job.result is not None:
        _show(job.result)
        state_text = "stopped early: partial results" if job.result.stopped else "finished"
        st.session_state[MESSAGE_KEY] = (
            f"{job.result.title}: {state_text} in {job.result.seconds:.0f} s, {len(job.result.table)} result rows. "
            "They stay in this session: download them below to keep them."
        )
    if job.error:
        st.session_state["experiment_error"] = job.error
    st.session_state[JOB_KEY] = None


@st.fragment(run_every=0.5 if running else None)
def live_progress() -> None:
    """The progress bar, redrawn every half second while an experiment runs."""
    job: ExperimentJob | None = st.session_state.get(JOB_KEY)
    if job is None:
        return
    done, total, message = job.snapshot()
    if job.waiting:
        st.info(job.waiting_message())
    elapsed = time.time() - (job.started_at or time.time())
    st.progress(min(done / total, 1.0) if total else 0.0, text=f"{message} · {elapsed:.0f} s")
    if not job.running:
        _finish(job)
        st.rerun()


live_progress()

if message := st.session_state.pop(MESSAGE_KEY, None):
    st.success(message)
if error := st.session_state.pop("experiment_error", None):
    st.error(md(error, limit=1000), icon="🚫")

# ---------------------------------------------------------------------------------------------
# Load saved results
# ---------------------------------------------------------------------------------------------

with st.expander("Load saved results", expanded=not _results()):
    # Only results published with the app are listed: results other users ran on this server
    # belong to their sessions (and may name their own datasets).
    saved = ex.list_runs(ex.published_dir())
    if saved:
        choice = st.selectbox("Published results", saved, format_func=lambda p: p.name, key="exp_saved")
        l1, l2 = st.columns(2)
        if l1.button("Load this result", key="exp_load"):
            with user_errors(stop=False):
                _show(ex.ExperimentResult.load(choice))
        if l2.button("Load the newest result of every experiment", key="exp_load_latest"):
            newest: dict[str, ex.ExperimentResult] = {}
            for folder in saved:  # newest first
                with user_errors(stop=False):
                    result = ex.ExperimentResult.load(folder)
                    newest.setdefault(result.name, result)
            for result in newest.values():
                with user_errors(stop=False):
                    _show(result)
    else:
        st.caption("No results are published with this app yet. Run an experiment above or upload a results.json.")
    uploaded = file_uploader("…or upload a results.json", type=["json"], key="exp_upload", max_mb=5)
    if uploaded is not None and st.session_state.get("_exp_uploaded") != uploaded.file_id:
        st.session_state["_exp_uploaded"] = uploaded.file_id  # handled once, even if it fails
        with user_errors(stop=False):
            _show(ex.ExperimentResult.from_json_text(uploaded.getvalue(), "The uploaded file"))

# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------

results = _results()
ordered = [results[n] for n in ex.STUDIES if n in results]


st.subheader("Results")
if not ordered:
    st.info("No results yet: run an experiment above, or load saved results.")
else:
    tabs = st.tabs([r.title for r in ordered])
    for tab, result in zip(tabs, ordered, strict=True):
        with tab, user_errors(stop=False):
            render_result(result)

# ---------------------------------------------------------------------------------------------
# The paper's Table 2 beside the measurements
# ---------------------------------------------------------------------------------------------

st.subheader("The paper's Table 2 beside the measurements")
table = ex.table2(results)
# st.table renders Markdown; the condition labels quoted here come from results files (checked on load,
# and escaped here as well).
st.table(
    [
        {
            "The paper expects (Table 2)": md(row["claim"]),
            "Figure that tests it": md(row["figure"]),
            "Verdict": md(row["status"]),
            "p: uncorrected → Holm": md(row["p values"], limit=1000),
            "Measured": md(row["verdict"], limit=2000),
            "Measured with": md(row["source"] or "—", limit=1000),
        }
        for row in table
    ]
)
st.caption(
    "Verdicts use a paired t-test per comparison at α = 0.05 after a Holm–Bonferroni correction over every "
    "comparison that decides a row of this table (the p column shows each p value before and after it); the "
    "sentences under 'Measured', and the tabs above, quote uncorrected p values. With 3–5 seeds "
    "only large differences can be detected, so 'not significant' means 'not shown', not 'no difference'. "
    "Quick-preset results are a demonstration; the full preset is the fair test."
)
st.download_button(
    "Table 2 with the measurements (CSV)",
    ex.records_to_csv(table),
    "table2-measured.csv",
    "text/csv",
    key="dl_table2",
)
