"""Saving and loading trained models: safetensors weights plus JSON, never pickle.

A run folder holds `model.safetensors` (tensors only), `config.json` (the RunConfig and what the
model needs to read new images: channels, classes, size, normalisation) and `metrics.json`.
Loading rebuilds the model from the validated config and accepts the weights only if every
tensor's name, shape and dtype match: a file can never make the program run code.

Saving is atomic: the files are written into a hidden folder beside the target and renamed into
place, so a run folder is either complete or absent, and a replaced run folder is removed only once
its successor is complete. If saving fails anyway, the model goes to a fresh temporary folder that
the error names, so a finished training is never lost silently.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from hqcnn import schema
from hqcnn.config import IMAGE_SIZES, DataConfig, ModelConfig, RunConfig, TrainConfig
from hqcnn.datasets_base import ModelMeta
from hqcnn.errors import CheckpointError, HQCNNError
from hqcnn.model import HybridNet, build_model
from hqcnn.posthoc import PostHoc

FORMAT = "hqcnn-checkpoint"
VERSION = 1
WEIGHTS_FILE, CONFIG_FILE, METRICS_FILE = "model.safetensors", "config.json", "metrics.json"
MAX_WEIGHTS_BYTES = 50 * 2**20  # far above any model the app builds (≈ 0.1 MB by default)
CARD_FILE = "MODEL_CARD.md"  # written beside them for people (hqcnn.model_card); loading never reads it
RUN_FILES = (WEIGHTS_FILE, CONFIG_FILE, METRICS_FILE, CARD_FILE)
MAX_JSON_BYTES = 5 * 2**20
HEADER_KEYS = ("format", "version", "config", "meta", "posthoc")  # "posthoc" may be absent (older files)
SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
META_KEYS = ("dataset", "label_names", "in_channels", "image_size", "mean", "std")
MAX_CLASSES = 100  # as many as a folder dataset may have (folder_data.MAX_CLASSES)
MAX_LABEL_CHARS = 255  # a class name is a folder name, at most 255 bytes on common file systems
MAX_DATASET_CHARS = 4096  # a folder dataset is saved as an absolute path (PATH_MAX on Linux)
MAX_MESSAGE_CHARS = 300  # a configuration error quoted from a file is cut to this length


@dataclass
class Checkpoint:
    """A loaded model with its configuration, meta and (if saved) metrics."""

    model: HybridNet
    config: RunConfig
    meta: ModelMeta
    metrics: dict[str, Any]
    posthoc: PostHoc = PostHoc()  # PostHoc.neutral(...) for files saved without one


def _header(config: RunConfig, meta: ModelMeta, posthoc: PostHoc | None) -> dict[str, Any]:
    header = {
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
    if posthoc is not None:
        header["posthoc"] = posthoc.to_dict()
    return header


def to_bytes(
    model: HybridNet,
    config: RunConfig,
    meta: ModelMeta,
    metrics: dict[str, Any] | None = None,
    posthoc: PostHoc | None = None,
) -> dict[str, bytes]:
    """The three files of a checkpoint as bytes, keyed by file name (`posthoc` goes in config.json)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    files = {
        WEIGHTS_FILE: save_safetensors_bytes(tensors, metadata={"format": FORMAT}),
        CONFIG_FILE: json.dumps(_header(config, meta, posthoc), indent=2, allow_nan=False).encode(),
    }
    if metrics is not None:
        files[METRICS_FILE] = json.dumps(metrics, indent=2, allow_nan=False).encode()
    return files


def _quote(names: Iterable[Any], limit: int = 3) -> str:
    """At most `limit` names from a file, quoted, cut to 40 characters and stripped of markup."""
    names = sorted(str(n) for n in names)
    # Names come from untrusted files and end up in the app's error box (Markdown): only letters,
    # digits and a few harmless characters survive, and a huge name costs 40 characters.
    shown = [re.sub(r"[^\w .-]", "?", n[:40]) + ("…" if len(n) > 40 else "") for n in names[:limit]]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(f"'{n}'" for n in shown) + more


def _first_entries(folder: Path, limit: int = 100) -> list[str]:
    """The names of up to `limit` entries of `folder` (a huge folder is not listed in full)."""
    with os.scandir(folder) as entries:
        return [entry.name for entry in itertools.islice(entries, limit)]


