"""Where a study's tasks run: `local` (one after another, in this process) or `ray` (in parallel).

Both take the same tasks and hand back each finished task's rows through `on_done(index, rows)`,
in whatever order they finish; the caller orders them. A task's rows depend only on the task, so
the table is the same whichever executor ran it.

Ray: `ray.init()` starts an embedded local cluster with `workers` CPUs, or joins the cluster at
`address` (or $RAY_ADDRESS). Each task asks for one CPU, and a fraction of a GPU where the
cluster has one and the configuration allows CUDA. Each prepared dataset is put into the object
store once and shared by the tasks that train on it; the workers need the project's packages but
not the image files. Stop cancels the tasks still queued or running.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hqcnn.errors import ConfigError, HQCNNError
from hqcnn.experiments.registry import Task

EXECUTORS = ("local", "ray")
ADDRESS_ENV = "RAY_ADDRESS"
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's node keeps 127.0.0.1 as its address
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
LOOPBACK = "127.0.0.1"
GPU_FRACTION = 0.25  # four small models share a GPU
Done = Callable[[int, list[dict[str, Any]]], None]
Progress = Callable[[float, str], None]  # tasks done (fractional), message


class _Prepared:
    """Each DataConfig prepared once (the low-data subsets are small; the full set is shared)."""

    def __init__(self, wrap: Callable[[Any], Any] = lambda data: data) -> None:
        self._cache: dict[Any, Any] = {}
        self._wrap = wrap

    def __call__(self, config: Any) -> Any:
        from hqcnn.data import prepare

        if config not in self._cache:
            self._cache[config] = self._wrap(prepare(config))
        return self._cache[config]


def _describe(task: Task) -> str:
    return f"{task.columns.get('condition', '')} · {task.model.kind} · seed {task.seed}".strip(" ·")


def run_local(tasks: Sequence[tuple[int, Task]], on_done: Done, progress: Progress, stop: Any) -> None:
    """Run the tasks one after another in this process; raises Stopped when `stop` is set."""
    from hqcnn.experiments.tasks import run_task

    prepared = _Prepared()
    last = [0.0]
    for n, (index, task) in enumerate(tasks):
        progress(n, f"preparing {_describe(task)}")
        data = prepared(task.data)

        def report(fraction: float, n: int = n, task: Task = task) -> None:
            if time.monotonic() - last[0] >= 0.2:  # a progress bar needs no more than five updates a second
                last[0] = time.monotonic()
                progress(n + fraction, f"training {_describe(task)}")

        on_done(index, run_task(task, data, stop, report))
    progress(len(tasks), "done")


def _ray_task(task: Task, data: Any, threads: int, contract: dict[str, Any]) -> list[dict[str, Any]]:
    """A Ray worker's task: the run's threads and kernels, checked against the driver's record, then the task.

    A worker that computes under other settings (another CPU capability, another torch) would give
    other numbers than the run records, so it refuses instead.
    """
    from hqcnn import determinism
    from hqcnn.experiments.tasks import run_task

    determinism.apply_torch(threads)  # Ray runs a task on its worker process's main thread
    differ = determinism.differences(contract, determinism.record())
    if differ:
        raise HQCNNError(
            "A Ray worker computes under other settings than this run records (" + "; ".join(differ) + "). "
            "Give every machine of the cluster the same library versions, or run with HQCNN_KERNELS=native on all."
        )
    return run_task(task, data)


def start_ray(workers: int | None = None, address: str | None = None) -> Any:
    """Start an embedded Ray cluster (`workers` CPUs, default all) or join the one at `address`.

    The embedded cluster is this machine's alone: its servers listen on 127.0.0.1 only, and its
    session folder and authentication token are readable by this user only (see _local_only).
    """
    address = address or os.environ.get(ADDRESS_ENV) or None
    if not address:
        # Read by Ray when it is imported: without it, Ray on Linux replaces 127.0.0.1 by the
        # machine's network address and its servers listen on every interface (0.0.0.0).
        os.environ[LOCAL_ONLY_ENV] = "0"
    try:
        import ray
    except ImportError as err:
        raise HQCNNError("The ray executor needs Ray: pip install -r requirements.txt.") from err
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        # The workers of a cluster get this project's code from the driver; their Python needs
        # the packages of requirements.txt. The image files stay on the driver.
        options["runtime_env"] = {"py_modules": [str(Path(__file__).resolve().parents[1])]}
    else:
        options["num_cpus"] = workers or os.cpu_count() or 1
        options["_node_ip_address"] = LOOPBACK
    try:
        if address:
            ray.init(address=address, **options)
        else:
            _local_only(ray, options)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise HQCNNError(f"Could not start or join {where}: {err}") from err
    return ray


def _local_only(ray: Any, options: dict[str, Any]) -> None:
    """ray.init a local cluster whose files only this user can read.

    Ray writes its token (~/.ray/auth_token, or $RAY_AUTH_TOKEN_PATH) and its session folder
    (/tmp/ray/session_*: logs, sockets, ports) with the process's umask, usually world-readable.
    Its processes inherit the umask set here for the files they write later; the token and the
    session folder are also made owner-only afterwards, in case they existed before.
    """
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # as the environment variable says, if Ray was imported before it was set
    previous = os.umask(0o077)
    try:
        ray.init(**options)
    finally:
        os.umask(previous)
    token = Path(os.environ.get(TOKEN_PATH_ENV) or Path.home() / ".ray" / "auth_token")
    session = Path(ray._private.worker.global_worker.node.get_session_dir_path())
    for path, mode in ((token, 0o600), (session, 0o700)):
        if path.exists():
            path.chmod(mode)


def run_ray(
    tasks: Sequence[tuple[int, Task]],
    on_done: Done,
    progress: Progress,
    stop: Any,
    *,
    threads: int = 1,
    workers: int | None = None,
    address: str | None = None,
    device: str = "cpu",
    contract: dict[str, Any] | None = None,
) -> None:
    """Run the tasks as Ray tasks (at most `workers` at once); raises Stopped when `stop` is set.

    `contract`: the hqcnn.determinism record every worker must match (default: this process's, at `threads`).
    """
    from hqcnn import determinism
    from hqcnn.experiments.tasks import Stopped

    ray = start_ray(workers, address)
    gpus = GPU_FRACTION if device != "cpu" and ray.cluster_resources().get("GPU", 0) > 0 else 0
    contract = contract or {**determinism.record(), "threads": threads}
    # The kernel variables must be in a worker's environment before its torch starts (a remote
    # cluster's workers do not inherit this process's).
    remote = ray.remote(
        num_cpus=1, num_gpus=gpus, max_retries=0, runtime_env={"env_vars": determinism.worker_env()}
    )(_ray_task)
    limit = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    prepared = _Prepared(ray.put)  # one copy of each dataset in the object store
    queue = list(tasks)
    running: dict[Any, int] = {}
    finished = 0
    try:
        while queue or running:
            while queue and len(running) < limit:
                index, task = queue.pop(0)
                progress(finished, f"preparing {_describe(task)}")
                running[remote.remote(task, prepared(task.data), threads, contract)] = index
            progress(finished, f"{len(running)} training at once, {len(queue)} waiting")
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            if stop is not None and stop.is_set():
                raise Stopped
            for ref in ready:
                on_done(running.pop(ref), ray.get(ref))
                finished += 1
    except Stopped:
        for ref in running:
            ray.cancel(ref, force=True)
        raise
    except ray.exceptions.RayTaskError as err:
        cause = err.as_instanceof_cause()
        raise (cause if isinstance(cause, HQCNNError) else HQCNNError(f"A Ray task failed: {err}")) from err
    progress(finished, "done")


def check_executor(name: str) -> None:
    if name not in EXECUTORS:
        raise ConfigError(f"Unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}.")
