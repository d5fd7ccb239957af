"""The determinism contract: the settings under which one seed gives the same numbers on another machine.

What changes a training's weights for one configuration and seed (BreastMNIST recipe, seed 0,
torch 2.13.0 CPU build, measured by training under each setting and hashing the weights):

- torch's thread count (1 against 2): the reductions split differently.
- ATen's vectorised kernels (`ATEN_CPU_CAPABILITY`): `default` differs from `avx2`.
- oneDNN, which runs torch's CPU convolutions, picks its code by the CPU (`ONEDNN_MAX_CPU_ISA`
  AVX2 against the native AVX512_CORE gave other weights), and tunes its blocking to the CPU too.
- MKL, which runs the matrix products, picks its code path by the CPU (`MKL_CBWR`).

So a pinned run uses one thread, ATen's AVX2 kernels, MKL's `COMPATIBLE` path (Intel's
conditional numerical reproducibility: the same results on any x86-64 processor, Intel or AMD) and
no oneDNN (convolutions through ATen's own im2col and MKL). With oneDNN off its ISA no longer
changes anything (checked), and ATen's AVX2 and AVX-512 kernels gave identical weights, so the
pinned path holds on any x86-64 machine with AVX2 and the same library versions. What it costs is
measured by `python benchmarks/bench_determinism.py` (benchmarks/README.md).

Pinned is the default for every process that imports `hqcnn` before torch runs a kernel: the app,
its training workers, `python -m hqcnn`, the experiment engine and its Ray workers, the tests.
`HQCNN_KERNELS=native` leaves the machine's own fastest kernels and threads in place (faster; the
numbers then re-run exactly only on the same kind of CPU). Environment variables reach torch only
if they are set before its first kernel runs, which is why `pin_environment` runs in
`hqcnn/__init__.py`; `record()` reads back what is really in force, so a run that started torch
too early says so instead of claiming the contract.
"""

from __future__ import annotations

import os
import platform
import re
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

MODE_ENV = "HQCNN_KERNELS"
PINNED, NATIVE = "pinned", "native"
MODES = (PINNED, NATIVE)
THREADS = 1  # torch threads of a pinned run
CAPABILITY = "AVX2"  # what torch.backends.cpu.get_cpu_capability() reports under the pinned kernels
# Read by ATen (on its first kernel), MKL (on its first call) and oneDNN (on its first primitive).
PINNED_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "AVX2"}
# The fields of a record that must agree for two runs to give identical numbers.
CONTRACT_FIELDS = ("kernels", "threads", "cpu_capability", "mkldnn", "env", "torch", "blas", "onednn", "arch")


def mode(environ: Mapping[str, str] = os.environ) -> str:
    """The kernel mode from $HQCNN_KERNELS: "native" if it says so, else "pinned" (the default)."""
    return NATIVE if environ.get(MODE_ENV, "").strip().lower() == NATIVE else PINNED


