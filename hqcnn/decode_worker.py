"""Decoding an uploaded image in a short-lived worker process, outside the server's interpreter.

The image decoders (OpenJPEG, libjpeg, PIL's) are C code that holds the interpreter lock while it
runs: decoded in the Streamlit server's process, one large image stalls every other session, and a
decoder's crash would end the server. So the Explain page reads an upload here: a process forked
from the multiprocessing fork server (which has this module and torch imported already, see
hqcnn.workers.PRELOAD, so a worker starts in milliseconds) decodes it under limits and sends back
only the model input (float32, the model's own size) or a small picture, and the DICOM facts.

Limits of a worker: MEMORY_ALLOWANCE bytes of address space beyond what it starts with (RLIMIT_AS),
TIMEOUT_S seconds of wall-clock and of CPU time (RLIMIT_CPU), a lower priority than the server, and
at most MAX_WORKERS at once in a process (others wait up to BUSY_WAIT_S for a turn). A worker that
runs out of memory or time, or dies, ends in an ImageError (LIMITS); an ImageError it raises comes
back with its message. The answer travels as JSON and raw array bytes, never as a pickle (a decoder
subverted by a crafted file must not get to run code in the server), and is read with a size limit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import multiprocessing
import os
import resource
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hqcnn import imageio
from hqcnn.config import DataConfig
from hqcnn.datasets_base import ModelMeta
from hqcnn.errors import HQCNNError, ImageError
from hqcnn.workers import PRELOAD

log = logging.getLogger(__name__)

CONTEXT = multiprocessing.get_context("forkserver")
# The same modules as the job workers' (ui/jobs.py sets this list too): one fork server serves both.
CONTEXT.set_forkserver_preload(list(PRELOAD))
TIMEOUT_S = 60.0  # wall clock and CPU seconds a worker may take; the largest accepted image takes a few
MEMORY_ALLOWANCE = 3 * 2**30  # address space a worker may add to what it starts with
MAX_WORKERS = 2  # decoding workers at once in one server: at most this many allowances in use
BUSY_WAIT_S = 30.0
NICE = 5  # added to a worker's niceness: the server's page scripts get the CPU first
MAX_HEADER_BYTES = 64 * 2**10  # the JSON part of an answer
MAX_PICTURE_SIDE = 1024  # the largest side `picture` returns

LIMITS = (
    "This image could not be read within the server's limits (memory and time): it may be too large or "
    "damaged. Export it smaller, or as an 8-bit PNG, and upload it again."
)
BUSY = "The server is reading other images just now. Try again in a moment."
UPLOADS_CACHED = 4  # uploads whose model input an UploadCache keeps

# The facts of hqcnn.dicom.DicomImage and their types: an answer with anything else is refused.
_FACT_TYPES = {
    "modality": str,
    "rows": int,
    "columns": int,
    "bits_stored": int,
    "frames": int,
    "photometric": str,
    "windowed": bool,
    "burned_in": str,
    "note": str,
}
_slots = threading.BoundedSemaphore(MAX_WORKERS)


@dataclass(frozen=True)
class Decoded:
    """What a worker sends back: `array` (the model input, float32 (1, C, S, S), or a uint8
    picture) and a DICOM file's facts (None for PNG and JPEG)."""

    array: np.ndarray
    facts: dict[str, Any] | None


# --- the worker's side ---------------------------------------------------------------------------


def _address_space() -> int:
    """This process's current virtual memory size in bytes (Linux); 0 if unknown."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _limit_self(allowance: int, cpu_seconds: int) -> None:
    """Cap this process's address space at its current size plus `allowance`, its CPU time, and
    lower its priority. The cap is relative because a forked worker inherits the fork server's
    mappings (torch's among them), whose size differs between machines."""
    os.nice(NICE)
    for which, value in ((resource.RLIMIT_AS, _address_space() + allowance), (resource.RLIMIT_CPU, cpu_seconds)):
        _, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, hard))


