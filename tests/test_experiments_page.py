"""The Experiments page under AppTest: saved results, Table 2, downloads, a run with its progress, Stop."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from hqcnn import experiments as ex
from hqcnn.markdown import WORD_JOINER
from tests.test_experiments import CONFIG, TINY

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "pages/5_Experiments.py"


@pytest.fixture(autouse=True)
def no_shipped_set(tmp_path, monkeypatch) -> None:
    """These tests drive this session's runs: the page's default view while no results set is shipped."""
    monkeypatch.setenv(ex.SHIPPED_ENV, str(tmp_path / "no-shipped-set"))


@pytest.fixture(scope="module")
def saved_runs(tmp_path_factory) -> Path:
    """A runs folder holding a tiny result of three experiments (the others stay unmeasured)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    for name in ("low_data", "hardware_noise", "paired"):
        result = ex.run_study(name, CONFIG, TINY)
        result.save(root / f"{name}-tiny")
    torch.set_num_threads(previous)
    return root


@pytest.fixture
def runs_dir(saved_runs, monkeypatch) -> Path:
    """The tiny results, published with the app (the only saved results the page lists)."""
    monkeypatch.setenv(ex.PUBLISHED_ENV, str(saved_runs))
    return saved_runs


def open_page(**session) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in session.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(PAGE).run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def table2_rows(at: AppTest) -> list[dict]:
    """Table 2 as shown, its cells read back as the text they show (the page escapes them for Markdown)."""
    frame = at.table[-1].value
    return [{k: _shown(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _shown(cell: str) -> str:
    return re.sub(r"\\(.)", r"\1", cell).replace(WORD_JOINER, "")


def test_page_without_results_shows_table2_as_not_measured(runs_dir):
    at = open_page()
    assert_clean(at)
    assert at.title[0].value == "Experiments"
    assert any("No results yet" in i.value for i in at.info)
    rows = table2_rows(at)
    assert len(rows) == len(ex.CLAIMS)
    measured = {r["The paper expects (Table 2)"]: r["Measured"] for r in rows}
    verdicts = {r["The paper expects (Table 2)"]: r["Verdict"] for r in rows}
    assert measured["Better performance with little data"].startswith("not measured yet")
    assert verdicts["Better performance with little data"] == "not measured yet"
    assert measured["Better interpretability"].startswith("not measured yet: run or load the Interpretability study")
    assert at.selectbox(key="exp_saved").options  # the saved run folders are offered


def test_loading_saved_results_shows_charts_verdicts_and_downloads(runs_dir):
    at = open_page()
    at.button(key="exp_load_latest").click().run()
    assert_clean(at)
    loaded = at.session_state["experiment_results"]
    assert set(loaded) == {"low_data", "hardware_noise", "paired"}
    figures = sum(len(ex.figures(r)) for r in loaded.values())
    assert len(at.get("plotly_chart")) == figures
    assert any("Better generalisation" in i.value for i in at.info)  # the verdict of each claim tested
    measured = {r["The paper expects (Table 2)"]: r["Measured"] for r in table2_rows(at)}
    assert not measured["Better performance with little data"].startswith("not measured")
    assert not measured["Better generalisation"].startswith("not measured")
    assert measured["Robustness to noise"].startswith("not measured yet")  # input_noise was not saved
    labels = [b.proto.label for b in at.get("download_button")]
    for name in ("results.csv", "summary.csv", "results.json", "low_data_accuracy.html", "paired_seeds.html"):
        assert name in labels
    assert "Table 2 with the measurements (CSV)" in labels
    assert any("python -m hqcnn experiment paired --preset tiny" in c.value for c in at.code)


def test_loading_one_saved_folder(runs_dir):
    at = open_page()
    folder = next(p for p in ex.list_runs(runs_dir) if p.name.startswith("paired"))
    assert folder.name in at.selectbox(key="exp_saved").options
    at.selectbox(key="exp_saved").set_value(folder).run()
    at.button(key="exp_load").click().run()
    assert_clean(at)
    assert set(at.session_state["experiment_results"]) == {"paired"}


def wait_for_job(at: AppTest, deadline_s: float = 120) -> None:
    started = time.monotonic()
    while at.session_state["experiment_job"] is not None:
        assert time.monotonic() - started < deadline_s, "the experiment did not finish in time"
        time.sleep(0.5)
        at.run()


def test_running_an_experiment_shows_it_to_its_session_only(tmp_path, monkeypatch):
    monkeypatch.setenv(ex.RUNS_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv(ex.PUBLISHED_ENV, str(tmp_path / "published"))
    at = open_page(experiment_extra_presets={"tiny": TINY})
    at.selectbox(key="exp_name").set_value("paired").run()
    at.radio(key="exp_preset").set_value("tiny").run()
    at.number_input(key="exp_seeds_paired_tiny").set_value(2).run()
    at.button(key="exp_run").click().run()
    assert_clean(at)
    wait_for_job(at)
    assert_clean(at)
    assert any("Paired comparison: finished" in s.value for s in at.success)
    result = at.session_state["experiment_results"]["paired"]
    assert result.seeds == [0, 1] and len(result.rows) == 4
    assert len(at.get("plotly_chart")) == len(ex.figures(result))
    # Nothing is written on the server, and another session sees nothing of it.
    assert not any(tmp_path.rglob("*")), list(tmp_path.rglob("*"))
    other = open_page()
    assert_clean(other)
    assert not other.session_state["experiment_results"]
    assert any("No results yet" in i.value for i in other.info)


def test_an_uploaded_result_on_a_dataset_this_session_did_not_upload_is_refused(runs_dir):
    folder = next(p for p in ex.list_runs(runs_dir) if p.name.startswith("paired"))
    text = (folder / "results.json").read_text()
    at = open_page()
    for dataset in ("/etc", "/srv/other-class/xrays", "../../secret", "upload:0123456789abcdef"):
        forged = text.replace('"dataset": "pneumoniamnist"', f'"dataset": "{dataset}"')
        assert forged != text
        at.file_uploader(key="exp_upload").set_value(("results.json", forged.encode(), "application/json")).run()
        assert not at.exception
        assert any("not available to this session" in e.value for e in at.error)
        assert all(dataset.split("/")[-1] not in e.value for e in at.error)  # the path is never echoed
        assert not at.session_state["experiment_results"]


def test_stop_button_ends_a_run_early(tmp_path, monkeypatch):
    monkeypatch.setenv(ex.RUNS_ENV, str(tmp_path))
    long = ex.Preset.from_dict(
        {**TINY.to_dict(), "name": "long", "max_epochs": 3, "grids": {"paired": {"seeds": 20, "train_per_class": 20}}}
    )
    at = open_page(experiment_extra_presets={"long": long})
    at.selectbox(key="exp_name").set_value("paired").run()
    at.radio(key="exp_preset").set_value("long").run()
    at.button(key="exp_run").click().run()
    at.button(key="exp_stop").click().run()
    wait_for_job(at)
    assert_clean(at)
    result = at.session_state["experiment_results"]["paired"]
    assert result.stopped and len(result.table) < 40
    assert any("stopped early" in s.value for s in at.success)


@pytest.mark.slow
def test_the_device_noise_study_runs_from_the_page(tmp_path, monkeypatch):
    monkeypatch.setenv(ex.RUNS_ENV, str(tmp_path / "runs"))
    at = open_page(experiment_extra_presets={"tiny": TINY})
    at.selectbox(key="exp_name").set_value("device_noise").run()
    at.radio(key="exp_preset").set_value("tiny").run()
    assert not at.button(key="exp_run").disabled  # Qiskit is installed with the tests
    at.button(key="exp_run").click().run()
    wait_for_job(at)
    assert_clean(at)
    result = at.session_state["experiment_results"]["device_noise"]
    assert set(result.table["backend"].dropna()) >= {"fake_manila"}
    assert len(at.get("plotly_chart")) == len(ex.figures(result))
    hardware = next(r for r in table2_rows(at) if "hardware" in r["The paper expects (Table 2)"].lower())
    assert not hardware["Measured"].startswith("not measured")

