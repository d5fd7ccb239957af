"""Every study end to end on a tiny slice of the bundled data: the tidy table, summaries, figures,
saving, determinism, the noisy-simulator check, the stop flag, Table 2, resuming, the registry and
the command line. The Ray executor's tests are in test_executors.py."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as scipy_stats

from hqcnn import experiments as ex
from hqcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from hqcnn.errors import ConfigError, HQCNNError
from hqcnn.experiments import tasks
from hqcnn.experiments.studies import ablations, hardware_noise, input_noise
from tests.test_plots import check_house_rules

# One epoch on 20 images per class: seconds per study, enough to exercise every code path.
TINY = ex.Preset(
    name="tiny",
    seeds=2,
    step_budget=None,
    max_epochs=1,
    base="quick",
    grids={
        "low_data": {"sizes": (5, 20)},
        "input_noise": {"train_per_class": 20, "gaussian": (0.0, 0.2), "salt_pepper": (0.0, 0.1)},
        "hardware_noise": {"train_per_class": 20, "depolarizing": (0.0, 0.05), "shots": (None, 100), "images": 60},
        "device_noise": {"train_per_class": 20, "backends": ("fake_manila",), "shots": (100, 1000), "images": 60},
        "param_efficiency": {"train_per_class": 20, "circuit_sizes": ((2, 1),), "widths": ((4, 8),)},
        "ablations": {"train_per_class": 20, "variants": ("baseline", "no_circuit", "depth_2", "twin")},
        "paired": {"train_per_class": 20, "seeds": 2},
        "calibration": {"train_per_class": 20},
        "representation": {"train_per_class": 20},
        "interpretability": {"train_per_class": 20, "images": 6, "methods": ("saliency", "gradcam")},
    },
)
CONFIG = ex.ExperimentConfig(dataset="pneumoniamnist", model=ModelConfig(n_qubits=3, depth=1, n_features=6))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def results() -> dict[str, ex.ExperimentResult]:
    """Each study run once on the tiny preset, with its progress reports."""
    out = {}
    for name in ex.STUDIES:
        reports: list[tuple[float, int, str]] = []
        out[name] = ex.run_study(name, CONFIG, TINY, callback=lambda d, t, m, r=reports: r.append((d, t, m)))
        out[name].reports = reports  # type: ignore[attr-defined]
    return out


EXPECTED_ROWS = {
    "low_data": 2 * 2 * 2,  # sizes × seeds × models
    "input_noise": 2 * 2 * 4,  # seeds × models × (2 Gaussian + 2 salt-and-pepper levels)
    "hardware_noise": 2 * (2 + 2 * 2),  # seeds × (as trained + twin + p × shots)
    "device_noise": 2 * (2 + 2 * 2),  # seeds × (as trained + twin + (noiseless, Manila) × shots)
    "param_efficiency": 2 * 2 * 2,  # conditions × seeds × models
    "ablations": 2 * 4,  # seeds × (baseline, no circuit, depth 2, twin); the baseline has depth 1
    "paired": 2 * 2,
    "calibration": 2 * 2 * 2,  # seeds × models × (as trained, temperature-scaled)
    "representation": 2 * 2,
    "interpretability": 2 * 2 * 2,  # seeds × models × methods
}


def test_the_registry_lists_every_study_in_menu_order():
    assert list(ex.STUDIES) == [
        "low_data", "input_noise", "hardware_noise", "device_noise", "param_efficiency", "ablations", "paired", "calibration",
        "representation", "interpretability",
    ]  # fmt: skip
    for study in ex.STUDIES.values():
        assert study.title and study.question.endswith("?") and study.quick_seconds
        assert set(study.claims) <= {c.key for c in ex.CLAIMS}
        assert set(study.grids) == {"quick", "full"}
    assert {c.key for c in ex.CLAIMS if c.judge} == {k for s in ex.STUDIES.values() for k in s.claims}


@pytest.mark.parametrize("name", list(EXPECTED_ROWS))
@pytest.mark.slow
def test_every_study_runs_end_to_end(results, name):
    result = results[name]
    table = result.table
    assert not result.stopped
    assert result.seeds == [0, 1]
    assert len(table) == EXPECTED_ROWS[name]
    assert {"study", "dataset", "condition", "model", "seed", "accuracy", "auc", "params"} <= set(table.columns)
    assert not table.duplicated(list(ex.table.KEYS)).any()  # one row per study × dataset × condition × model × seed
    assert table["accuracy"].between(0, 1).all()
    assert set(table["dataset"]) == {"pneumoniamnist"} and set(table["study"]) == {name}
    assert {ex.HYBRID, ex.TWIN} <= set(table["model"])
    # The summary has one entry per model × condition, with a mean inside its interval.
    summary = result.summary
    assert len(summary) == len(table.groupby(["model", "condition"]))
    assert (summary["n"] == 2).all()
    assert (summary["accuracy_ci_low"] <= summary["accuracy_mean"]).all()
    assert (summary["accuracy_mean"] <= summary["accuracy_ci_high"]).all()
    assert result.comparisons and all(isinstance(c, ex.Comparison) and c.verdict for c in result.comparisons)
    # Progress went from 0 to done, in order, and ended at the total (one step per training).
    done = [d for d, _, _ in result.reports]
    assert done == sorted(done) and result.reports[-1][0] == result.reports[-1][1] == result.executor["tasks"]
    assert result.command.startswith(f"python -m hqcnn experiment {name} --preset tiny")
    assert result.versions["torch"] and result.started_at <= result.finished_at


@pytest.mark.parametrize("name", list(EXPECTED_ROWS))
@pytest.mark.slow
def test_every_figure_follows_the_house_rules_and_shows_uncertainty(results, name):
    figures = ex.figures(results[name])
    assert figures
    for fig in figures.values():
        check_house_rules(fig)
        has_band = any(getattr(t, "fill", None) == "toself" for t in fig.data)
        has_bars = any(getattr(t, "error_y", None) is not None and t.error_y.array is not None for t in fig.data)
        assert has_band or has_bars, f"{fig.layout.title.text} shows no confidence band or error bar"


@pytest.mark.slow
def test_the_summary_matches_a_hand_computed_t_interval(results):
    table = results["low_data"].table
    entry = results["low_data"].summary.iloc[0]
    values = ex.table.select(table, model=entry["model"], condition=entry["condition"])["auc"].to_numpy()
    low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values))
    assert entry["auc_mean"] == pytest.approx(values.mean())
    assert entry["auc_ci_low"] == pytest.approx(max(low, 0.0)) and entry["auc_ci_high"] == pytest.approx(min(high, 1.0))


@pytest.mark.slow
def test_the_paired_comparison_pairs_by_seed(results):
    table = results["paired"].table
    comp = next(c for c in results["paired"].comparisons if c.metric == "accuracy")
    by_seed = table.pivot(index="seed", columns="model", values="accuracy")
    assert comp.seeds == (0, 1) and comp.tag == "twin"
    assert comp.diffs == pytest.approx((by_seed[ex.HYBRID] - by_seed[ex.TWIN]).tolist())
    gap = next(c for c in results["paired"].comparisons if c.tag == "gap")
    assert gap.metric == "generalisation_gap" and gap.n == 2
    assert table["generalisation_gap"].to_numpy() == pytest.approx(table["train_accuracy"] - table["accuracy"])
    assert json.loads(json.dumps(comp.to_dict()))["t_p"] == comp.p


@pytest.mark.slow
def test_the_twin_is_parameter_matched(results):
    table = results["param_efficiency"].table
    params = table.pivot_table(index=["condition", "seed"], columns="model", values="params")
    assert ((params[ex.HYBRID] - params[ex.TWIN]).abs() <= 8).all()  # the twin's rank rounds to the nearest size
    assert set(table["channels"]) == {"8-16", "4-8"}


@pytest.mark.slow
def test_low_data_subsets_differ_by_seed_and_are_shared_by_the_models(results):
    table = results["low_data"].table
    small = table[table["train_per_class"] == 5]
    assert set(small["n_train"]) == {10} and set(small["x"]) == {5}
    assert set(table["condition"]) == {"5 per class", "20 per class"}


@pytest.mark.slow
def test_input_noise_uses_the_same_noisy_images_for_both_models(results):
    table = results["input_noise"].table
    clean = ex.table.select(table, level=0.0)
    by_noise = clean.pivot_table(index=["model", "seed"], columns="noise", values="accuracy")
    assert (by_noise["gaussian"] == by_noise["salt_pepper"]).all()  # level 0 is the clean test set under both
    robust = [c for c in results["input_noise"].comparisons if c.tag == "robustness"]
    assert {c.extra["noise"] for c in robust} == {"gaussian", "salt_pepper"}


def test_noisy_inputs_stay_in_pixel_range():
    from hqcnn.data import prepare

    data = prepare(DataConfig(dataset="pneumoniamnist", train_per_class=20))
    for noise in ("gaussian", "salt_pepper"):
        x = input_noise.noisy_inputs(data, noise, 0.3, 1)
        x01 = x * torch.tensor(data.std).view(1, -1, 1, 1) + torch.tensor(data.mean).view(1, -1, 1, 1)
        assert x01.min() >= -1e-5 and x01.max() <= 1 + 1e-5
        assert not torch.allclose(x, data.x_test)


@pytest.mark.slow
def test_hardware_rows_show_exact_equals_model(results):
    table = results["hardware_noise"].table
    assert hardware_noise.exact_matches_model(table) is True
    assert set(table["n_eval"]) == {60}
    assert set(ex.table.select(table, simulator="default.mixed")["shots"]) == {"exact", "100 shots"}
    noisy = [c for c in results["hardware_noise"].comparisons if c.tag == "hardware"]
    assert {(c.extra["p"], c.extra["shots"]) for c in noisy} == {(0.05, "exact"), (0.0, "100 shots"), (0.05, "100 shots")}


@pytest.mark.slow
def test_device_rows_carry_the_transpiled_circuit_and_feed_the_hardware_claim(results):
    result = results["device_noise"]
    table = result.table
    devices = ex.table.select(table, simulator="qiskit-aer")
    assert set(devices["backend"]) == {"ideal", "fake_manila"} and set(devices["x"]) == {100, 1000}
    manila, ideal = (ex.table.select(devices, backend=b) for b in ("fake_manila", "ideal"))
    # A 3-qubit ring fits Manila's line only with SWAPs; the noiseless circuit is as written.
    assert (manila["two_qubit_gates"] > 3).all() and (ideal["two_qubit_gates"] == 3).all()
    assert manila["cx_error"].between(0, 0.1).all() and ideal["cx_error"].isna().all()
    assert {(c.extra["backend"], c.extra["shots"]) for c in result.comparisons if c.tag == "device"} == {
        ("ideal", 100), ("ideal", 1000), ("fake_manila", 100), ("fake_manila", 1000)
    }
    assert set(ex.figures(result)) == {"device_noise_accuracy", "device_noise_auc"}
    assert any("IBM Manila" in note and "two-qubit gates" in note for note in result.notes)
    # Table 2's hardware row: decided by the depolarising study's strongest noise and Manila at 1000 shots.
    row = next(r for r in ex.table2(results) if r["claim"].endswith("noisy quantum hardware"))
    assert "Device noise" in row["source"] and "Quantum hardware noise" in row["source"]
    assert "IBM Manila" in row["verdict"]
    finding = next(c for c in ex.CLAIMS if c.key == "hardware").judge(results)
    assert [c.tag for c in finding.comparisons] == ["hardware", "device"]
    assert finding.comparisons[1].extra == {"backend": "fake_manila", "shots": 1000}
    alone = next(r for r in ex.table2({"device_noise": result}) if r["claim"].endswith("noisy quantum hardware"))
    assert alone["status"] != ex.NOT_MEASURED and "Quantum hardware" not in alone["source"]


@pytest.mark.slow
def test_same_preset_and_seed_give_the_same_table(results):
    again = ex.run_study("paired", CONFIG, TINY)
    pd.testing.assert_frame_equal(ex.without_timing(again.table), ex.without_timing(results["paired"].table))
    shifted = ex.run_study("paired", ex.ExperimentConfig(**{**CONFIG.__dict__, "base_seed": 5}), TINY)
    assert shifted.seeds == [5, 6]
    assert not ex.without_timing(shifted.table).equals(ex.without_timing(results["paired"].table))


@pytest.mark.slow
def test_save_and_load_round_trip(results, tmp_path):
    for name, result in results.items():
        folder = result.save(tmp_path / name)
        assert {p.name for p in folder.iterdir()} == {"results.csv", "summary.csv", "results.json"}
        saved = json.loads((folder / "results.json").read_text())
        assert saved["config"]["dataset"] == "pneumoniamnist" and saved["preset"]["name"] == "tiny"
        assert saved["seeds"] == [0, 1] and saved["versions"]["pennylane"]
        loaded = ex.ExperimentResult.load(folder)
        pd.testing.assert_frame_equal(loaded.table, result.table, check_dtype=False)
        pd.testing.assert_frame_equal(loaded.summary, result.summary, check_dtype=False)
        assert [c.to_dict() for c in loaded.comparisons] == [c.to_dict() for c in result.comparisons]
        assert ex.Preset.from_dict(loaded.preset) == TINY
        assert ex.ExperimentConfig.from_dict(loaded.config) == CONFIG
        csv = pd.read_csv(folder / "results.csv")
        assert {"model", "condition", "seed", "accuracy", "auc", "kept"} <= set(csv.columns)
        assert len(csv) == len(result.table)
    assert [p.name for p in ex.list_runs(tmp_path)][0] == list(results)[-1]  # newest first


def test_a_multi_class_rgb_dataset_works(tmp_path):
    config = ex.ExperimentConfig(dataset="retinamnist", model=ModelConfig(n_qubits=2, depth=1, n_features=4))
    result = ex.run_study("hardware_noise", config, TINY)
    assert set(result.table["n_eval"]) == {60}
    assert hardware_noise.exact_matches_model(result.table) is True
    assert result.table["auc"].notna().all()
    folder = ex.default_folder(result.name, "tiny", result.dataset, tmp_path)
    assert folder.parent == tmp_path and folder.name.startswith("hardware_noise-tiny-retinamnist-")


def test_folder_names_are_safe():
    assert ex.safe_name("/home/me/my x-rays") == "my_x-rays"
    assert ex.safe_name("pneumoniamnist") == "pneumoniamnist"


def test_loading_something_else_is_a_plain_error(tmp_path):
    with pytest.raises(HQCNNError, match="Cannot read"):
        ex.ExperimentResult.load(tmp_path / "nothing")
    with pytest.raises(HQCNNError, match="not valid JSON"):
        ex.ExperimentResult.from_json_text("{nope")
    with pytest.raises(HQCNNError, match="not an HQCNN experiment"):
        ex.ExperimentResult.from_json_text('{"rows": []}')
    bad = {"format": ex.FORMAT, "version": ex.FORMAT_VERSION, "name": "paired", "rows": [{"model": "hybrid"}]}
    with pytest.raises(HQCNNError, match="without model"):
        ex.ExperimentResult.from_json(bad)
    with pytest.raises(HQCNNError, match="unknown study"):
        ex.ExperimentResult.from_json({**bad, "name": "magic"})
    with pytest.raises(HQCNNError, match="format version 1"):
        ex.ExperimentResult.from_json({**bad, "version": 1})
    row = {"model": "hybrid", "seed": 0, "accuracy": 0.5}
    for condition in ("![x](http://attacker.example/x.png)", "<b>bold</b>", "x" * 201):
        with pytest.raises(HQCNNError, match="unexpected label"):
            ex.ExperimentResult.from_json({**bad, "rows": [{**row, "condition": condition}]})
    with pytest.raises(HQCNNError, match="another dataset"):
        forged = {**row, "condition": "c", "dataset": "breastmnist"}
        ex.ExperimentResult.from_json({**bad, "config": {"dataset": "pneumoniamnist"}, "rows": [forged]})


def test_stop_before_the_start_records_nothing():
    stop = threading.Event()
    stop.set()
    result = ex.run_study("low_data", CONFIG, TINY, stop=stop)
    assert result.stopped and result.table.empty
    assert any("Stopped by the user" in n for n in result.notes)
    assert ex.figures(result) == {}


def _stop_after(n: int) -> tuple[threading.Event, ex.run.Progress]:
    stop = threading.Event()

    def callback(done: float, total: int, message: str) -> None:
        if done >= n:
            stop.set()

    return stop, callback


def test_stop_during_a_run_keeps_only_finished_trainings():
    stop, callback = _stop_after(3)
    result = ex.run_study("param_efficiency", CONFIG, TINY, callback=callback, stop=stop)
    assert result.stopped
    assert 3 <= len(result.table) < EXPECTED_ROWS["param_efficiency"]


@pytest.mark.slow
def test_an_interrupted_run_resumes_where_it_stopped(results, tmp_path):
    folder = tmp_path / "run"
    stop, callback = _stop_after(2)
    first = ex.run_study("paired", CONFIG, TINY, callback=callback, stop=stop, folder=folder)
    assert first.stopped and 2 <= len(first.table) < 4
    log = (folder / "tasks.jsonl").read_text().splitlines()
    assert len(log) == 1 + len(first.table)  # the header, then one line per finished training
    with open(folder / "tasks.jsonl", "a") as f:
        f.write('{"key": "as configured|hybrid|seed 1", "rows": [')  # a line cut short by the interruption
    with pytest.raises(HQCNNError, match="already holds a run"):
        ex.run_study("paired", CONFIG, TINY, folder=folder)
    with pytest.raises(HQCNNError, match="other settings"):
        ex.run_study("paired", ex.ExperimentConfig(dataset="breastmnist"), TINY, folder=folder, resume=True)
    resumed = ex.run_study("paired", CONFIG, TINY, folder=folder, resume=True)
    assert not resumed.stopped and resumed.executor["resumed"] == len(first.table)
    pd.testing.assert_frame_equal(ex.without_timing(resumed.table), ex.without_timing(results["paired"].table))
    assert ex.ExperimentResult.load(folder).table.shape == resumed.table.shape
    with pytest.raises(HQCNNError, match="no run to resume"):
        ex.run_study("paired", CONFIG, TINY, folder=tmp_path / "none", resume=True)


def test_adding_a_study_is_one_class():
    @ex.register
    class Tiny(ex.Study):
        name, title, question = "tiny_check", "Tiny check", "Does a registered study run?"

        def tasks(self, config, preset):
            from hqcnn.experiments.studies._common import data_config, pair, task

            data = data_config(config, 10, 0)
            return [task(self, config, preset, data, m, 0, condition="ten per class") for m in pair(config.model)]

    try:
        result = ex.run_study("tiny_check", CONFIG, TINY)
        assert set(result.table["model"]) == {ex.HYBRID, ex.TWIN} and len(result.comparisons) == 2
        with pytest.raises(ValueError, match="Two studies"):
            ex.register(Tiny)
    finally:
        ex.STUDIES.pop("tiny_check")


@pytest.mark.slow
def test_table2_before_and_after_measuring(results):
    empty = ex.table2({})
    assert [row["claim"] for row in empty][:7] == [
        "Better feature representation",
        "Better performance with little data",
        "Robustness to noise",
        "Fewer parameters",
        "Better generalisation",
        "Optimised computational cost",
        "Better interpretability",
    ]
    for row in empty:
        assert row["status"] == ex.NOT_MEASURED and row["verdict"].startswith(ex.NOT_MEASURED)
        assert row["figure"]
    assert "Ablations, Paired comparison or Representation study" in empty[0]["verdict"]  # the studies that test it
    full = ex.table2(results)
    assert all(" → " in row["p values"] for row in full if row["status"].startswith(("Supported", "Contra", "No sig")))
    for row in full:
        assert not row["verdict"].startswith(ex.NOT_MEASURED), row
        assert row["status"] != ex.NOT_MEASURED, row
        assert "tiny preset, 2 seeds, pneumoniamnist" in row["source"]
    assert any(
        "p =" in row["verdict"] or "no t-test" in row["verdict"] or "did not differ" in row["verdict"] for row in full
    )


def test_ablation_variants_that_equal_the_baseline_are_run_once():
    base = ModelConfig(depth=2)
    variants = ablations.ablation_variants(base, ("baseline", "depth_2", "depth_3", "entangler_ring", "twin"))
    assert [key for key, *_ in variants] == ["baseline", "depth_3", "twin"]
    assert variants[0][1] == "baseline: ring, depth 2, layered"
    with pytest.raises(ConfigError, match="Unknown ablation"):
        ablations.ablation_variants(base, ("quantum_magic",))


def _finding(*diff_lists, good=+1):
    table = pd.DataFrame(
        [
            {"model": model, "condition": str(i), "seed": s, "accuracy": 0.5 + (d if model == ex.HYBRID else 0)}
            for i, diffs in enumerate(diff_lists)
            for s, d in enumerate(diffs)
            for model in (ex.HYBRID, ex.TWIN)
        ]
    )
    comps = ex.table.hybrid_vs_twin(table, ("accuracy",))
    return ex.Finding("text", comps, [], good=good, what="sizes")


def test_claim_status_words():
    assert ex.status(_finding([0.05, 0.06, 0.055, 0.07])).startswith("Supported (4 seeds")
    assert ex.status(_finding([-0.05, -0.06, -0.055, -0.07])).startswith("Contradicted (4 seeds")
    assert ex.status(_finding([0.05, -0.06, 0.01])) == "No significant difference (3 seeds)"
    assert ex.status(_finding([0.02])).startswith("Untested (1 seed")
    mixed = ex.status(_finding([0.05, 0.06, 0.055], [-0.05, -0.06, -0.055]))
    assert mixed.startswith("Mixed: supported at 1, contradicted at 1 of 2 sizes")
    assert ex.status(_finding([0.05, 0.06, 0.055, 0.07], good=-1)).startswith("Contradicted")  # e.g. a larger gap
    assert ex.status(None) == ex.NOT_MEASURED
    # Table 2 decides on corrected p values: the same differences, judged with an adjusted p of 1.
    assert ex.status(_finding([0.05, 0.06, 0.055, 0.07]), p_of=lambda c: 1.0) == "No significant difference (4 seeds)"


def test_summary_intervals_stay_within_0_and_1():
    table = pd.DataFrame([{"model": "hybrid", "condition": "c", "seed": s, "accuracy": a} for s, a in enumerate([0.99, 1.0, 0.9])])
    (entry,) = ex.summarize(table).to_dict("records")
    assert entry["accuracy_ci_high"] == 1.0 and entry["accuracy_ci_low"] < entry["accuracy_mean"]


@pytest.mark.slow
def test_feature_claim_prefers_the_paired_comparison(results):
    both = ex.table2({"paired": results["paired"], "ablations": results["ablations"]})[0]
    paired_only = ex.table2({"paired": results["paired"]})[0]
    assert both["status"] == paired_only["status"]
    assert both["verdict"].startswith("Against the classical twin (paired comparison)")
    assert "Against no middle layer at all (ablations)" in both["verdict"]
    assert ex.table2({"ablations": results["ablations"]})[0]["verdict"].startswith(
        "Against the classical twin (ablations)"
    )
    assert [c.tag for c in results["ablations"].comparisons] == ["no_circuit", "depth_2", "twin"]


@pytest.mark.slow
def test_summary_table_is_readable(results):
    table = ex.summary_table(results["low_data"])
    assert table.iloc[0]["model"] == ex.HYBRID and "(95% CI" in table.iloc[0]["accuracy (95% CI)"]


def test_configuration_is_validated():
    with pytest.raises(ConfigError, match="Unknown study"):
        ex.run_study("magic", CONFIG, TINY)
    with pytest.raises(ConfigError, match="Unknown preset"):
        ex.run_study("paired", CONFIG, "huge")
    with pytest.raises(ConfigError, match="Unknown executor"):
        ex.run_study("paired", CONFIG, TINY, executor="spark")
    with pytest.raises(HQCNNError, match="Unknown dataset"):
        ex.run_study("paired", ex.ExperimentConfig(dataset="nosuchmnist"), TINY)
    with pytest.raises(ConfigError, match="seeds"):
        ex.ExperimentConfig(seeds=0)
    with pytest.raises(ConfigError, match="Unknown preset setting"):
        ex.Preset.from_dict({**TINY.to_dict(), "speed": "fast"})
    with pytest.raises(ConfigError, match="Depolarising"):
        bad = ex.Preset(name="x", seeds=1, step_budget=None, grids={"hardware_noise": {"depolarizing": (2.0,)}})
        ex.STUDIES["hardware_noise"].tasks(CONFIG, bad)
    assert ex.ExperimentConfig(model=ModelConfig(kind="classical")).model.kind == "hybrid"
    assert ex.ExperimentConfig.from_dict(CONFIG.to_dict()) == CONFIG


def test_presets_train_with_the_recipe_and_quick_caps_the_steps():
    from hqcnn.recipes import recommended_train_config

    quick, full = (ex.registry.Budget.of(ex.ExperimentConfig(), ex.PRESETS[p]) for p in ("quick", "full"))
    recipe = recommended_train_config(4708, seed=0)
    assert tasks.train_config(4708, 0, full).epochs == recipe.epochs
    assert tasks.train_config(4708, 0, quick).epochs < recipe.epochs
    assert tasks.train_config(4708, 0, quick).batch_size == recipe.batch_size
    assert tasks.train_config(4708, 0, quick).threads is None  # set once per process, never from a worker thread


def test_cli_offers_every_study_and_preset(capsys):
    from hqcnn.__main__ import main

    with pytest.raises(SystemExit):
        main(["experiment", "--help"])
    text = capsys.readouterr().out
    for name in [*ex.STUDIES, *ex.PRESETS, *ex.EXECUTORS, "--address", "--resume", "--qubits"]:
        assert name in text


def test_cli_runs_a_study_and_writes_the_run_folder(monkeypatch, tmp_path, capsys):
    from hqcnn.__main__ import main

    monkeypatch.setitem(ex.PRESETS, "quick", TINY)  # the CLI's quick preset, shrunk for the test
    out = tmp_path / "paired"
    status = main(["experiment", "paired", "--qubits", "3", "--depth", "1", "--out", str(out), "--quiet"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "Paired comparison on pneumoniamnist" in printed and "Reproduce:" in printed
    assert "hybrid − classical twin" in printed
    assert {"results.csv", "results.json", "summary.csv", "tasks.jsonl"} <= {p.name for p in out.iterdir()}
    saved = ex.ExperimentResult.load(out)
    assert "--qubits 3 --depth 1" in saved.command and "--features" not in saved.command  # 2 per qubit follows
    status = main(["experiment", "paired", "--seeds", "1", "--qubits", "3", "--depth", "1", "--json", "--out", str(tmp_path / "one")])
    assert status == 0
    assert json.loads(capsys.readouterr().out)["seeds"] == [0]
    assert main(["experiment", "paired", "--qubits", "3", "--depth", "1", "--out", str(out), "--resume", "--quiet"]) == 0
    assert "Resumed: 4 of 4" in capsys.readouterr().out
    assert main(["experiment", "paired", "--dataset", "nosuchmnist", "--quiet", "--out", str(tmp_path / "x")]) == 2



def test_fisher_criterion_and_probe_match_hand_computations():
    from hqcnn.experiments.studies.representation import fisher_criterion, linear_probe_accuracy

    values = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 4.0], [6.0, 4.0]])
    labels = np.array([0, 0, 1, 1])
    # Centres (1, 0) and (5, 4) around (3, 2): between = 2·(4 + 4) · 2 = 32; within = 4 · 1 = 4.
    assert fisher_criterion(values, labels) == pytest.approx(8.0)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 1, (100, 4)), rng.normal(3, 1, (100, 4))])
    y = np.repeat([0, 1], 100)
    assert linear_probe_accuracy(x, y, x, y) == 1.0  # separable classes
    assert linear_probe_accuracy(x, y, x, 1 - y) == 0.0


@pytest.mark.slow
def test_the_representation_study_feeds_the_feature_claim(results):
    table = results["representation"].table
    assert table["probe_accuracy"].between(0, 1).all() and (table["fisher"] > 0).all()
    assert set(table["head_inputs"]) == {3}  # one ⟨Z⟩ per qubit, as many twin outputs
    row = ex.table2({"representation": results["representation"]})[0]
    assert row["verdict"].startswith("The head's inputs themselves (representation)")
    assert row["status"] != ex.NOT_MEASURED


def test_deletion_and_insertion_areas_match_a_hand_computation():
    from hqcnn.experiments.studies.interpretability import curve_areas

    class TwoPixels(torch.nn.Module):  # logit of class 1 = 2 · pixel 0 + 0 · pixel 1
        def forward(self, x):
            z = 2 * x[:, 0, 0, 0]
            return torch.stack([torch.zeros_like(z), z], dim=1)

    x = torch.tensor([[[1.0, 3.0]]])  # one channel, 1 × 2 pixels
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    # Two steps: 0, 1, 2 pixels. Deleting pixel 0 first: p = σ(2), σ(0), σ(0); inserting it first: σ(0), σ(2), σ(2).
    deletion, insertion = curve_areas(TwoPixels(), x, np.array([0, 1]), target=1, steps=2)
    assert deletion == pytest.approx(0.25 * sigmoid(2) + 0.5 * sigmoid(0) + 0.25 * sigmoid(0))
    assert insertion == pytest.approx(0.25 * sigmoid(0) + 0.5 * sigmoid(2) + 0.25 * sigmoid(2))
    wrong_deletion, _ = curve_areas(TwoPixels(), x, np.array([1, 0]), target=1, steps=2)
    assert wrong_deletion > deletion  # the right order removes the evidence sooner


@pytest.mark.slow
def test_the_interpretability_study_randomises_only_the_middle_layer(results):
    from hqcnn.experiments.studies.interpretability import randomised_middle
    from hqcnn.train import run as train

    config = ex.ExperimentConfig(model=ModelConfig(n_qubits=3, depth=1, n_features=6))
    for kind in ("hybrid", "classical"):
        outcome = train(RunConfig(data=DataConfig(train_per_class=10), model=replace(config.model, kind=kind), train=TrainConfig(epochs=1)))
        model = outcome.result.model
        other = randomised_middle(model, seed=3)
        before, after = dict(model.named_parameters()), dict(other.named_parameters())
        changed = {name for name in before if not torch.equal(before[name], after[name])}
        assert changed and all(name.startswith("middle.") for name in changed)
    table = results["interpretability"].table
    assert set(table["condition"]) == {"Saliency", "Grad-CAM"}
    assert table["sanity_rank_correlation"].dropna().between(-1, 1).all()
    row = next(r for r in ex.table2(results) if r["claim"] == "Better interpretability")
    assert row["status"] != ex.NOT_MEASURED and "Saliency: faithfulness hybrid" in row["verdict"]
