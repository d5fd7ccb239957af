"""A results set: made by one command on two datasets (the tiny preset), its provenance, loading it
strictly, Table 2 by dataset, the plain summary, the Experiments page opening on it, resuming an
interrupted set, and one task of the set re-run on the current code giving the same rows."""

from __future__ import annotations

import _thread
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from hqcnn import determinism
from hqcnn import experiments as ex
from hqcnn.__main__ import main
from hqcnn.errors import HQCNNError
from hqcnn.experiments import claims, provenance, results_set, set_table, tasks
from hqcnn.experiments.table import KEYS, TIMING_COLUMNS, compare
from hqcnn.markdown import md
from tests.test_experiments import TINY

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "pages/5_Experiments.py"
DATASETS = ["pneumoniamnist", "breastmnist"]
MODEL = ["--qubits", "3", "--depth", "1"]  # the tests' small hybrid (tests/test_experiments.py's CONFIG)
SKIPPED = "device_noise"
REASON = "Qiskit is left out of this test (the reason a study cannot run is recorded)."

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def set_argv(out: Path, *extra: str, name: str = "all") -> list[str]:
    return ["experiment", name, "--datasets", *DATASETS, *MODEL, "--out", str(out), "--quiet", *extra]


def make_set(out: Path, *extra: str, name: str = "all") -> tuple[int, list[str]]:
    """`python -m hqcnn experiment NAME --datasets ... --out OUT` with the quick preset shrunk to TINY."""
    argv = set_argv(out, *extra, name=name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(ex.PRESETS, "quick", TINY)
        mp.setattr(type(ex.STUDIES[SKIPPED]), "unavailable", lambda self, config: REASON)
        return main(argv), argv


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    """Every study (but the skipped one) on two datasets, by the set command."""
    out = tmp_path_factory.mktemp("sets") / "shipped"
    status, _ = make_set(out)
    assert status == 0
    return out


@pytest.fixture(scope="module")
def loaded(tiny_set) -> ex.ResultsSet:
    return ex.load_set(tiny_set)


def plain_text(markdown: str) -> str:
    """Markdown escaped by `md`, read back as the text it shows."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


# ---------------------------------------------------------------------------------------------
# The command and its provenance
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_set_command_writes_a_run_folder_per_study_and_dataset(tiny_set):
    ran = [n for n in ex.STUDIES if n != SKIPPED]
    expected = {f"{n}-quick-{d}" for n in ran for d in DATASETS}
    assert {p.name for p in tiny_set.iterdir() if p.is_dir()} == expected
    for folder in expected:
        files = {p.name for p in (tiny_set / folder).iterdir()}
        # The task log repeats results.json's rows: it is dropped once the set is complete.
        assert files == {"results.json", "results.csv", "summary.csv"}


@pytest.mark.slow
def test_the_provenance_says_how_the_set_was_made(tiny_set):
    record = json.loads((tiny_set / "provenance.json").read_text())
    assert record["format"] == provenance.FORMAT and record["complete"] is True
    assert record["command"] == "python -m hqcnn " + shlex.join(set_argv(tiny_set))
    git = record["git"]
    assert re.fullmatch(r"[0-9a-f]{40}", git["commit"]) or git["commit"] == "unknown"
    assert git["dirty"] in (True, False, "unknown")
    assert record["versions"] == ex.results.library_versions()
    machine = record["machine"]
    assert machine["cpus"] == os.cpu_count() and machine["python"] and machine["system"]
    assert machine["memory_gib"] is None or machine["memory_gib"] > 0
    assert record["executor"] == {"executor": "local", "workers": 1, "cluster": None}
    assert record["started_at"] <= record["finished_at"]
    assert record["settings"]["preset"] == "quick" and record["settings"]["datasets"] == DATASETS
    runs = record["runs"]
    assert [(r["dataset"], r["study"]) for r in runs] == [(d, n) for d in DATASETS for n in ex.STUDIES if n != SKIPPED]
    assert all(r["seconds"] > 0 and r["finished"] and r["resumed_tasks"] == 0 for r in runs)
    assert record["wall_seconds"] >= sum(r["seconds"] for r in runs) * 0.99
    assert record["skipped"] == [{"study": SKIPPED, "dataset": d, "reason": REASON} for d in DATASETS]
    assert len(record["sessions"]) == 1 and record["sessions"][0]["git"] == git
    # The determinism contract it computed under: the pinned kernels and one thread, the same in every run.
    compute = record["compute"]
    assert compute["kernels"] == "pinned" and compute["threads"] == 1 and compute["mkldnn"] is False
    assert determinism.holds(compute), determinism.differences(compute)
    for run in runs:
        saved = json.loads((tiny_set / run["folder"] / "results.json").read_text())
        assert saved["compute"] == compute


@pytest.mark.slow
def test_a_set_refuses_to_resume_under_other_kernels(tiny_set, tmp_path, monkeypatch):
    """A set's runs must share one contract: another thread count or kernel mode is refused."""
    copy = tmp_path / "set"
    shutil.copytree(tiny_set, copy)
    record = json.loads((copy / "provenance.json").read_text())
    record["compute"]["threads"] = 2
    (copy / "provenance.json").write_text(json.dumps(record))
    first = record["runs"][0]
    result = ex.ExperimentResult.load(copy / first["folder"])
    kept = provenance.SetRecord(copy, record["settings"], command="c", executor={}, resume=True)
    with pytest.raises(HQCNNError, match="other kernel settings"):
        kept.add(first["study"], first["dataset"], copy / first["folder"], 1.0, result)


def test_git_state_outside_a_checkout_or_without_git_is_unknown(tmp_path, monkeypatch):
    unknown = {"commit": "unknown", "dirty": "unknown"}
    assert provenance.git_state(tmp_path) == unknown

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(provenance.subprocess, "run", no_git)
    assert provenance.git_state() == unknown


def test_datasets_and_dataset_are_checked_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "set"
    with pytest.raises(SystemExit):
        main(["experiment", "all", "--dataset", "breastmnist", "--datasets", "pneumoniamnist", "--out", str(out)])
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["experiment", "all", "--datasets", "breastmnist", "breastmnist", "--out", str(out)]) == 2
    assert "listed twice" in capsys.readouterr().err
    assert main(["experiment", "all", "--datasets", "breastmnist", "nosuchmnist", "--out", str(out)]) == 2
    assert "nosuchmnist" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_a_set_is_not_overwritten_or_resumed_with_other_settings(tiny_set, tmp_path, capsys):
    copy = tmp_path / "set"
    shutil.copytree(tiny_set, copy)
    status, _ = make_set(copy)
    assert status == 2 and "already holds a results set" in capsys.readouterr().err
    status, _ = make_set(copy, "--resume", "--seeds", "1")
    assert status == 2 and "other settings" in capsys.readouterr().err


