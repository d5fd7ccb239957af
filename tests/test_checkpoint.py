"""Checkpoints: round trip, and every kind of bad file is a clear CheckpointError."""

from __future__ import annotations

import errno
import json
import pathlib
import pickle
import tempfile

import pytest
import torch
from safetensors.torch import save as save_st

from hqcnn import checkpoint
from hqcnn.config import ModelConfig, RunConfig
from hqcnn.datasets_base import ModelMeta
from hqcnn.errors import CheckpointError
from hqcnn.model import build_model
from hqcnn.train import predict_proba, run
from tests.conftest import quick_config


@pytest.fixture(scope="module")
def trained(small_pneumonia):
    outcome = run(quick_config(), data=small_pneumonia)
    meta = ModelMeta.from_data(small_pneumonia)
    return outcome, meta


def test_round_trip_folder_gives_identical_predictions(trained, small_pneumonia, tmp_path):
    outcome, meta = trained
    checkpoint.save(tmp_path, outcome.result.model, outcome.config, meta, outcome.metrics_json())
    loaded = checkpoint.load(tmp_path)
    assert loaded.config == outcome.config and loaded.meta == meta
    assert loaded.metrics["test"]["accuracy"] == outcome.test["accuracy"]
    x = small_pneumonia.x_test[:50]
    assert (predict_proba(loaded.model, x) == predict_proba(outcome.result.model, x)).all()


def test_round_trip_zip(trained):
    outcome, meta = trained
    loaded = checkpoint.from_zip(checkpoint.to_zip(outcome.result.model, outcome.config, meta))
    for (k, a), (_, b) in zip(
        outcome.result.model.state_dict().items(), loaded.model.state_dict().items(), strict=False
    ):
        assert torch.equal(a, b), k


def _files(trained):
    outcome, meta = trained
    return checkpoint.to_bytes(outcome.result.model, outcome.config, meta)


def test_other_architecture_is_rejected(trained):
    files = _files(trained)
    header = json.loads(files["config.json"])
    header["config"]["model"]["n_qubits"] = 5
    header["config"]["model"]["n_features"] = 10
    with pytest.raises(CheckpointError, match="needs|do not fit"):
        checkpoint.from_bytes(files["model.safetensors"], json.dumps(header).encode())


def test_other_class_count_is_rejected(trained):
    files = _files(trained)
    header = json.loads(files["config.json"])
    header["meta"]["label_names"] = ["a", "b", "c"]
    with pytest.raises(CheckpointError, match="shape"):
        checkpoint.from_bytes(files["model.safetensors"], json.dumps(header).encode())


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda h: h.update(format="other"), "not an HQCNN Explorer model"),
        (lambda h: h.update(version=99), "format version"),
        (lambda h: h["config"]["model"].update(depth="two"), "depth must be a whole number"),
        (lambda h: h["config"]["model"].update(depth=10**9), "depth must be between"),
        (lambda h: h["config"]["train"].update(lr=[1]), "learning rate must be a number"),
        (lambda h: h["config"]["model"].update(evil=1), "Unknown ModelConfig"),
        (lambda h: h["meta"].update(std=[0.0]), "normalisation"),
        (lambda h: h["meta"].pop("mean"), "meta"),
    ],
)
def test_malformed_json_is_rejected(trained, mutate, message):
    files = _files(trained)
    header = json.loads(files["config.json"])
    mutate(header)
    with pytest.raises(CheckpointError, match=message):
        checkpoint.from_bytes(files["model.safetensors"], json.dumps(header).encode())


def test_truncated_and_foreign_weights_are_rejected(trained):
    files = _files(trained)
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        checkpoint.from_bytes(files["model.safetensors"][:-100], files["config.json"])
    with pytest.raises(CheckpointError, match="not valid JSON"):
        checkpoint.from_bytes(files["model.safetensors"], b"{not json")
    nan_state = {
        k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
        for k, v in build_model(ModelConfig(), 1, 2).state_dict().items()
    }
    with pytest.raises(CheckpointError, match="not numbers"):
        checkpoint.from_bytes(save_st(nan_state), files["config.json"])


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payload_is_never_executed(trained, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(str(marker)))
    files = _files(trained)
    with pytest.raises(CheckpointError):
        checkpoint.from_bytes(payload, files["config.json"])
    with pytest.raises(CheckpointError):
        checkpoint.from_zip(payload)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.safetensors").write_bytes(payload)
    (tmp_path / "run" / "config.json").write_bytes(files["config.json"])
    with pytest.raises(CheckpointError):
        checkpoint.load(tmp_path / "run")
    assert not marker.exists()


def test_missing_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="No model.safetensors"):
        checkpoint.load(tmp_path)
    with pytest.raises(CheckpointError, match="not a zip"):
        checkpoint.from_zip(b"hello")


def test_run_config_round_trip_through_json():
    config = RunConfig()
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def _header(trained) -> tuple[bytes, dict]:
    files = _files(trained)
    return files["model.safetensors"], json.loads(files["config.json"])


