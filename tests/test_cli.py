"""The command line end to end on a small subset of the bundled data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hqcnn", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_train_then_evaluate(tmp_path):
    out = tmp_path / "demo"
    done = _cli(
        "train",
        "--dataset",
        "breastmnist",
        "--qubits",
        "3",
        "--depth",
        "1",
        "--epochs",
        "2",
        "--train-per-class",
        "30",
        "--batch-size",
        "32",
        "--seed",
        "0",
        "--out",
        str(out),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "metrics.json"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"accuracy", "auc", "precision", "recall", "specificity", "f1"}
    assert set(metrics["params"]) >= {"backbone", "quantum", "head", "total"}
    assert metrics["params"]["quantum"] == 3 * 1 * 2 and metrics["seconds"] > 0
    evaluated = _cli("evaluate", "--run", str(out), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    # Re-evaluating the saved model reproduces the metrics recorded at training time.
    assert json.loads(evaluated.stdout)["test"]["accuracy"] == metrics["test"]["accuracy"]


def test_classical_twin_from_cli(tmp_path):
    done = _cli(
        "train",
        "--model",
        "classical",
        "--epochs",
        "1",
        "--train-per-class",
        "20",
        "--out",
        str(tmp_path / "twin"),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "twin" / "metrics.json").read_text())
    assert metrics["params"]["quantum"] == 0 and metrics["params"]["classical_middle"] == 16


def test_datasets_lists_states():
    done = _cli("datasets")
    assert done.returncode == 0
    assert "pneumoniamnist" in done.stdout and "bundled" in done.stdout and "downloadable" in done.stdout


def test_bad_inputs_give_plain_messages_and_status_2(tmp_path):
    for args, message in [
        (["train", "--dataset", "nosuchmnist"], "Unknown dataset"),
        (["train", "--qubits", "9"], "qubits must be between 2 and 8"),
        (["train", "--depth", "0"], "depth must be between 1 and 8"),
        (["train", "--qubits", "4", "--features", "3"], "features must be between 4 and 12"),
        (["evaluate", "--run", str(tmp_path)], "No model.safetensors"),
    ]:
        done = _cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr


def test_recipe_option_fills_unset_training_options():
    from hqcnn.__main__ import build_parser, run_config_from_args
    from hqcnn.config import TrainConfig
    from hqcnn.recipes import recommended_train_config

    parse = build_parser().parse_args
    plain = run_config_from_args(parse(["train", "--dataset", "breastmnist"])).train
    assert plain == TrainConfig()  # no --recipe: the library defaults, no averaging
    recipe = run_config_from_args(parse(["train", "--dataset", "breastmnist", "--recipe", "--seed", "3"])).train
    assert recipe == recommended_train_config(546, seed=3) and recipe.average_last > 0
    mixed = run_config_from_args(
        parse(["train", "--dataset", "breastmnist", "--recipe", "--epochs", "4", "--average-last", "0"])
    ).train
    assert mixed.epochs == 4 and mixed.average_last == 0 and mixed.lr == recipe.lr
    low_data = run_config_from_args(parse(["train", "--recipe", "--train-per-class", "10"])).train
    assert low_data == recommended_train_config(20)  # the recipe sees the 20 images actually trained on


def test_train_with_averaging_reports_what_it_kept(tmp_path):
    out = tmp_path / "avg"
    done = _cli(
        "train", "--dataset", "breastmnist", "--train-per-class", "20", "--epochs", "2",
        "--batch-size", "16", "--average-last", "0.5", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "kept epoch 2, the only epoch averaged" in done.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["averaged_epochs"] == [2, 2] and set(metrics["val"]) == {"accuracy", "auc"}