@pytest.mark.slow
def test_resuming_a_complete_set_runs_nothing(tiny_set, tmp_path, monkeypatch):
    copy = tmp_path / "set"
    shutil.copytree(tiny_set, copy)
    calls = []
    monkeypatch.setattr(tasks, "run_task", lambda *a, **k: calls.append(a) or [])
    status, _ = make_set(copy, "--resume")
    assert status == 0 and calls == []
    record = json.loads((copy / "provenance.json").read_text())
    assert record["complete"] and len(record["sessions"]) == 2
    assert record["runs"] == json.loads((tiny_set / "provenance.json").read_text())["runs"]


@pytest.mark.slow
def test_the_set_command_on_ray_records_its_workers_and_gives_the_same_tables(loaded, tmp_path):
    ray = pytest.importorskip("ray")
    out = tmp_path / "set"
    try:
        status, _ = make_set(out, "--executor", "ray", "--workers", "2", name="paired")
    finally:
        ray.shutdown()
    assert status == 0
    record = json.loads((out / "provenance.json").read_text())
    assert record["executor"] == {"executor": "ray", "workers": 2, "cluster": "embedded"}
    on_ray = ex.load_set(out)
    for dataset in DATASETS:  # bit for bit, timings aside, as on the local executor
        pd.testing.assert_frame_equal(
            ex.without_timing(on_ray.results[dataset]["paired"].table),
            ex.without_timing(loaded.results[dataset]["paired"].table),
            check_exact=True,
        )


