"""The command line end to end on a small subset of the bundled data."""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hqcnn", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
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
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "metrics.json", "MODEL_CARD.md"}
    assert "research and teaching only" in (out / "MODEL_CARD.md").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"accuracy", "auc", "precision", "recall", "specificity", "f1"}
    assert set(metrics["params"]) >= {"backbone", "quantum", "head", "total"}
    assert metrics["params"]["quantum"] == 3 * 1 * 2 and metrics["seconds"] > 0
    evaluated = _cli("evaluate", "--run", str(out), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    # Re-evaluating the saved model reproduces the metrics recorded at training time.
    assert json.loads(evaluated.stdout)["test"]["accuracy"] == metrics["test"]["accuracy"]
    _predict_reads_images_and_warns_of_unusual_ones(out, tmp_path)


def _predict_reads_images_and_warns_of_unusual_ones(run: Path, tmp_path: Path) -> None:
    """`predict` on a saved BreastMNIST run: a test image, a drawn ellipse, a file that is no image."""
    import numpy as np
    from PIL import Image

    from hqcnn import checkpoint
    from hqcnn.config import DataConfig
    from hqcnn.data import load_arrays
    from hqcnn.imageio import image_to_model_input
    from hqcnn.posthoc import answer

    image = load_arrays("breastmnist", 28)["test"][0][0]
    Image.fromarray(image).save(tmp_path / "scan.png")
    yy, xx = np.mgrid[:64, :64]
    Image.fromarray(((((xx - 32) / 20) ** 2 + ((yy - 32) / 12) ** 2 < 1) * 255).astype(np.uint8)).save(
        tmp_path / "ellipse.png"
    )
    (tmp_path / "notes.png").write_bytes(b"not an image")
    done = _cli("predict", "--run", str(run), str(tmp_path / "scan.png"), str(tmp_path / "ellipse.png"), "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["images"]
    saved = checkpoint.load(run)
    expected = answer(
        saved.model, saved.posthoc, image_to_model_input((tmp_path / "scan.png").read_bytes(), saved.meta, DataConfig())
    )
    assert rows[0]["calibrated_probabilities"]["malignant"] == pytest.approx(expected.probabilities[0, 0], abs=1e-6)
    assert rows[1]["unusual"] is True
    words = _cli("predict", "--run", str(run), str(tmp_path / "ellipse.png"), str(tmp_path / "notes.png"))
    assert words.returncode == 2 and "does not look like the training data" in words.stdout
    assert "notes.png: cannot be read" in words.stderr and "Traceback" not in words.stderr


@pytest.mark.slow
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


@pytest.mark.slow
def test_datasets_lists_states():
    done = _cli("datasets")
    assert done.returncode == 0
    assert "pneumoniamnist" in done.stdout and "bundled" in done.stdout and "downloadable" in done.stdout


@pytest.mark.slow
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


# Every flag `train` had before its flags were made from the config declarations.
TRAIN_FLAGS = {
    "--dataset", "--source-size", "--image-size", "--grayscale", "--no-normalize", "--train-per-class", "--noise",
    "--model", "--qubits", "--depth", "--features", "--entangler", "--encoding", "--recipe", "--epochs", "--lr",
    "--batch-size", "--average-last", "--seed", "--class-weights", "--no-augment", "--device", "--out",
    "--overwrite", "--quiet",
}  # fmt: skip


def _train_parser():
    from hqcnn.__main__ import build_parser

    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices["train"]


def test_train_keeps_every_flag_and_fills_the_configs():
    from hqcnn.__main__ import run_config_from_args
    from hqcnn.config import DataConfig, ModelConfig, TrainConfig

    parser = _train_parser()
    assert TRAIN_FLAGS <= {s for action in parser._actions for s in action.option_strings}
    config = run_config_from_args(parser.parse_args([
        "--dataset", "breastmnist", "--source-size", "64", "--image-size", "32", "--grayscale", "--no-normalize",
        "--train-per-class", "30", "--noise", "0.1", "--model", "classical", "--qubits", "5", "--depth", "3",
        "--entangler", "chain", "--encoding", "ry", "--epochs", "4", "--lr", "0.01", "--batch-size", "32",
        "--average-last", "0.5", "--seed", "7", "--class-weights", "--no-augment", "--device", "cpu",
    ]))  # fmt: skip
    assert config.data == DataConfig(
        dataset="breastmnist", source_size=64, image_size=32, grayscale=True, normalize=False, train_per_class=30,
        noise_std=0.1, seed=7,
    )  # fmt: skip
    # The features, not given, are two per qubit.
    assert config.model == ModelConfig(
        kind="classical", n_qubits=5, depth=3, n_features=10, entangler="chain", encoding="ry"
    )
    assert config.train == TrainConfig(
        epochs=4, lr=0.01, batch_size=32, average_last=0.5, seed=7, class_weights=True, augment=False, device="cpu"
    )
    plain = run_config_from_args(parser.parse_args([]))
    assert (plain.data, plain.model, plain.train) == (DataConfig(), ModelConfig(), TrainConfig())


def test_config_to_args_reproduces_a_train_command():
    from hqcnn.__main__ import DATA_FLAGS, MODEL_FLAGS, run_config_from_args
    from hqcnn.cli_options import config_to_args
    from hqcnn.config import DataConfig, ModelConfig, RunConfig

    wanted = RunConfig(
        data=DataConfig(dataset="breastmnist", image_size=64, normalize=False, noise_std=0.05),
        model=ModelConfig(n_qubits=3, n_features=9, encoding="reupload"),
    )
    argv = config_to_args(wanted.data, names=DATA_FLAGS) + config_to_args(wanted.model, names=MODEL_FLAGS)
    assert argv[:2] == ["--dataset", "breastmnist"] and "--no-normalize" in argv
    assert run_config_from_args(_train_parser().parse_args(argv)) == wanted


@pytest.mark.slow
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


# --- the run folder: checked before training, written completely or not at all --------------------

TINY = ("--dataset", "breastmnist", "--qubits", "2", "--depth", "1", "--epochs", "1", "--train-per-class", "10",
        "--batch-size", "16")  # fmt: skip
RUN_FILES = {"model.safetensors", "config.json", "metrics.json", "MODEL_CARD.md"}


def _main(capsys: pytest.CaptureFixture, *args: str) -> subprocess.CompletedProcess:
    """`python -m hqcnn` in this process (torch is imported once for all calls), as a CompletedProcess."""
    from hqcnn.__main__ import main

    status = main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, status, captured.out, captured.err)


def _refused_before_training(done: subprocess.CompletedProcess, message: str) -> None:
    assert done.returncode == 2, done.stderr
    assert re.search(message, done.stderr) and "Traceback" not in done.stderr, done.stderr
    # No progress bar (stderr) and no epoch line (stdout): not one batch was trained.
    assert "training" not in done.stderr and "epoch" not in done.stdout


def _hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_bad_out_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("my notes")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.png").write_bytes(b"not a model")
    for out, extra, message in [
        (tmp_path / "notes.txt", [], r"notes.txt is a file, not a folder"),
        (tmp_path / "notes.txt" / "run", [], r"Cannot create the folder .*notes.txt is a file, not a folder"),
        (tmp_path / "photos", ["--overwrite"], r"already holds other files \('cat.png'\).*even with --overwrite"),
    ]:
        _refused_before_training(_main(capsys, "train", *TINY, "--out", str(out), *extra), message)
    assert (tmp_path / "notes.txt").read_text() == "my notes"
    assert [p.name for p in (tmp_path / "photos").iterdir()] == ["cat.png"] and _hidden(tmp_path) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write into any folder")
def test_unwritable_parent_is_refused_before_training(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        _refused_before_training(
            _main(capsys, "train", *TINY, "--out", str(locked / "run")), r"Cannot write into .*locked"
        )
    finally:
        locked.chmod(0o700)


def test_run_folder_is_replaced_only_with_overwrite(tmp_path, capsys):
    out = tmp_path / "runs" / "demo"
    done = _main(capsys, "train", *TINY, "--seed", "0", "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} == RUN_FILES and _hidden(out.parent) == []
    before = {name: (out / name).read_bytes() for name in RUN_FILES}

    refused = _main(capsys, "train", *TINY, "--seed", "1", "--out", str(out))
    _refused_before_training(refused, r"already holds a saved model.*--overwrite")
    assert {name: (out / name).read_bytes() for name in RUN_FILES} == before

    done = _main(capsys, "train", *TINY, "--seed", "1", "--out", str(out), "--overwrite", "--quiet")
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} == RUN_FILES and _hidden(out.parent) == []
    assert json.loads((out / "config.json").read_text())["config"]["train"]["seed"] == 1


def test_failed_save_leaves_no_partial_folder_and_keeps_the_model(tmp_path, monkeypatch, capsys):
    from hqcnn import checkpoint

    runs, spare = tmp_path / "runs", tmp_path / "spare"
    runs.mkdir()
    spare.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spare))  # where the fallback folder goes
    real_open = Path.open

    def disk_full_in_runs(self, mode="r", *args, **kwargs):
        # The weights and config.json are written, then the disk is full: a failure half-way through.
        if self.parent.parent == runs and self.name == "metrics.json" and "w" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", disk_full_in_runs)
    done = _main(capsys, "train", *TINY, "--out", str(runs / "demo"), "--quiet")
    err = done.stderr
    assert done.returncode == 2 and "could not be saved to" in err and "No space left on device" in err, err
    assert list(runs.iterdir()) == []  # neither the run folder nor a hidden partial one
    (kept,) = spare.glob("hqcnn-unsaved-run-*")  # other libraries may use the temporary folder too
    assert f"saved instead to {kept}" in err and {p.name for p in kept.iterdir()} == RUN_FILES
    assert checkpoint.load(kept).metrics["test"]["accuracy"] >= 0