@pytest.mark.parametrize(
    "mutate,message",
    [
        (
            lambda h: h["meta"].update(image_size=100000),
            r"image size must be one of 28, 32, 64, 128 pixels; found 100000",
        ),
        (lambda h: h["meta"].update(image_size=-5), r"image size must be one of .*found -5"),
        (lambda h: h["meta"].update(image_size="28"), r"image size must be one of .*found no whole number"),
        (lambda h: h["meta"].update(image_size=64), r"takes 64×64 images, but its data settings say 28×28"),
        (lambda h: h["config"]["data"].update(image_size=64), r"takes 28×28 images, but its data settings say 64×64"),
        (lambda h: h.update(comment="hi"), r"unknown entry at its top level: 'comment'"),
        (lambda h: h["meta"].update(colour=True), r"unknown entry in its 'meta' section: 'colour'"),
        (lambda h: h["config"].update(extra={}), r"unknown entry in its 'config' section: 'extra'"),
        (lambda h: h["config"].pop("train"), r"'config' section lacks the 'train' settings"),
        (lambda h: h["meta"].pop("image_size"), r"'meta' section lacks 'image_size'"),
        (lambda h: h.update(meta=[1, 2]), r"no 'meta' section"),
        (lambda h: h["meta"].update(label_names=["normal"]), r"2 to 100 class names, found 1"),
        (lambda h: h["meta"].update(label_names="normal,pneumonia"), r"2 to 100 class names, found none"),
        (lambda h: h["meta"].update(label_names=[f"c{i}" for i in range(101)]), r"2 to 100 class names, found 101"),
        (
            lambda h: h["meta"].update(label_names=["normal", ""]),
            r"class name must be .* 1 to 255 characters; found ''",
        ),
        (lambda h: h["meta"].update(label_names=["normal", "  "]), r"class name must be"),
        (lambda h: h["meta"].update(label_names=["normal", 7]), r"class name must be .*found a value that is not text"),
        (lambda h: h["meta"].update(label_names=["normal", "x" * 256]), r"1 to 255 characters; found 'x{40}…'"),
        (
            lambda h: h["meta"].update(label_names=["normal", "normal"]),
            r"class name\(s\) 'normal' appear more than once",
        ),
        (lambda h: h["meta"].update(in_channels=2), r"1 channel \(gray\) or 3 \(colour\)"),
        (lambda h: h["meta"].update(in_channels=True), r"1 channel \(gray\) or 3 \(colour\)"),
        (
            lambda h: h["meta"].update(in_channels=3, mean=[0.5] * 3, std=[0.2] * 3),
            r"images with 3 channel\(s\), but its data settings give 1",
        ),
        (lambda h: h["meta"].update(mean=[0.5, 0.5]), r"normalisation statistics \('mean'\) must be a list of 1"),
        (lambda h: h["meta"].update(std=[0.2] * 10_000), r"normalisation statistics \('std'\) must be a list of 1"),
        (lambda h: h["meta"].update(mean=[float("nan")]), "holds a number that is not finite"),
        (lambda h: h["meta"].update(std=[True]), r"normalisation statistics \('std'\) are not valid numbers"),
        (lambda h: h["meta"].update(mean=[5.0]), r"normalisation statistics are out of range"),
        (lambda h: h["meta"].update(std=[-0.1]), r"normalisation statistics are out of range"),
        (lambda h: h["meta"].update(dataset=3), r"dataset name .* not a name"),
        (lambda h: h["meta"].update(dataset="breastmnist"), r"two different datasets"),
    ],
)
def test_every_meta_and_header_entry_is_validated(trained, mutate, message):
    weights, header = _header(trained)
    mutate(header)
    with pytest.raises(CheckpointError, match=message):
        checkpoint.from_bytes(weights, json.dumps(header).encode())


def test_names_from_a_file_are_cut_and_stripped_of_markup(trained):
    weights, header = _header(trained)
    for i in range(5):
        header[f"[click](http://evil.example/{i})" + "y" * 100] = 1
    with pytest.raises(CheckpointError) as caught:
        checkpoint.from_bytes(weights, json.dumps(header).encode())
    message = str(caught.value)
    assert "unknown entries at its top level" in message and "and 2 more" in message
    assert "[" not in message and "(http" not in message and "y" * 41 not in message
    header = _header(trained)[1]
    header["config"]["model"]["<b>" + "z" * 5000] = 1
    with pytest.raises(CheckpointError, match=r"Unknown ModelConfig setting\(s\): '\?b\?z{37}…'") as caught:
        checkpoint.from_bytes(weights, json.dumps(header).encode())
    assert len(str(caught.value)) < 200