@pytest.mark.slow
def test_resume_finishes_an_interrupted_set_without_rerunning_finished_tasks(loaded, tmp_path, monkeypatch, capsys):
    out = tmp_path / "set"
    real, calls, interrupt_at = tasks.run_task, [], [6]  # the second dataset's second training

    def counting(task, data, stop=None, report=None):
        calls.append((task.data.dataset, task.key))
        if len(calls) == interrupt_at[0]:
            _thread.interrupt_main()  # Ctrl-C, as the command line receives it
        return real(task, data, stop, report)

    monkeypatch.setattr(tasks, "run_task", counting)
    status, _ = make_set(out, name="paired")
    assert status == 130
    record = json.loads((out / "provenance.json").read_text())
    assert record["complete"] is False
    with pytest.raises(HQCNNError, match="not finished"):
        ex.load_set(out)
    first, second = (out / f"paired-quick-{d}" for d in DATASETS)
    assert (first / "tasks.jsonl").is_file()  # kept until the set is complete
    finished_before = len((second / "tasks.jsonl").read_text().splitlines()) - 1
    assert finished_before < 4
    kept = (first / "results.json").stat().st_mtime_ns

    calls.clear()
    interrupt_at[0] = 0
    status, _ = make_set(out, "--resume", name="paired")
    assert status == 0
    assert "finished earlier, kept" in capsys.readouterr().err
    assert calls and all(dataset == DATASETS[1] for dataset, _ in calls)  # the first dataset was not touched
    assert len(calls) == 4 - finished_before  # only the trainings that had not finished
    assert (first / "results.json").stat().st_mtime_ns == kept
    record = json.loads((out / "provenance.json").read_text())
    assert record["complete"] is True and len(record["sessions"]) == 2
    assert not (second / "tasks.jsonl").exists()
    resumed = ex.load_set(out)
    for dataset in DATASETS:  # the same table as the uninterrupted set's, timings aside
        assert ex.without_timing(resumed.results[dataset]["paired"].table).equals(
            ex.without_timing(loaded.results[dataset]["paired"].table)
        )


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_set_loads_by_dataset_and_study(loaded, tiny_set):
    assert loaded.datasets == DATASETS
    for dataset in DATASETS:
        assert list(loaded.results[dataset]) == [n for n in ex.STUDIES if n != SKIPPED]
        assert all(r.dataset == dataset and not r.stopped for r in loaded.results[dataset].values())
    assert loaded.seeds == [2] and loaded.preset == "tiny"
    assert loaded.skipped == [{"study": SKIPPED, "dataset": d, "reason": REASON} for d in DATASETS]
    label = results_set.label(loaded)
    assert label.startswith("Shipped results of ") and "tiny preset, 2 seeds, computed on " in label
    commit = loaded.provenance["git"]["commit"]
    assert (commit[:7] in label) if commit != "unknown" else ("an unknown commit" in label)


@pytest.mark.slow
def test_shipped_dir_follows_its_variable_and_stays_out_of_the_published_list(tiny_set, monkeypatch):
    monkeypatch.delenv(ex.SHIPPED_ENV, raising=False)
    assert ex.shipped_dir() == ex.results.ROOT / "results" / "shipped"
    monkeypatch.setenv(ex.SHIPPED_ENV, str(tiny_set))
    assert ex.shipped_dir() == tiny_set
    # The published folder (results/ by default) holds the shipped set one level down: never listed.
    assert ex.list_runs(tiny_set.parent) == []


def _damage(folder: Path, how: str) -> Path:
    """Damage a copy of the set one way; returns the file the error must name."""
    record_path = folder / "provenance.json"
    record = json.loads(record_path.read_text())
    target = folder / record["runs"][0]["folder"] / "results.json"
    if how == "no provenance":
        record_path.unlink()
        return record_path
    if how == "provenance not JSON":
        record_path.write_text("{not json")
        return record_path
    if how == "results not JSON":
        target.write_text('{"format": "hqcnn-experiment", "rows": [')
        return target
    if how == "missing run":
        shutil.rmtree(target.parent)
        return target
    if how == "other study":
        record["runs"][0]["study"] = "paired"
    elif how == "outside the set":
        record["runs"][0]["folder"] = "../elsewhere"
    elif how == "unfinished":
        record["complete"] = False
    record_path.write_text(json.dumps(record))
    return target if how == "other study" else record_path


