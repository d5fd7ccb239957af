"""Saving and loading trained models: safetensors weights plus JSON, never pickle.

A run folder holds `model.safetensors` (tensors only), `config.json` (the RunConfig and what the
model needs to read new images: channels, classes, size, normalisation) and `metrics.json`.
Loading rebuilds the model from the validated config and accepts the weights only if every
tensor's name, shape and dtype match: a file can never make the program run code.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from hqcnn.config import RunConfig
from hqcnn.errors import CheckpointError, HQCNNError
from hqcnn.model import HybridNet, build_model

FORMAT = "hqcnn-checkpoint"
VERSION = 1
WEIGHTS_FILE, CONFIG_FILE, METRICS_FILE = "model.safetensors", "config.json", "metrics.json"
MAX_WEIGHTS_BYTES = 50 * 2**20  # far above any model the app builds (≈ 0.1 MB by default)
MAX_JSON_BYTES = 5 * 2**20


@dataclass(frozen=True)
class ModelMeta:
    """What a saved model needs besides its weights to classify a new image."""

    dataset: str
    label_names: tuple[str, ...]
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def n_classes(self) -> int:
        """Number of output classes."""
        return len(self.label_names)

    @classmethod
    def from_data(cls, data: Any) -> ModelMeta:
        """The meta of a PreparedData."""
        return cls(
            dataset=data.info.key,
            label_names=tuple(data.info.label_names),
            in_channels=data.in_channels,
            image_size=data.image_size,
            mean=tuple(float(m) for m in data.mean),
            std=tuple(float(s) for s in data.std),
        )


@dataclass
class Checkpoint:
    """A loaded model with its configuration, meta and (if saved) metrics."""

    model: HybridNet
    config: RunConfig
    meta: ModelMeta
    metrics: dict[str, Any]


def _header(config: RunConfig, meta: ModelMeta) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "meta": {
            "dataset": meta.dataset,
            "label_names": list(meta.label_names),
            "in_channels": meta.in_channels,
            "image_size": meta.image_size,
            "mean": list(meta.mean),
            "std": list(meta.std),
        },
    }


def to_bytes(
    model: HybridNet, config: RunConfig, meta: ModelMeta, metrics: dict[str, Any] | None = None
) -> dict[str, bytes]:
    """The three files of a checkpoint as bytes, keyed by file name."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    files = {
        WEIGHTS_FILE: save_safetensors_bytes(tensors, metadata={"format": FORMAT}),
        CONFIG_FILE: json.dumps(_header(config, meta), indent=2).encode(),
    }
    if metrics is not None:
        files[METRICS_FILE] = json.dumps(metrics, indent=2, allow_nan=False).encode()
    return files


def save(
    folder: str | Path, model: HybridNet, config: RunConfig, meta: ModelMeta, metrics: dict[str, Any] | None = None
) -> Path:
    """Write the checkpoint files into `folder` (created if needed); returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in to_bytes(model, config, meta, metrics).items():
        (folder / name).write_bytes(blob)
    return folder


def to_zip(model: HybridNet, config: RunConfig, meta: ModelMeta, metrics: dict[str, Any] | None = None) -> bytes:
    """The checkpoint files in one zip archive (what the app offers for download)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, blob in to_bytes(model, config, meta, metrics).items():
            archive.writestr(name, blob)
    return buffer.getvalue()


def _parse_json(blob: bytes, name: str) -> Any:
    if len(blob) > MAX_JSON_BYTES:
        raise CheckpointError(f"{name} is too large to be a model description ({len(blob)} bytes).")
    try:
        return json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{name} is not valid JSON ({err}).") from err