def pin_environment(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set the kernel variables of the pinned mode (overriding the shell's) unless the mode is native.

    Must run before torch's first kernel; child processes (the app's workers, Ray's) inherit them.
    """
    if mode(environ) == PINNED:
        environ.update(PINNED_ENV)


def worker_env() -> dict[str, str]:
    """The variables a process on another machine (a Ray worker) needs to run under this contract."""
    chosen = {MODE_ENV: mode()}
    if chosen[MODE_ENV] == PINNED:
        chosen.update(PINNED_ENV)
    return chosen


def default_threads() -> int | None:
    """The thread count of a run that names none: 1 when pinned, torch's own (None) when native."""
    return THREADS if mode() == PINNED else None


def apply_torch(threads: int | None = None) -> None:
    """Apply the torch-level settings of the mode (oneDNN off when pinned) and, if given, the thread count.

    Threads are process-wide and only the main thread may change them: elsewhere they stay as the
    process's owner set them (the command line, the app's worker, a Ray task).
    """
    import torch

    torch.backends.mkldnn.enabled = mode() != PINNED
    if threads and threading.current_thread() is threading.main_thread() and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _library_versions(config: str) -> tuple[str, str]:
    blas = re.search(r"Math Kernel Library Version ([\w.\-]+)", config)
    if blas:
        blas_name = f"MKL {blas.group(1)}"
    else:
        found = re.search(r"BLAS_INFO=(\w+)", config)
        blas_name = found.group(1) if found else "unknown"
    onednn = re.search(r"MKL-DNN v([\d.]+)", config)
    return blas_name, onednn.group(1) if onednn else "none"


def record() -> dict[str, Any]:
    """What decides this process's numbers, read back from torch: JSON-ready, for every run folder."""
    import torch

    blas, onednn = _library_versions(torch.__config__.show())
    return {
        "kernels": mode(),
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn": bool(torch.backends.mkldnn.enabled),
        "env": {name: os.environ.get(name, "") for name in PINNED_ENV},
        "torch": torch.__version__,
        "blas": blas,
        "onednn": onednn,
        "arch": platform.machine(),
    }


def in_force(recorded: Mapping[str, Any]) -> bool:
    """Whether a record shows the pinned kernels really in use (not only asked for)."""
    return (
        recorded.get("kernels") == PINNED
        and recorded.get("cpu_capability") == CAPABILITY
        and recorded.get("mkldnn") is False
    )


def holds(recorded: Mapping[str, Any] | None) -> bool:
    """Whether a run recorded as `recorded` re-runs bit for bit here: every contract field equal."""
    return not differences(recorded)


def here(threads: int | None = None) -> dict[str, Any]:
    """What a run started in this process would record: this machine's kernels under the mode, and
    `threads` (default: this process's count), whether or not a model has been built here yet."""
    current = record()
    current["mkldnn"] = mode() != PINNED
    if threads is not None:
        current["threads"] = threads
    return current


def differences(recorded: Mapping[str, Any] | None, current: Mapping[str, Any] | None = None) -> list[str]:
    """The contract fields in which `recorded` differs from `current`, in words. By default `current`
    is a re-run in this process at the recorded thread count (a re-run chooses its threads)."""
    if not isinstance(recorded, Mapping):
        return ["no record of the kernels and threads it ran with"]
    if current is None:
        threads = recorded.get("threads")
        current = here(threads if isinstance(threads, int) and not isinstance(threads, bool) else None)
    out = []
    for name in CONTRACT_FIELDS:
        if recorded.get(name) != current.get(name):
            out.append(f"{name} {_short(recorded.get(name))} there, {_short(current.get(name))} here")
    return out


def _short(value: Any) -> str:
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items() if v) or "none"
    return str(value)


def describe(recorded: Mapping[str, Any]) -> str:
    """The settings of a record in one line, e.g. for the start of a training."""
    if in_force(recorded):
        kernels = (
            "pinned kernels (AVX2, MKL compatible path, no oneDNN): the same seed and thread count give the same "
            "numbers on any x86-64 machine with AVX2 and these library versions"
        )
    elif recorded.get("kernels") == PINNED:
        kernels = (
            "pinned kernels were asked for but are not in force (no AVX2 here, or torch ran before hqcnn was "
            "imported): the numbers re-run exactly only on this kind of CPU"
        )
    else:
        kernels = "this machine's native kernels: the numbers re-run exactly only on this kind of CPU"
    return (
        f"torch {recorded.get('torch')}, {recorded.get('threads')} thread(s), CPU capability "
        f"{recorded.get('cpu_capability')}; {kernels}"
    )


def summary(recorded: Mapping[str, Any] | None) -> str:
    """One line for a user: under which contract a run was made and whether it re-runs exactly here."""
    if not isinstance(recorded, Mapping) or not recorded:
        return (
            "Made before runs recorded their kernels and threads: a re-run here gives statistically, not exactly, "
            "the same numbers."
        )
    diffs = differences(recorded)
    if not diffs and recorded.get("kernels") == PINNED:
        return "Made under the pinned kernels (1 thread, AVX2, MKL compatible path): it re-runs exactly here."
    if not diffs:
        return "Made with this machine's native kernels: it re-runs exactly here, on this kind of CPU."
    return (
        "Made under other kernel settings than this machine's ("
        + "; ".join(diffs)
        + "): a re-run here gives statistically, not exactly, the same numbers."
    )