@pytest.mark.parametrize(
    "how", ["no provenance", "provenance not JSON", "results not JSON", "missing run", "other study",
            "outside the set", "unfinished"],
)  # fmt: skip
@pytest.mark.slow
def test_a_damaged_set_is_a_plain_error_naming_the_file(tiny_set, tmp_path, how):
    copy = tmp_path / "set"
    shutil.copytree(tiny_set, copy)
    named = _damage(copy, how)
    with pytest.raises(HQCNNError) as err:
        ex.load_set(copy)
    assert str(named) in str(err.value)


# ---------------------------------------------------------------------------------------------
# Table 2 by dataset, and the plain summary
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_study_names_the_figure_of_each_claim_it_tests(loaded):
    for name, study in ex.STUDIES.items():
        assert set(study.claim_figures) == set(study.claims), name
    for results in loaded.results.values():
        for name, result in results.items():
            assert set(result.study.claim_figures.values()) <= set(ex.figures(result)), name


@pytest.mark.slow
def test_table2_by_dataset_matches_table2_on_each_dataset(loaded):
    rows = ex.table2_by_dataset(loaded.results)
    assert [r.key for r in rows] == [c.key for c in ex.CLAIMS]
    for dataset, results in loaded.results.items():
        single = ex.table2(results)
        for row, expected in zip(rows, single, strict=True):
            cell = row.cells[dataset]
            assert row.claim == expected["claim"] and cell.status == expected["status"]
            adjusted = [float(part.split("→")[1]) for part in expected["p values"].split(";")] if cell.deciding else []
            assert [float(f"{p:.3g}") for _, p in cell.deciding] == adjusted
            if cell.p_holm is not None:
                assert cell.p_holm == min(p for _, p in cell.deciding)
                assert cell.comparison in [c for c, _ in cell.deciding]
            if cell.kind != claims.NOT_MEASURED:
                assert cell.figure in ex.figures(results[cell.study])
                assert cell.effect.endswith(")") or cell.comparison.stats.ci_low is None
    display = set_table.display_rows(rows)
    assert list(display[0]) == [set_table.CLAIM_COLUMN, "PneumoniaMNIST", "BreastMNIST"]
    assert len(set_table.records(rows)) == len(ex.CLAIMS) * len(DATASETS)


@pytest.mark.slow
def test_the_holm_correction_is_per_dataset(loaded):
    """A dataset's column is the family: adding another dataset changes none of its p values."""
    both = ex.table2_by_dataset(loaded.results)
    alone = ex.table2_by_dataset({"breastmnist": loaded.results["breastmnist"]})
    assert [r.cells["breastmnist"].p_holm for r in both] == [r.cells["breastmnist"].p_holm for r in alone]


def test_each_kind_of_verdict_matches_its_status_words():
    from dataclasses import replace

    from tests.test_experiments import _finding

    up, down, none = [0.05, 0.06, 0.055, 0.07], [-0.05, -0.06, -0.055, -0.07], [0.05, -0.06, 0.01]
    cases = {
        claims.SUPPORTED: (_finding(up), "Supported"),
        claims.CONTRADICTED: (_finding(down), "Contradicted"),
        claims.MIXED: (_finding(up[:3], down[:3]), "Mixed"),
        claims.NO_DIFFERENCE: (_finding(none), "No significant difference"),
        claims.UNTESTED: (_finding([0.02]), "Untested"),
        claims.NOT_MEASURED: (None, claims.NOT_MEASURED),
    }
    for kind, (finding, words) in cases.items():
        assert claims.kind(finding) == kind and claims.status(finding).startswith(words)
    fell = replace(_finding(down), hardware=True)  # a significant fall under noise goes against "works on hardware"
    assert claims.kind(fell) == claims.CONTRADICTED and claims.status(fell).startswith("Accuracy fell")
    assert claims.kind(replace(_finding(none), hardware=True)) == claims.NO_DIFFERENCE


def _counted_sentences(loaded, rows) -> list[str]:
    summary = ex.plain_summary(loaded.results, rows)
    assert 3 <= len(summary) <= 6
    return summary