def _model_input(data: bytes, meta: ModelMeta, data_config: DataConfig) -> tuple[np.ndarray, dict | None]:
    x, facts = imageio.upload_to_model_input(data, meta, data_config)
    return x.numpy().astype(np.float32, copy=False), facts


def _picture(data: bytes, channels: int, side: int) -> tuple[np.ndarray, dict | None]:
    from PIL import Image

    array, facts = imageio.read_upload(data, channels)
    if array.shape[0] > side:
        image = Image.fromarray(array).resize((side, side), Image.Resampling.BILINEAR)  # antialiased
        array = np.asarray(image, dtype=np.uint8)
    return np.ascontiguousarray(array), facts


_TASKS = {"model_input": _model_input, "picture": _picture}


def _work(conn: Any, task: str, args: tuple, allowance: int, cpu_seconds: int) -> None:
    """A worker's entry point: run `task` under limits and send its answer (see `_receive`)."""
    try:
        torch.set_num_threads(1)  # no thread pool: one core, and no arenas counted against the cap
        _limit_self(allowance, cpu_seconds)
        array, facts = _TASKS[task](*args)
        header = {"ok": True, "dtype": array.dtype.str, "shape": list(array.shape), "facts": facts}
        conn.send_bytes(json.dumps(header).encode())
        conn.send_bytes(memoryview(np.ascontiguousarray(array)).cast("B"))
    except HQCNNError as err:
        conn.send_bytes(json.dumps({"ok": False, "message": str(err)}).encode())
    except MemoryError:
        conn.send_bytes(json.dumps({"ok": False, "message": LIMITS}).encode())
    except Exception:  # a decoder's own failure: the details go to the server's log, the user gets LIMITS
        log.exception("an image could not be decoded in its worker")
        conn.send_bytes(json.dumps({"ok": False, "message": LIMITS}).encode())
    finally:
        conn.close()


# --- the server's side ---------------------------------------------------------------------------


def _receive(conn: Any, deadline: float, limit: int) -> bytes:
    """One message of at most `limit` bytes, before `deadline`; ImageError(LIMITS) if the worker
    is out of time, died (end of file), or sends more."""
    if not conn.poll(max(0.0, deadline - time.monotonic())):
        raise ImageError(LIMITS)
    try:
        return conn.recv_bytes(limit)
    except (EOFError, OSError):
        raise ImageError(LIMITS) from None


