"""Every experiment end to end on a tiny slice of the bundled data: rows, summaries, figures, saving,
determinism, the noisy-simulator check, the stop flag, Table 2 and the command line."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from hqcnn import experiments as ex
from hqcnn import experiments_cli
from hqcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from hqcnn.errors import ConfigError, HQCNNError
from hqcnn.experiments import claims, runner, studies  # private helpers live in their modules
from hqcnn.train import predict_proba, run
from tests.test_plots import check_house_rules

# One epoch on 20 images per class: seconds per experiment, enough to exercise every code path.
TINY = ex.Preset(
    name="tiny",
    seeds=2,
    paired_seeds=2,
    step_budget=None,
    max_epochs=1,
    train_per_class=20,
    sweep_train_per_class=20,
    low_data_sizes=(5, 20),
    gaussian_sigmas=(0.0, 0.2),
    salt_pepper_amounts=(0.0, 0.1),
    depolarizing=(0.0, 0.05),
    shots=(None, 100),
    hardware_images=60,
    circuit_sizes=((2, 1),),
    widths=((4, 8),),
    ablations=("baseline", "no_circuit", "depth_2", "twin"),
)
CONFIG = ex.ExperimentConfig(dataset="pneumoniamnist", model=ModelConfig(n_qubits=3, depth=1, n_features=6))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def results() -> dict[str, ex.ExperimentResult]:
    """Each experiment run once on the tiny preset, with its progress reports."""
    out = {}
    for name in ex.EXPERIMENTS:
        reports: list[tuple[float, int, str]] = []
        out[name] = ex.run_experiment(name, CONFIG, TINY, callback=lambda d, t, m, r=reports: r.append((d, t, m)))
        out[name].reports = reports  # type: ignore[attr-defined]
    return out


EXPECTED_ROWS = {
    "low_data": 2 * 2 * 2,  # sizes × seeds × models
    "input_noise": 2 * 2 * 4,  # seeds × models × (2 Gaussian + 2 salt-and-pepper levels)
    "hardware_noise": 2 * (2 + 2 * 2),  # seeds × (as trained + twin + p × shots)
    "param_efficiency": 2 * 2 * 2,  # conditions × seeds × models
    "ablations": 2 * 4,  # seeds × (baseline, no circuit, depth 2, twin); the baseline has depth 1
    "paired": 2 * 2,
}


@pytest.mark.parametrize("name", list(ex.EXPERIMENTS))
def test_every_experiment_runs_end_to_end(results, name):
    result = results[name]
    assert not result.stopped
    assert result.seeds == [0, 1]
    assert len(result.rows) == EXPECTED_ROWS[name]
    for row in result.rows:
        assert {"model", "condition", "seed", "accuracy", "auc", "params", "dataset"} <= set(row)
        assert 0.0 <= row["accuracy"] <= 1.0
        assert row["dataset"] == "pneumoniamnist"
    models = {row["model"] for row in result.rows}
    assert {ex.HYBRID, ex.TWIN} <= models
    # The summary has one entry per model × condition, with a mean inside its interval.
    summary = result.summary
    assert len(summary) == len({(r["model"], r["condition"]) for r in result.rows})
    for entry in summary:
        assert entry["n"] == 2
        assert entry["accuracy_ci_low"] <= entry["accuracy_mean"] <= entry["accuracy_ci_high"]
    assert result.comparisons and all(c["verdict"] for c in result.comparisons)
    # Progress went from 0 to done, in order, and ended at the total.
    done = [d for d, _, _ in result.reports]
    assert done == sorted(done) and result.reports[-1][0] == result.reports[-1][1]
    assert result.command.startswith(f"python -m hqcnn experiment {name} --preset tiny")
    assert result.versions["torch"] and result.started_at <= result.finished_at


@pytest.mark.parametrize("name", list(ex.EXPERIMENTS))
def test_every_figure_follows_the_house_rules_and_shows_uncertainty(results, name):
    figures = ex.figures(results[name])
    assert figures
    for fig in figures.values():
        check_house_rules(fig)
        has_band = any(getattr(t, "fill", None) == "toself" for t in fig.data)
        has_bars = any(getattr(t, "error_y", None) is not None and t.error_y.array is not None for t in fig.data)
        assert has_band or has_bars, f"{fig.layout.title.text} shows no confidence band or error bar"


def test_the_paired_comparison_pairs_by_seed(results):
    rows = results["paired"].rows
    comp = next(c for c in results["paired"].comparisons if c["metric"] == "accuracy")
    hybrid = {r["seed"]: r["accuracy"] for r in rows if r["model"] == ex.HYBRID}
    twin = {r["seed"]: r["accuracy"] for r in rows if r["model"] == ex.TWIN}
    assert comp["diffs"] == pytest.approx([hybrid[s] - twin[s] for s in (0, 1)])
    gap = next(c for c in results["paired"].comparisons if c["metric"] == "generalisation_gap")
    assert gap["n"] == 2
    for r in rows:
        assert r["generalisation_gap"] == pytest.approx(r["train_accuracy"] - r["accuracy"])


def test_the_twin_is_parameter_matched(results):
    for row in results["param_efficiency"].rows:
        twin = next(
            r
            for r in results["param_efficiency"].rows
            if r["model"] == ex.TWIN and r["condition"] == row["condition"] and r["seed"] == row["seed"]
        )
        assert abs(row["params"] - twin["params"]) <= 8  # the twin's rank rounds to the nearest size
    assert {r["channels"] for r in results["param_efficiency"].rows} == {"8-16", "4-8"}


def test_low_data_subsets_differ_by_seed_and_are_shared_by_the_models(results):
    rows = results["low_data"].rows
    small = [r for r in rows if r["train_per_class"] == 5]
    assert {r["n_train"] for r in small} == {10}
    assert {r["x"] for r in small} == {5}


def test_input_noise_uses_the_same_noisy_images_for_both_models(results):
    rows = results["input_noise"].rows
    clean = {(r["model"], r["seed"]): r["accuracy"] for r in rows if r["level"] == 0 and r["noise"] == "gaussian"}
    again = {(r["model"], r["seed"]): r["accuracy"] for r in rows if r["level"] == 0 and r["noise"] == "salt_pepper"}
    assert clean == again  # level 0 is the clean test set under both noise types
    robust = ex.robustness_comparisons(rows)
    assert {c["noise"] for c in robust} == {"gaussian", "salt_pepper"}


def test_noisy_inputs_stay_in_pixel_range():
    data = runner._Runner("input_noise", CONFIG, TINY, None, None).data(20, 0)
    for noise in ("gaussian", "salt_pepper"):
        x = studies._noisy_inputs(data, noise, 0.3, 1)
        x01 = x * torch.tensor(data.std).view(1, -1, 1, 1) + torch.tensor(data.mean).view(1, -1, 1, 1)
        assert x01.min() >= -1e-5 and x01.max() <= 1 + 1e-5
        assert not torch.allclose(x, data.x_test)


@pytest.fixture(scope="module")
def trained_hybrid():
    config = RunConfig(
        data=DataConfig(dataset="pneumoniamnist", train_per_class=20),
        model=ModelConfig(n_qubits=3, depth=2, n_features=6),
        train=TrainConfig(epochs=2, batch_size=16, threads=1),
    )
    return run(config)


def test_noiseless_mixed_simulation_reproduces_the_trained_model(trained_hybrid):
    model = trained_hybrid.result.model
    x = trained_hybrid.data.x_test[:80]
    exact = ex.noisy_predict_proba(model, x, noise=0.0, shots=None)
    reference = predict_proba(model, x)
    np.testing.assert_allclose(exact, reference, atol=1e-5)
    assert (exact.argmax(1) == reference.argmax(1)).all()
    noisy = ex.noisy_predict_proba(model, x, noise=0.05)
    assert not np.allclose(noisy, reference, atol=1e-4)  # the noise does something


def test_hardware_rows_show_exact_equals_model(results):
    assert claims._exact_matches_model(results["hardware_noise"].rows) is True
    rows = results["hardware_noise"].rows
    assert {r["n_eval"] for r in rows} == {60}
    assert {r["shots"] for r in rows if r.get("simulator") == "default.mixed"} == {"exact", "100 shots"}


def test_finite_shots_are_reproducible_from_the_seed(trained_hybrid):
    model = trained_hybrid.result.model
    x = trained_hybrid.data.x_test[:20]
    first = ex.noisy_predict_proba(model, x, noise=0.01, shots=50, seed=5)
    again = ex.noisy_predict_proba(model, x, noise=0.01, shots=50, seed=5)
    other = ex.noisy_predict_proba(model, x, noise=0.01, shots=50, seed=6)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_the_classical_twin_has_no_circuit_to_run(trained_hybrid):
    twin = run(
        RunConfig(data=trained_hybrid.config.data, model=ModelConfig(kind="classical"), train=TrainConfig(epochs=1))
    )
    with pytest.raises(ConfigError, match="Only the hybrid"):
        ex.noisy_predict_proba(twin.result.model, twin.data.x_test[:4])


def test_same_preset_and_seed_give_the_same_rows(results):
    again = ex.run_experiment("paired", CONFIG, TINY)
    assert ex.strip_timing(again.rows) == ex.strip_timing(results["paired"].rows)
    shifted = ex.run_experiment("paired", ex.ExperimentConfig(**{**CONFIG.__dict__, "base_seed": 5}), TINY)
    assert shifted.seeds == [5, 6]
    assert ex.strip_timing(shifted.rows) != ex.strip_timing(results["paired"].rows)


def test_save_and_load_round_trip(results, tmp_path):
    for name, result in results.items():
        folder = result.save(tmp_path / name)
        assert {p.name for p in folder.iterdir()} == {"results.csv", "summary.csv", "results.json"}
        saved = json.loads((folder / "results.json").read_text())
        assert saved["config"]["dataset"] == "pneumoniamnist" and saved["preset"]["name"] == "tiny"
        assert saved["seeds"] == [0, 1] and saved["versions"]["pennylane"]
        loaded = ex.ExperimentResult.load(folder)
        assert loaded.rows == result.rows
        assert loaded.summary == result.summary
        assert json.dumps(loaded.comparisons) == json.dumps(result.comparisons)
        assert ex.Preset.from_dict(loaded.preset) == TINY
        assert ex.ExperimentConfig.from_dict(loaded.config) == CONFIG
        header = (folder / "results.csv").read_text().splitlines()[0].split(",")
        assert {"model", "condition", "seed", "accuracy", "auc", "kept"} <= set(header)
        assert len((folder / "results.csv").read_text().splitlines()) == len(result.rows) + 1
    assert [p.name for p in ex.list_runs(tmp_path)][0] == "paired"  # newest first


def test_a_multi_class_rgb_dataset_works(tmp_path):
    config = ex.ExperimentConfig(dataset="retinamnist", model=ModelConfig(n_qubits=2, depth=1, n_features=4))
    result = ex.run_experiment("hardware_noise", config, TINY)
    assert {r["n_eval"] for r in result.rows} == {60}
    assert claims._exact_matches_model(result.rows) is True
    assert all(r["auc"] is not None for r in result.rows)
    folder = ex.default_folder(result, tmp_path)
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
    with pytest.raises(HQCNNError, match="unknown experiment"):
        ex.ExperimentResult.from_json({**bad, "name": "magic"})


def test_stop_before_the_start_records_nothing():
    stop = threading.Event()
    stop.set()
    result = ex.run_experiment("low_data", CONFIG, TINY, stop=stop)
    assert result.stopped and result.rows == []
    assert any("Stopped by the user" in n for n in result.notes)
    assert ex.figures(result) == {}


def test_stop_during_a_run_keeps_only_finished_runs():
    stop = threading.Event()

    def callback(done: float, total: int, message: str) -> None:
        if done >= 3:  # after three training runs
            stop.set()

    result = ex.run_experiment("param_efficiency", CONFIG, TINY, callback=callback, stop=stop)
    assert result.stopped
    assert 3 <= len(result.rows) < EXPECTED_ROWS["param_efficiency"]


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
        if row["claim"] == "Better interpretability":
            assert row["status"] == "Not measured" and "needs a study with people" in row["verdict"]
        else:
            assert row["status"] == ex.NOT_MEASURED and row["verdict"].startswith(ex.NOT_MEASURED)
        assert row["figure"]
    full = ex.table2(results)
    for row in full:
        assert not row["verdict"].startswith(ex.NOT_MEASURED), row
        assert row["status"] != ex.NOT_MEASURED, row
        if row["claim"] != "Better interpretability":
            assert "tiny preset, 2 seeds, pneumoniamnist" in row["source"]
    assert any(
        "p =" in row["verdict"] or "no t-test" in row["verdict"] or "did not differ" in row["verdict"] for row in full
    )


def test_ablation_variants_that_equal_the_baseline_are_run_once():
    base = ModelConfig(depth=2)
    variants = studies._ablation_variants(base, ("baseline", "depth_2", "depth_3", "entangler_ring", "twin"))
    assert [key for key, *_ in variants] == ["baseline", "depth_3", "twin"]
    assert variants[0][1] == "baseline: ring, depth 2, layered"


def _comp(diffs, good_first=True):
    from hqcnn.stats import paired_comparison

    return {"n": len(diffs), **paired_comparison(diffs).to_dict()}


def test_claim_status_words(monkeypatch):
    cases = {
        "supported": ([_comp([0.05, 0.06, 0.055, 0.07])], "Supported (4 seeds"),
        "contradicted": ([_comp([-0.05, -0.06, -0.055, -0.07])], "Contradicted (4 seeds"),
        "ns": ([_comp([0.05, -0.06, 0.01])], "No significant difference (3 seeds)"),
        "untested": ([_comp([0.02])], "Untested (1 seed"),
        "mixed": (
            [_comp([0.05, 0.06, 0.055]), _comp([-0.05, -0.06, -0.055])],
            "Mixed: supported at 1, contradicted at 1",
        ),
    }
    for comps, expected in cases.values():
        monkeypatch.setattr(claims, "_key_comparisons", lambda key, results, c=comps: (c, +1, "sizes"))
        assert ex.claim_status("little_data", {}).startswith(expected)
    monkeypatch.setattr(claims, "_key_comparisons", lambda key, results: ([_comp([0.05, 0.06, 0.055, 0.07])], -1, "x"))
    assert ex.claim_status("generalisation", {}).startswith("Contradicted")  # a larger gap is worse


def test_summary_intervals_stay_within_0_and_1():
    rows = [{"model": "hybrid", "condition": "c", "seed": s, "accuracy": a} for s, a in enumerate([0.99, 1.0, 0.9])]
    (entry,) = ex.summarize(rows)
    assert entry["accuracy_ci_high"] == 1.0 and entry["accuracy_ci_low"] < entry["accuracy_mean"]


def test_feature_claim_prefers_the_paired_comparison(results):
    both = ex.table2({"paired": results["paired"], "ablations": results["ablations"]})[0]
    paired_only = ex.table2({"paired": results["paired"]})[0]
    assert both["status"] == paired_only["status"]
    assert both["verdict"].startswith("Against the classical twin (paired comparison)")
    assert "Against no middle layer at all (ablations)" in both["verdict"]
    assert ex.table2({"ablations": results["ablations"]})[0]["verdict"].startswith(
        "Against the classical twin (ablations)"
    )


def test_summary_table_is_readable(results):
    table = ex.summary_table(results["low_data"])
    assert table[0]["model"] == ex.HYBRID and "accuracy (95% CI)" in table[0]


def test_configuration_is_validated():
    with pytest.raises(ConfigError, match="Unknown experiment"):
        ex.run_experiment("magic", CONFIG, TINY)
    with pytest.raises(ConfigError, match="Unknown preset"):
        ex.run_experiment("paired", CONFIG, "huge")
    with pytest.raises(HQCNNError, match="Unknown dataset"):
        ex.run_experiment("paired", ex.ExperimentConfig(dataset="nosuchmnist"), TINY)
    with pytest.raises(ConfigError, match="seeds"):
        ex.ExperimentConfig(seeds=0)
    with pytest.raises(ConfigError, match="Unknown ablation"):
        ex.Preset(name="x", seeds=1, paired_seeds=1, step_budget=None, ablations=("quantum_magic",))
    with pytest.raises(ConfigError, match="Unknown preset setting"):
        ex.Preset.from_dict({**TINY.to_dict(), "speed": "fast"})
    assert ex.ExperimentConfig(model=ModelConfig(kind="classical")).model.kind == "hybrid"
    assert ex.ExperimentConfig.from_dict(CONFIG.to_dict()) == CONFIG


def test_presets_train_with_the_recipe_and_quick_caps_the_steps():
    quick = runner._Runner("paired", ex.ExperimentConfig(), ex.PRESETS["quick"], None, None)
    full = runner._Runner("paired", ex.ExperimentConfig(), ex.PRESETS["full"], None, None)
    from hqcnn.recipes import recommended_train_config

    recipe = recommended_train_config(4708, seed=0)
    assert full.train_config(4708, 0).epochs == recipe.epochs
    assert quick.train_config(4708, 0).epochs < recipe.epochs
    assert quick.train_config(4708, 0).batch_size == recipe.batch_size
    assert quick.train_config(4708, 0).threads == 1


def test_cli_names_match_the_registry():
    assert set(experiments_cli.EXPERIMENT_NAMES) == set(ex.EXPERIMENTS)
    assert set(experiments_cli.PRESET_NAMES) == set(ex.PRESETS)


def test_cli_runs_an_experiment_and_writes_the_run_folder(monkeypatch, tmp_path, capsys):
    from hqcnn.__main__ import main

    monkeypatch.setitem(ex.PRESETS, "quick", TINY)  # the CLI's quick preset, shrunk for the test
    out = tmp_path / "paired"
    status = main(["experiment", "paired", "--qubits", "3", "--depth", "1", "--out", str(out), "--quiet"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "Paired comparison on pneumoniamnist" in printed and "Reproduce:" in printed
    assert "hybrid − classical twin" in printed
    assert (out / "results.csv").is_file() and (out / "results.json").is_file()
    status = main(
        ["experiment", "paired", "--seeds", "1", "--qubits", "3", "--depth", "1", "--json", "--out", str(out)]
    )
    assert status == 0
    assert json.loads(capsys.readouterr().out)["seeds"] == [0]
    assert main(["experiment", "paired", "--dataset", "nosuchmnist", "--quiet"]) == 2