@pytest.mark.slow
def test_the_plain_summary_counts_what_the_table_says(loaded):
    rows = ex.table2_by_dataset(loaded.results)
    summary = _counted_sentences(loaded, rows)
    features = next(r for r in rows if r.key == "features")
    verdicts = [set_table.accuracy_against_twin(c) for c in features.cells.values()]
    assert summary[0].startswith(f"On {verdicts.count('higher')} of 2 datasets the hybrid was significantly more accurate")
    paper = [c.kind for r in rows if r.in_table2 for c in r.cells.values()]
    counts = f"Of all {len(paper)} verdicts (expectation by dataset), {paper.count(claims.SUPPORTED)} supported the paper"
    assert any(s.startswith(counts) for s in summary)
    assert any(f"in {paper.count(claims.NO_DIFFERENCE)} no difference was shown" in s for s in summary)
    limits = summary[-1]
    tested = sum(len(c.deciding) for r in rows for c in r.cells.values())
    for words in ("simulated", "28×28", "624 and 156 test images", f"among {tested} comparisons", "per dataset"):
        assert words in limits
    # Never stronger than the numbers: a difference not shown is never "no difference".
    assert not re.search(r"no difference(?! (was )?shown)", " ".join(summary))


def _cell(kind: str, diffs: list[float], p: float) -> set_table.Cell:
    table = [{"model": ex.HYBRID, "condition": "c", "seed": s, "accuracy": 0.8 + d} for s, d in enumerate(diffs)]
    table += [{"model": ex.TWIN, "condition": "c", "seed": s, "accuracy": 0.8} for s in range(len(diffs))]
    comparison = compare(pd.DataFrame(table), {"model": ex.HYBRID}, {"model": ex.TWIN}, "hybrid − twin")
    return set_table.Cell("words", kind, comparison, p, ((comparison, p),), "paired", "paired_difference")


def test_the_plain_summary_says_support_and_contradiction_as_counted():
    up, down, none = [0.1, 0.12, 0.11], [-0.1, -0.12, -0.11], [0.01, -0.02, 0.0]
    cells = {"a": _cell(claims.SUPPORTED, up, 0.001), "b": _cell(claims.CONTRADICTED, down, 0.002),
             "c": _cell(claims.NO_DIFFERENCE, none, 0.9)}  # fmt: skip
    rows = [
        set_table.ClaimRow("features", "Better feature representation", True, cells),
        set_table.ClaimRow("generalisation", "Better generalisation", True, {d: _cell(claims.NO_DIFFERENCE, none, 0.9) for d in cells}),
    ]  # fmt: skip
    summary = ex.plain_summary({d: {} for d in cells}, rows)
    assert summary[0] == (
        "On 1 of 3 datasets the hybrid was significantly more accurate than its classical twin (an ordinary network "
        "of the same size, trained the same way); on 1 it was significantly less accurate and on 1 no difference "
        "was shown."
    )
    assert summary[1] == (
        "Of the paper's 2 expectations (its Table 2), 1 found support on at least one dataset: better feature "
        "representation (on 1 of 3)."
    )
    assert summary[2] == (
        "Of all 6 verdicts (expectation by dataset), 1 supported the paper, 1 went against it and in 4 no difference "
        "was shown; against the paper: better feature representation (on 1 of 3)."
    )


# ---------------------------------------------------------------------------------------------
# Reproducibility: one task of the set, re-run on the current code
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dataset", "study", "index"), [("breastmnist", "input_noise", 1), ("pneumoniamnist", "paired", 2)])
@pytest.mark.slow
def test_one_task_of_the_set_rerun_gives_the_same_rows(loaded, dataset, study, index):
    assert_task_reproduces(loaded.results[dataset][study], index)


def assert_task_reproduces(result: ex.ExperimentResult, index: int) -> None:
    """Task `index` of `result`'s study, re-run on the current code, gives its stored rows exactly."""
    from hqcnn.data import prepare

    config, preset = ex.ExperimentConfig.from_dict(result.config), ex.Preset.from_dict(result.preset)
    task = ex.STUDIES[result.name].tasks(config, preset)[index]
    fresh = tasks.run_task(task, prepare(task.data))
    stored = {tuple(row[k] for k in KEYS): row for row in result.rows}
    assert fresh
    for row in fresh:
        saved = stored[tuple(row[k] for k in KEYS)]
        for column, value in row.items():
            if column not in TIMING_COLUMNS:
                assert saved[column] == value, (column, saved[column], value)  # floats compared exactly
        assert all(saved[c] is None for c in set(saved) - set(row))  # other tasks' columns only