def check_out_folder(folder: str | Path, overwrite: bool = False) -> Path:
    """Check that a run folder can be written at `folder`, before any training; returns it resolved.

    Acceptable: a new path whose nearest existing parent is a writable folder, an empty folder, or
    (with `overwrite`) a run folder: one holding model.safetensors or config.json and nothing but
    the checkpoint files. A file, a folder with other files, or an unwritable parent is refused
    with a CheckpointError, so a mistyped --out never costs a training or anyone's files.
    """
    shown = str(folder)
    target = Path(folder).expanduser().resolve()
    if target.parent == target:
        raise CheckpointError(f"{shown} cannot be a run folder: choose a new folder for the model.")
    if target.exists() and not target.is_dir():
        raise CheckpointError(f"{shown} is a file, not a folder: choose a new folder for the model.")
    if target.is_dir():
        try:
            entries = _first_entries(target)
        except OSError as err:
            raise CheckpointError(f"Cannot look into {shown} ({err.strerror or err}).") from err
        if entries:
            others = set(entries) - set(RUN_FILES)
            if others or not set(entries) & {WEIGHTS_FILE, CONFIG_FILE}:
                # Replacing it would delete files that are not ours, so --overwrite does not apply.
                others = others or set(entries)
                raise CheckpointError(
                    f"{shown} already holds other files ({_quote(others)}), not only a saved model; it is never"
                    " replaced, even with --overwrite. Choose a new or empty folder."
                )
            if not overwrite:
                raise CheckpointError(
                    f"{shown} already holds a saved model. Choose another folder, or replace that model"
                    " (--overwrite on the command line)."
                )
    parent = target.parent
    while not parent.exists() and parent.parent != parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CheckpointError(f"Cannot create the folder {shown}: {parent} is a file, not a folder.")
    try:  # a real test, unlike os.access: it sees read-only disks, quotas and root alike
        os.rmdir(tempfile.mkdtemp(prefix=".hqcnn-check-", dir=parent))
    except OSError as err:
        raise CheckpointError(f"Cannot write into {parent} ({err.strerror or err}): choose another folder.") from err
    return target


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write and flush every file to disk, so that a rename afterwards publishes complete files."""
    for name, blob in files.items():
        with (folder / name).open("wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable where the system allows it (best effort: POSIX only)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _NotMovedError(CheckpointError):
    """The files were written completely but could not be renamed into place (the message says where)."""


def _publish(target: Path, files: dict[str, bytes]) -> None:
    """Write `files` into a hidden folder beside `target` and rename it into place.

    An OSError before the rename leaves nothing behind; a run folder already at `target` is renamed
    aside first and removed only once the new one is in place.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name[:100]}.partial-", dir=target.parent))
    try:
        _write_files(staging, files)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name[:100]}.old-{secrets.token_hex(4)}") if target.exists() else None
    try:
        if old is not None:
            os.rename(target, old)
        try:
            os.rename(staging, target)
        except OSError:
            if old is not None:
                os.rename(old, target)  # put the previous model back
            raise
    except OSError as err:
        previous = f" The previous model is in {old}." if old is not None and old.exists() else ""
        raise _NotMovedError(
            f"The model was written completely, but it could not be moved into place at {target}"
            f" ({err.strerror or err}). It is in the hidden folder {staging}: rename that folder to keep it.{previous}"
        ) from err
    _sync_folder(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def save(
    folder: str | Path,
    model: HybridNet,
    config: RunConfig,
    meta: ModelMeta,
    metrics: dict[str, Any] | None = None,
    overwrite: bool = False,
    posthoc: PostHoc | None = None,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """Write a run folder at `folder` atomically (see the module docstring); returns the folder.

    `folder` must pass `check_out_folder(folder, overwrite)`. If it does not, or writing fails (a
    full disk), the files go to a new temporary folder and the CheckpointError names it.
    """
    files = {**to_bytes(model, config, meta, metrics, posthoc), **(extra or {})}  # extra: e.g. the model card
    try:
        target = check_out_folder(folder, overwrite)
        _publish(target, files)
        return Path(folder)
    except _NotMovedError:
        raise  # the complete files are kept where the message says
    except OSError as err:
        reason = err.strerror or str(err)
    except CheckpointError as err:  # the folder changed during training, or became unwritable
        reason = str(err).rstrip(".")
    spare: Path | None = None
    try:
        spare = Path(tempfile.mkdtemp(prefix="hqcnn-unsaved-run-"))
        _write_files(spare, files)
    except OSError as err:
        if spare is not None:
            shutil.rmtree(spare, ignore_errors=True)
        raise CheckpointError(
            f"The model could not be saved to {folder} ({reason}), nor to a temporary folder"
            f" ({err.strerror or err}): it is lost. Free some disk space or choose another folder, then train again."
        ) from err
    raise CheckpointError(
        f"The model could not be saved to {folder} ({reason}). It was saved instead to {spare}:"
        " move that folder where you want it."
    )


def to_zip(
    model: HybridNet,
    config: RunConfig,
    meta: ModelMeta,
    metrics: dict[str, Any] | None = None,
    posthoc: PostHoc | None = None,
    extra: dict[str, bytes] | None = None,
) -> bytes:
    """The checkpoint files in one zip archive (what the app offers for download), with any `extra`
    files (a model card) that loading ignores."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, blob in {**to_bytes(model, config, meta, metrics, posthoc), **(extra or {})}.items():
            archive.writestr(name, blob)
    return buffer.getvalue()


def _parse_json(blob: bytes, name: str) -> Any:
    if len(blob) > MAX_JSON_BYTES:
        raise CheckpointError(f"{name} is too large to be a model description ({len(blob)} bytes).")
    return schema.parse(blob, name, MAX_JSON_BYTES, CheckpointError)


def _refuse_unknown(values: dict[str, Any], known: Iterable[str], where: str) -> None:
    unknown = set(values) - set(known)
    if unknown:
        raise CheckpointError(
            f"config.json has {'an unknown entry' if len(unknown) == 1 else 'unknown entries'} {where}:"
            f" {_quote(unknown)}. Was it written by another program, or edited?"
        )


def _parse_config(raw: Any) -> RunConfig:
    if not isinstance(raw, dict):
        raise CheckpointError("config.json has no 'config' section with the model's settings.")
    _refuse_unknown(raw, SECTIONS, "in its 'config' section")
    missing = [name for name in SECTIONS if name not in raw]
    if missing:
        raise CheckpointError(f"config.json: the 'config' section lacks the {_quote(missing)} settings.")
    for name, cls in SECTIONS.items():
        if isinstance(raw[name], dict):
            # Checked here, not by config.from_dict, so that a file's long or odd names are quoted safely.
            unknown = set(raw[name]) - {f.name for f in dataclasses.fields(cls)}
            if unknown:
                raise CheckpointError(
                    f"config.json holds an invalid configuration: Unknown {cls.__name__} setting(s): {_quote(unknown)}."
                )
    try:
        return RunConfig.from_dict(raw)
    except HQCNNError as err:
        reason = str(err)
        if len(reason) > MAX_MESSAGE_CHARS:
            reason = reason[: MAX_MESSAGE_CHARS - 1] + "…"
        raise CheckpointError(f"config.json holds an invalid configuration: {reason}") from err


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _numbers(raw: Any, name: str, count: int) -> tuple[float, ...]:
    """`count` finite numbers from a JSON list, or a CheckpointError saying what is wrong."""
    if not isinstance(raw, list) or len(raw) != count:
        raise CheckpointError(
            f"config.json: the normalisation statistics ('{name}') must be a list of {count} number(s),"
            f" one per image channel."
        )
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in raw):
        raise CheckpointError(f"config.json: the normalisation statistics ('{name}') are not valid numbers.")
    return tuple(float(v) for v in raw)


def _expected_channels(data: DataConfig) -> int | None:
    """Channels of the model input for `data`, where the config alone tells (None for own folders)."""
    if data.grayscale:
        return 1
    from hqcnn.data import DATASETS  # only here: validating a config needs no dataset catalogue

    info = DATASETS.get(data.dataset)
    return None if info is None else info.n_channels


def _parse_meta(raw: Any, config: RunConfig) -> ModelMeta:
    """The 'meta' section, every entry checked and checked against `config`."""
    if not isinstance(raw, dict):
        raise CheckpointError("config.json has no 'meta' section describing the images and classes of the model.")
    _refuse_unknown(raw, META_KEYS, "in its 'meta' section")
    missing = [key for key in META_KEYS if key not in raw]
    if missing:
        raise CheckpointError(f"config.json: the 'meta' section lacks {_quote(missing, limit=len(META_KEYS))}.")

    dataset = raw["dataset"]
    if not isinstance(dataset, str) or not 1 <= len(dataset) <= MAX_DATASET_CHARS:
        raise CheckpointError("config.json: the dataset name in the 'meta' section is missing or not a name.")
    if dataset != config.data.dataset:
        raise CheckpointError("config.json names two different datasets.")

    names = raw["label_names"]
    if not isinstance(names, list) or not 2 <= len(names) <= MAX_CLASSES:
        count = len(names) if isinstance(names, list) else "none"
        raise CheckpointError(f"config.json: a model needs 2 to {MAX_CLASSES} class names, found {count}.")
    for name in names:
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_LABEL_CHARS:
            raise CheckpointError(
                f"config.json: every class name must be a piece of text of 1 to {MAX_LABEL_CHARS} characters;"
                f" found {_quote([name]) if isinstance(name, str) else 'a value that is not text'}."
            )
    repeated = {name for name in names if names.count(name) > 1}
    if repeated:
        raise CheckpointError(f"config.json: the class name(s) {_quote(repeated)} appear more than once.")

    channels = raw["in_channels"]
    if not _is_int(channels) or channels not in (1, 3):
        raise CheckpointError("config.json: the images must have 1 channel (gray) or 3 (colour).")
    expected = _expected_channels(config.data)
    if expected is not None and channels != expected:
        raise CheckpointError(
            f"config.json: the model takes images with {channels} channel(s), but its data settings give"
            f" {expected}. The file is inconsistent (damaged or edited)."
        )

    size = raw["image_size"]
    if not _is_int(size) or size not in IMAGE_SIZES:
        sizes = ", ".join(str(s) for s in IMAGE_SIZES)
        found = size if _is_int(size) else "no whole number"
        raise CheckpointError(f"config.json: the image size must be one of {sizes} pixels; found {found}.")
    if size != config.data.image_size:
        raise CheckpointError(
            f"config.json: the model takes {size}×{size} images, but its data settings say"
            f" {config.data.image_size}×{config.data.image_size}. The file is inconsistent (damaged or edited)."
        )

    mean, std = _numbers(raw["mean"], "mean", channels), _numbers(raw["std"], "std", channels)
    # The statistics are measured on pixels scaled to 0..1 (data.prepare); the slack is float rounding.
    if not all(-1e-3 <= m <= 1 + 1e-3 for m in mean) or not all(0 < v <= 1 + 1e-3 for v in std):
        raise CheckpointError(
            "config.json: the normalisation statistics are out of range (the mean must be between 0 and 1,"
            " the standard deviation above 0 and at most 1)."
        )
    return ModelMeta(dataset, tuple(names), channels, size, mean, std)


# metrics.json, as `train.RunOutcome.metrics_json` writes it. Each top-level entry may be absent (a
# file may hold only some results); an entry that is there is checked, and any other entry is refused.
_CI = schema.optional(schema.list_of(schema.PROBABILITY, 2, 2))  # a 95% interval; null where undefined
_MAX_CURVE = 200_000  # points of a ROC curve: at most one more than the test images
_CURVE = schema.fields(
    {
        "fpr": schema.list_of(schema.PROBABILITY, _MAX_CURVE),
        "tpr": schema.list_of(schema.PROBABILITY, _MAX_CURVE),
        # the first threshold is the next float above the highest score (metrics._roc)
        "thresholds": schema.list_of(schema.number(0.0, 1.5), _MAX_CURVE),
    }
)
_PER_CLASS = schema.list_of(schema.PROBABILITY, MAX_CLASSES)
# "test" is all of `metrics.classification_metrics` (the Train page reads every entry), or absent.
_TEST = schema.fields(
    {
        **dict.fromkeys(
            ("accuracy", "precision", "recall", "specificity", "f1", "majority_accuracy"), schema.PROBABILITY
        ),
        "auc": schema.optional(schema.PROBABILITY),
        "confusion": schema.list_of(schema.list_of(schema.count(), MAX_CLASSES), MAX_CLASSES),
        "n": schema.count(),
    },
    {
        "roc": schema.optional(
            schema.one_of(
                _CURVE,
                schema.mapping(schema.optional(_CURVE), MAX_CLASSES, key=re.compile(r"^\d{1,3}$")),
                expected="must be a ROC curve, or one per class",
            )
        ),
        "positive": schema.optional(schema.number(0, 1, integer=True)),
        "per_class": schema.fields(
            {"precision": _PER_CLASS, "recall": _PER_CLASS, "support": schema.list_of(schema.count(), MAX_CLASSES)}
        ),
    },
)
_BINS = 100  # reliability bins (calibration.reliability uses 10)
_CALIBRATED = schema.fields(
    {
        "ece": schema.PROBABILITY,
        "ece_ci": schema.list_of(schema.PROBABILITY, 2, 2),
        "brier": schema.number(0.0, 2.0),
        "nll": schema.number(0.0, 1e3),
        "reliability": schema.fields(
            {
                "confidence": schema.list_of(schema.optional(schema.PROBABILITY), _BINS),
                "accuracy": schema.list_of(schema.optional(schema.PROBABILITY), _BINS),
                "count": schema.list_of(schema.count(), _BINS),
            }
        ),
    }
)
_SECONDS = schema.number(0.0, 1e9)
METRICS_SCHEMA = schema.fields(
    {},
    {
        "test": _TEST,
        "test_ci": schema.optional(schema.fields({}, {"accuracy": _CI, "auc": _CI})),
        "calibration": schema.optional(
            schema.fields({"temperature": schema.number(0.01, 100.0), "as_trained": _CALIBRATED, "scaled": _CALIBRATED})
        ),
        "params": schema.fields(
            dict.fromkeys(("backbone", "quantum", "classical_middle", "head", "total"), schema.count())
        ),
        "seconds": _SECONDS,
        "seconds_per_epoch": _SECONDS,
        "best_epoch": schema.count(),
        "averaged_epochs": schema.optional(schema.list_of(schema.count(), 2, 2)),
        "kept": schema.text(300),
        "val": schema.fields(
            {}, {"accuracy": schema.optional(schema.PROBABILITY), "auc": schema.optional(schema.PROBABILITY)}
        ),
        "history": schema.list_of(
            schema.fields(
                {
                    "epoch": schema.count(),
                    "train_loss": schema.number(0.0, 1e6),
                    "train_accuracy": schema.PROBABILITY,
                    "val_accuracy": schema.PROBABILITY,
                    "val_auc": schema.optional(schema.PROBABILITY),
                    "seconds": _SECONDS,
                    "partial": schema.boolean,
                }
            ),
            10_000,
        ),
        "stopped": schema.boolean,
        "stop_reason": schema.optional(schema.text(2000)),
        "compute": schema.COMPUTE,
    },
)


def _parse_metrics(blob: bytes) -> dict[str, Any]:
    metrics = _parse_json(blob, METRICS_FILE)
    if not isinstance(metrics, dict):
        raise CheckpointError("metrics.json does not hold a model's test results (a JSON object was expected).")
    return schema.validate(metrics, METRICS_SCHEMA, METRICS_FILE, CheckpointError)


def from_bytes(weights: bytes, config_json: bytes, metrics_json: bytes | None = None) -> Checkpoint:
    """Rebuild a model from checkpoint bytes, validating everything; raises CheckpointError."""
    header = _parse_json(config_json, CONFIG_FILE)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError("config.json is not an HQCNN Explorer model description.")
    version = header.get("version")
    if version != VERSION:
        shown = version if _is_int(version) else "unknown"  # never echo an arbitrary value from a file
        raise CheckpointError(f"This model was saved in format version {shown}; expected {VERSION}.")
    _refuse_unknown(header, HEADER_KEYS, "at its top level")
    config = _parse_config(header.get("config"))
    meta = _parse_meta(header.get("meta"), config)
    if "posthoc" in header:
        posthoc = PostHoc.from_dict(header["posthoc"], meta.n_classes)
    else:
        posthoc = PostHoc.neutral(meta.dataset, meta.n_classes)
    if posthoc.ood is not None and posthoc.ood.class_means.shape[1] != config.model.channels[1]:
        raise CheckpointError("config.json: the out-of-distribution detector does not fit the model's feature maps.")
    metrics = _parse_metrics(metrics_json) if metrics_json else {}  # absent (or empty): no metrics

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
    return Checkpoint(model, config, meta, metrics, posthoc)


def load(folder: str | Path) -> Checkpoint:
    """Load a run folder written by `save`."""
    folder = Path(folder)
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        if not (folder / name).is_file():
            raise CheckpointError(f"No {name} in {folder}: is it a folder written by 'python -m hqcnn train'?")
    limits = {WEIGHTS_FILE: MAX_WEIGHTS_BYTES, CONFIG_FILE: MAX_JSON_BYTES, METRICS_FILE: MAX_JSON_BYTES}
    read: dict[str, bytes] = {}
    for name, limit in limits.items():
        path = folder / name
        if name == METRICS_FILE and not path.is_file():
            continue
        try:
            # The size is checked before reading, so a huge file is never read into memory.
            if path.stat().st_size > limit:
                raise CheckpointError(f"{name} in {folder} is too large to belong to a saved model.")
            read[name] = path.read_bytes()
        except OSError as err:
            raise CheckpointError(f"Cannot read {name} in {folder} ({err.strerror or err}).") from err
    return from_bytes(read[WEIGHTS_FILE], read[CONFIG_FILE], read.get(METRICS_FILE))


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
