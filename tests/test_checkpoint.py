"""Checkpoints: round trip, and every kind of bad file is a clear CheckpointError."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save as save_st

from hqcnn import checkpoint
from hqcnn.config import ModelConfig, RunConfig
from hqcnn.errors import CheckpointError
from hqcnn.model import build_model
from hqcnn.train import predict_proba, run
from tests.conftest import quick_config


@pytest.fixture(scope="module")
def trained(small_pneumonia):
    outcome = run(quick_config(), data=small_pneumonia)
    meta = checkpoint.ModelMeta.from_data(small_pneumonia)
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