def test_odd_values_are_never_echoed_at_length(trained):
    weights, header = _header(trained)
    header["version"] = "9" * 100_000
    with pytest.raises(CheckpointError, match="format version unknown; expected 1"):
        checkpoint.from_bytes(weights, json.dumps(header).encode())
    header = _header(trained)[1]
    header["config"]["model"]["depth"] = "two" * 100_000
    with pytest.raises(CheckpointError, match="depth must be a whole number") as caught:
        checkpoint.from_bytes(weights, json.dumps(header).encode())
    assert len(str(caught.value)) < 400
    with pytest.raises(CheckpointError, match="nested too deeply"):
        checkpoint.from_bytes(weights, b"[" * 100_000 + b"]" * 100_000)


def test_metrics_must_be_an_object(trained):
    files = _files(trained)
    weights, config_json = files["model.safetensors"], files["config.json"]
    assert checkpoint.from_bytes(weights, config_json, b'{"best_epoch": 3}').metrics == {"best_epoch": 3}
    with pytest.raises(CheckpointError, match="'test.precision' is missing"):  # the Train page reads them all
        checkpoint.from_bytes(weights, config_json, b'{"test": {"accuracy": 0.5}}')
    for blob in (b"[1, 2]", b"null", b'"text"'):
        with pytest.raises(CheckpointError, match="metrics.json does not hold a model's test results"):
            checkpoint.from_bytes(weights, config_json, blob)
    with pytest.raises(CheckpointError, match="metrics.json is too large"):
        checkpoint.from_bytes(weights, config_json, b" " * (checkpoint.MAX_JSON_BYTES + 1))


def test_old_files_without_metrics_still_load(trained, tmp_path):
    outcome, meta = trained
    checkpoint.save(tmp_path / "run", outcome.result.model, outcome.config, meta)
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"model.safetensors", "config.json"}
    assert checkpoint.load(tmp_path / "run").metrics == {}


# --- saving: a run folder is complete or absent ---------------------------------------------------


@pytest.fixture
def spare_dir(tmp_path, monkeypatch):
    """Where the fallback folder of a failed save goes (the system's temporary folder, moved here)."""
    folder = tmp_path / "spare"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_save_replaces_a_run_folder_only_with_overwrite(trained, tmp_path, spare_dir):
    outcome, meta = trained
    runs = tmp_path / "runs"
    first = checkpoint.save(runs / "a", outcome.result.model, outcome.config, meta, {"best_epoch": 1})
    assert first == runs / "a" and checkpoint.load(first).metrics == {"best_epoch": 1}
    # Without overwrite the old model stays and the new one is not lost: it goes to a named spare folder.
    with pytest.raises(CheckpointError, match="already holds a saved model.*It was saved instead to") as caught:
        checkpoint.save(runs / "a", outcome.result.model, outcome.config, meta, {"best_epoch": 2})
    assert checkpoint.load(runs / "a").metrics == {"best_epoch": 1}
    (spare,) = spare_dir.iterdir()
    assert str(spare) in str(caught.value) and checkpoint.load(spare).metrics == {"best_epoch": 2}
    checkpoint.save(runs / "a", outcome.result.model, outcome.config, meta, {"best_epoch": 3}, overwrite=True)
    assert checkpoint.load(runs / "a").metrics == {"best_epoch": 3}
    assert _leftovers(runs) == []


def test_check_out_folder_refuses_before_anything_is_written(tmp_path):
    (tmp_path / "file.txt").write_text("mine")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "config.json").write_text("{}")
    (tmp_path / "mixed" / "photo.png").write_bytes(b"x")
    for path, overwrite, message in [
        (tmp_path / "file.txt", True, "is a file, not a folder"),
        (tmp_path / "file.txt" / "run", False, r"Cannot create the folder .*file.txt is a file, not a folder"),
        (tmp_path / "notes", True, r"already holds other files \('todo.txt'\).*never replaced, even with --overwrite"),
        (tmp_path / "mixed", True, r"already holds other files \('photo.png'\)"),
    ]:
        with pytest.raises(CheckpointError, match=message):
            checkpoint.check_out_folder(path, overwrite)
    assert (tmp_path / "file.txt").read_text() == "mine" and _leftovers(tmp_path) == []
    (tmp_path / "empty").mkdir()
    assert checkpoint.check_out_folder(tmp_path / "empty") == (tmp_path / "empty").resolve()
    assert checkpoint.check_out_folder(tmp_path / "new" / "deeper") == (tmp_path / "new" / "deeper").resolve()
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_a_failed_save_leaves_no_partial_folder_and_says_if_the_model_is_lost(
    trained, tmp_path, spare_dir, monkeypatch
):
    outcome, meta = trained
    real_open = pathlib.Path.open

    def full_disk(self, *args, **kwargs):
        if self.name == "config.json" and "w" in (args[0] if args else kwargs.get("mode", "r")):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", full_disk)
    with pytest.raises(CheckpointError, match=r"could not be saved to .*No space left on device.*it is lost"):
        checkpoint.save(tmp_path / "runs" / "a", outcome.result.model, outcome.config, meta)
    assert list((tmp_path / "runs").iterdir()) == [] and list(spare_dir.iterdir()) == []