# ---------------------------------------------------------------------------------------------
# The Experiments page
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def open_page(monkeypatch):
    """The Experiments page with the shipped set read from a given folder (for the whole test)."""

    def opener(shipped: Path) -> AppTest:
        monkeypatch.setenv(ex.SHIPPED_ENV, str(shipped))
        at = AppTest.from_file(APP, default_timeout=180)
        at.run()
        at.switch_page(PAGE).run()
        return at

    return opener


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.slow
def test_the_page_opens_on_the_shipped_set(open_page, tiny_set, loaded):
    at = open_page(tiny_set)
    assert_clean(at)
    assert at.radio(key="exp_view").value == "Shipped results"
    texts = [m.value for m in at.markdown]
    assert f"**{md(results_set.label(loaded), limit=400)}**" in texts
    rows = ex.table2_by_dataset(loaded.results)
    summary = "\n".join(f"- {md(s, limit=1000)}" for s in ex.plain_summary(loaded.results, rows))
    assert summary in texts
    table = at.table[0].value
    assert list(table.columns) == [set_table.CLAIM_COLUMN, "PneumoniaMNIST", "BreastMNIST"]
    assert len(table) == len(ex.CLAIMS)
    assert plain_text(table.iloc[0]["BreastMNIST"]).startswith(f"**{rows[0].cells['breastmnist'].status}**")
    assert any("correction is per dataset" in c.value for c in at.caption)
    assert any(REASON[:20] in plain_text(c.value) for c in at.caption)  # the skipped study, with its reason
    # Made here under the pinned kernels: the page says that it re-runs exactly.
    assert any("it re-runs exactly here" in plain_text(c.value) for c in at.caption)
    # The selected dataset's studies, with every figure.
    first = loaded.results["pneumoniamnist"]
    assert len(at.get("plotly_chart")) == sum(len(ex.figures(r)) for r in first.values())
    assert [t.label for t in at.tabs] == [r.title for r in first.values()]
    # A verdict's figure, on request.
    at.selectbox(key="shipped_figure").set_value("little_data|breastmnist").run()
    assert_clean(at)
    assert any(plain_text(s.value).startswith("Better performance with little data on BreastMNIST") for s in at.subheader)
    shown = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]
    expected = ex.figures(loaded.results["breastmnist"]["low_data"])["low_data_difference"]
    assert shown == expected.layout.title.text
    # Another dataset's studies.
    at.radio(key="shipped_dataset").set_value("breastmnist").run()
    assert_clean(at)
    second = loaded.results["breastmnist"]
    assert len(at.get("plotly_chart")) == 1 + sum(len(ex.figures(r)) for r in second.values())
    # This session's runs: today's page.
    at.radio(key="exp_view").set_value("This session's runs").run()
    assert_clean(at)
    headers = [s.value for s in at.subheader]
    assert "Run an experiment" in headers and "Shipped results" not in headers
    assert at.button(key="exp_run")


def test_without_a_shipped_set_the_page_says_so_and_works_as_before(open_page, tmp_path):
    at = open_page(tmp_path / "none")
    assert_clean(at)
    assert any("No results set is shipped" in c.value for c in at.caption)
    assert not [r for r in at.radio if r.key == "exp_view"]
    assert "Run an experiment" in [s.value for s in at.subheader]


@pytest.mark.slow
def test_a_damaged_shipped_set_is_a_plain_error_on_the_page(open_page, tiny_set, tmp_path):
    copy = tmp_path / "set"
    shutil.copytree(tiny_set, copy)
    damaged = _damage(copy, "results not JSON")
    at = open_page(copy)
    assert not at.exception
    assert len(at.error) == 1 and plain_text(at.error[0].value).startswith(f"{damaged} is not valid JSON")
    assert "Run an experiment" in [s.value for s in at.subheader]  # this session's runs instead


@pytest.mark.slow
def test_the_markdown_report_for_the_readme_is_the_table_and_summary(tiny_set, loaded):
    done = subprocess.run(
        [sys.executable, "-m", "hqcnn.experiments.set_table", str(tiny_set)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = done.stdout
    rows = [r for r in ex.table2_by_dataset(loaded.results) if r.in_table2]
    table = [line for line in report.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(rows)  # the header and one line per claim of Table 2
    assert table[0].count("|") == 2 + len(loaded.datasets)
    for sentence in ex.plain_summary(loaded.results):
        assert f"- {sentence}" in report
    assert report.splitlines()[0] == results_set.label(loaded)