def _facts(raw: object) -> dict[str, Any] | None:
    """The facts of an answer, checked against their names and types; ImageError(LIMITS) if odd."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != set(_FACT_TYPES):
        raise ImageError(LIMITS)
    for name, kind in _FACT_TYPES.items():
        if type(raw[name]) is not kind:
            raise ImageError(LIMITS)
    return raw


def _run(task: str, args: tuple, dtype: str, shape_ok: Any, max_bytes: int, timeout: float) -> Decoded:
    """Run `task` in a worker and return its checked answer: an array of `dtype` whose shape
    satisfies `shape_ok`, of at most `max_bytes`."""
    if not _slots.acquire(timeout=BUSY_WAIT_S):
        raise ImageError(BUSY)
    try:
        receive, send = CONTEXT.Pipe(duplex=False)
        process = CONTEXT.Process(
            target=_work,
            args=(send, task, args, MEMORY_ALLOWANCE, math.ceil(timeout)),
            name="hqcnn-decode",
            daemon=True,
        )
        try:
            try:
                process.start()
            except OSError:  # no process could be made (memory, process limit)
                raise ImageError(LIMITS) from None
            finally:
                send.close()  # the worker holds the only sending end: its death is an end of file here
            deadline = time.monotonic() + timeout
            try:
                header = json.loads(_receive(receive, deadline, MAX_HEADER_BYTES))
            except ValueError:
                raise ImageError(LIMITS) from None
            if not isinstance(header, dict):
                raise ImageError(LIMITS)
            if not header.get("ok"):
                message = header.get("message")
                raise ImageError(message if isinstance(message, str) and message else LIMITS)
            shape = header.get("shape")
            if (
                header.get("dtype") != np.dtype(dtype).str
                or not isinstance(shape, list)
                or not all(type(n) is int and n > 0 for n in shape)
                or not shape_ok(tuple(shape))
            ):
                raise ImageError(LIMITS)
            body = _receive(receive, deadline, max_bytes)
            if len(body) != math.prod(shape) * np.dtype(dtype).itemsize:
                raise ImageError(LIMITS)
            array = np.frombuffer(body, dtype=dtype).reshape(shape)
            return Decoded(array, _facts(header.get("facts")))
        finally:
            receive.close()
            if process.pid is not None:
                if process.is_alive():
                    process.kill()
                process.join(timeout=5)
    finally:
        _slots.release()


def model_input(data: bytes, meta: ModelMeta, data_config: DataConfig, timeout: float = TIMEOUT_S) -> Decoded:
    """`imageio.upload_to_model_input` in a worker: the model input, float32 (1, C, S, S) with the
    model's channels and size, and a DICOM file's facts. ImageError for what `read_image` refuses,
    and LIMITS for a file that takes more memory or time than a worker has."""
    expected = (1, meta.in_channels, meta.image_size, meta.image_size)
    size = math.prod(expected) * 4
    return _run("model_input", (data, meta, data_config), "float32", lambda s: s == expected, size, timeout)


def picture(data: bytes, channels: int, side: int, timeout: float = TIMEOUT_S) -> Decoded:
    """`imageio.read_upload` in a worker, its square picture shrunk to at most `side` pixels
    (≤ MAX_PICTURE_SIDE): uint8 (s, s) or (s, s, 3), and a DICOM file's facts. For reading many
    files (a folder, a zip): a decoder never runs in the caller's process."""
    if channels not in (1, 3) or not 1 <= side <= MAX_PICTURE_SIDE:
        raise ImageError(f"A picture has 1 or 3 channels and 1 to {MAX_PICTURE_SIDE} pixels a side.")

    def shape_ok(shape: tuple[int, ...]) -> bool:
        layout = (shape[0],) * 2 if channels == 1 else (shape[0], shape[0], 3)
        return shape == layout and shape[0] <= side

    return _run("picture", (data, channels, side), "uint8", shape_ok, side * side * channels, timeout)


class UploadCache:
    """The model inputs and facts (or refusals) of a session's last UPLOADS_CACHED uploads, keyed by
    the file's SHA-256 and what the model input depends on: a rerun of a page (a click on any
    widget) finds an upload here instead of decoding it again."""

    def __init__(self, size: int = UPLOADS_CACHED) -> None:
        self.size = size
        self._items: OrderedDict[tuple, tuple[torch.Tensor, dict | None] | str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def model_input(
        self, data: bytes, meta: ModelMeta, data_config: DataConfig
    ) -> tuple[str, torch.Tensor, dict[str, Any] | None]:
        """(the file's SHA-256, its model input (1, C, S, S), its DICOM facts or None), decoded by
        `model_input` at most once per file and model input; a refusal is kept and raised again."""
        digest = hashlib.sha256(data).hexdigest()
        used = dataclasses.replace(data_config, image_size=meta.image_size, noise_std=0.0)
        key = (digest, meta.in_channels, meta.image_size, tuple(meta.mean), tuple(meta.std), repr(used))
        if key not in self._items:
            try:
                decoded = model_input(data, meta, data_config)
                self._items[key] = (torch.from_numpy(decoded.array.copy()), decoded.facts)
            except ImageError as err:
                self._items[key] = str(err)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        self._items.move_to_end(key)
        found = self._items[key]
        if isinstance(found, str):
            raise ImageError(found)
        x, facts = found
        return digest, x.clone(), dict(facts) if facts is not None else None