def _parse_meta(raw: Any) -> ModelMeta:
    try:
        meta = ModelMeta(
            dataset=str(raw["dataset"]),
            label_names=tuple(str(n) for n in raw["label_names"]),
            in_channels=int(raw["in_channels"]),
            image_size=int(raw["image_size"]),
            mean=tuple(float(m) for m in raw["mean"]),
            std=tuple(float(s) for s in raw["std"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"config.json has a missing or malformed 'meta' entry ({err}).") from err
    if meta.in_channels not in (1, 3) or len(meta.mean) != meta.in_channels or len(meta.std) != meta.in_channels:
        raise CheckpointError("config.json: the image channels and normalisation statistics do not agree.")
    if not 2 <= meta.n_classes <= 100:
        raise CheckpointError(f"config.json: a model needs 2 to 100 class names, found {meta.n_classes}.")
    if not all(math.isfinite(v) for v in meta.mean + meta.std) or min(meta.std) <= 0:
        raise CheckpointError("config.json: the normalisation statistics are not valid numbers.")
    return meta


def from_bytes(weights: bytes, config_json: bytes, metrics_json: bytes | None = None) -> Checkpoint:
    """Rebuild a model from checkpoint bytes, validating everything; raises CheckpointError."""
    header = _parse_json(config_json, CONFIG_FILE)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError("config.json is not an HQCNN Explorer model description.")
    if header.get("version") != VERSION:
        raise CheckpointError(f"This model was saved in format version {header.get('version')!r}; expected {VERSION}.")
    try:
        config = RunConfig.from_dict(header.get("config"))
    except HQCNNError as err:
        raise CheckpointError(f"config.json holds an invalid configuration: {err}") from err
    meta = _parse_meta(header.get("meta"))
    if config.data.dataset != meta.dataset:
        raise CheckpointError("config.json names two different datasets.")

    if len(weights) > MAX_WEIGHTS_BYTES:
        raise CheckpointError(f"The weights file is too large ({len(weights) / 2**20:.0f} MB).")
    try:
        tensors = load_safetensors_bytes(weights)
    except (SafetensorError, ValueError, RuntimeError, OSError) as err:
        raise CheckpointError(
            "The weights file is not a valid safetensors file (damaged, truncated, or another format)."
        ) from err

    model = build_model(config.model, meta.in_channels, meta.n_classes)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            "The weights do not fit the model described in config.json"
            f" (missing: {', '.join(missing[:3]) or 'none'}; unexpected: {', '.join(unexpected[:3]) or 'none'})."
        )
    for name, tensor in tensors.items():
        want = expected[name]
        if tensor.shape != want.shape or tensor.dtype != want.dtype:
            raise CheckpointError(
                f"Weight '{name}' has shape {tuple(tensor.shape)} ({tensor.dtype}); the model described in"
                f" config.json needs {tuple(want.shape)} ({want.dtype}). Was it saved with other settings?"
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"Weight '{name}' contains values that are not numbers.")
    model.load_state_dict(tensors)
    model.eval()
    metrics = _parse_json(metrics_json, METRICS_FILE) if metrics_json else {}
    return Checkpoint(model, config, meta, metrics if isinstance(metrics, dict) else {})


def load(folder: str | Path) -> Checkpoint:
    """Load a run folder written by `save`."""
    folder = Path(folder)
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        if not (folder / name).is_file():
            raise CheckpointError(f"No {name} in {folder}: is it a folder written by 'python -m hqcnn train'?")
    metrics = folder / METRICS_FILE
    return from_bytes(
        (folder / WEIGHTS_FILE).read_bytes(),
        (folder / CONFIG_FILE).read_bytes(),
        metrics.read_bytes() if metrics.is_file() else None,
    )


def from_zip(blob: bytes) -> Checkpoint:
    """Load a zip made by `to_zip`; only the three known names are read, never extracted to disk."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
    except zipfile.BadZipFile as err:
        raise CheckpointError("The file is not a zip archive of a saved model.") from err
    with archive:
        infos = {info.filename: info for info in archive.infolist()}
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            if name not in infos:
                raise CheckpointError(f"The archive has no {name}; expected {WEIGHTS_FILE} and {CONFIG_FILE}.")
        if (
            sum(infos[n].file_size for n in infos if n in (WEIGHTS_FILE, CONFIG_FILE, METRICS_FILE))
            > MAX_WEIGHTS_BYTES + 2 * MAX_JSON_BYTES
        ):
            raise CheckpointError("The archive unpacks to more data than a saved model can hold.")
        try:
            read = {n: archive.read(n) for n in (WEIGHTS_FILE, CONFIG_FILE, METRICS_FILE) if n in infos}
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise CheckpointError("The archive is damaged or truncated.") from err
    return from_bytes(read[WEIGHTS_FILE], read[CONFIG_FILE], read.get(METRICS_FILE))
