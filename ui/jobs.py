"""Background jobs of the app's sessions: one per session, served in order, in worker processes.

A classroom shares one server, so long work (training, experiments) is run as a `Job`:

- **In a worker process**, forked from a fork server that has imported torch and PennyLane once
  (a worker starts in tens of milliseconds), at a lower OS priority (hqcnn.workers.NICE). The
  server process only renders pages, so other users' pages answer while every core trains.
- **In a slot**: at most `SLOTS` jobs run at once (one per core by default, `HQCNN_JOB_SLOTS` to
  change it); the others wait in one first-come, first-served queue and know their place in it.
- **Owned by its session**: a session has at most one job waiting or running, and a job ends,
  freeing its slot, within seconds of its session ending (reload, tab closed, browser gone): a
  watchdog asks Streamlit's runtime whether the owner's session is still connected.
- **Limited per client**: one browser opens as many sessions as it has tabs, so a client (the
  address the connection comes from) has at most `HQCNN_JOBS_PER_CLIENT` jobs waiting or running
  (default 1; raise it for a lab whose computers share one address behind NAT). Behind a reverse
  proxy every connection comes from the proxy: set `HQCNN_CLIENT_HEADER=X-Forwarded-For` (only
  there: a browser can send that header itself) and the address the proxy appended is used.
- **Bounded in cost**: a job whose estimated computing time exceeds `HQCNN_MAX_JOB_MINUTES`
  (default 20) is refused before it starts, with what to lower. The estimate counts the work
  (epochs × images × pixels, and the circuit's size) at rates measured on a 2-core server, so the
  same settings are always allowed or always refused, however busy the server is.

The job objects live in their session's st.session_state; the scheduler holds them only while
they wait or run. No Streamlit function is called off the script thread.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import sys
import threading
import time
import types
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hqcnn import workers
from hqcnn.errors import HQCNNError

log = logging.getLogger(__name__)


def _slots_from_env() -> int:
    raw = os.environ.get("HQCNN_JOB_SLOTS", "")
    try:
        return max(1, int(raw)) if raw else max(1, os.cpu_count() or 1)
    except ValueError:
        log.warning("HQCNN_JOB_SLOTS=%r is not a whole number; using one slot per core", raw)
        return max(1, os.cpu_count() or 1)


SLOTS = _slots_from_env()
OWNER_GONE_S = 3.0  # a session disconnected this long is gone (a brief network blip reconnects sooner)
WATCH_S = 0.5  # how often the watchdog looks at owners and queue
STOP_GRACE_S = 20.0  # after Stop, a worker that has not ended by then (e.g. still reading images) is killed
ENV_PREFIX = "HQCNN_"  # settings the worker takes from the server's environment at submit time
JOBS_PER_CLIENT_ENV, CLIENT_HEADER_ENV, MAX_MINUTES_ENV = (
    "HQCNN_JOBS_PER_CLIENT",
    "HQCNN_CLIENT_HEADER",
    "HQCNN_MAX_JOB_MINUTES",
)
DEFAULT_JOBS_PER_CLIENT, DEFAULT_MAX_MINUTES = 1, 20.0
LOCAL_CLIENT = "this computer"  # a browser on the server itself (Streamlit gives no address for localhost)

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(list(workers.PRELOAD))
# multiprocessing re-runs the parent's __main__ script in every new worker. While a page runs,
# Streamlit installs that page's script as __main__, so a worker would run the page (in bare
# mode, without a browser). Workers are started with a bare __main__ instead (no file, no spec:
# nothing to re-run); the page scripts do not read sys.modules["__main__"] while they run.
_BARE_MAIN = types.ModuleType("__main__")
_START_LOCK = threading.Lock()


@contextmanager
def _bare_main() -> Iterator[None]:
    with _START_LOCK:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = _BARE_MAIN
        try:
            yield
        finally:
            if sys.modules.get("__main__") is _BARE_MAIN:  # a script run may have installed its own meanwhile
                sys.modules["__main__"] = main


@dataclass(frozen=True)
class Owner:
    """The browser session a job belongs to.

    `token` is a random id kept in the session's state: it tells sessions apart (Streamlit's
    AppTest gives every session the same session id). `session_id` is Streamlit's id of the
    session, which its runtime can say is still connected; None outside a script run. `client`
    is the address the session connects from (see `client_of`); None where there is no browser
    connection (AppTest, scripts), which no client limit applies to.
    """

    token: str
    session_id: str | None
    client: str | None = None


def _env_number(name: str, default: float) -> float:
    """A positive number from the environment, else `default` (logged when the value is unusable)."""
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not value > 0:
        log.warning("%s=%r is not a positive number; using %g", name, raw, default)
        return default
    return value


def jobs_per_client() -> int:
    """How many jobs one client may have waiting or running ($HQCNN_JOBS_PER_CLIENT, default 1)."""
    return max(1, int(_env_number(JOBS_PER_CLIENT_ENV, DEFAULT_JOBS_PER_CLIENT)))


def max_job_minutes() -> float:
    """The longest job the server accepts, in estimated minutes ($HQCNN_MAX_JOB_MINUTES, default 20)."""
    return _env_number(MAX_MINUTES_ENV, DEFAULT_MAX_MINUTES)


def client_of(ip_address: str | None, headers: Mapping[str, str]) -> str | None:
    """Who a connection is, for the per-client limit: its address, or LOCAL_CLIENT on the server itself.

    With $HQCNN_CLIENT_HEADER set (behind a proxy that writes it, e.g. X-Forwarded-For), the last
    address in that header: the one the proxy itself appended (earlier ones come from the browser
    and can be anything). No headers at all means no browser connection (AppTest): None.
    """
    if not headers:
        return None
    header = os.environ.get(CLIENT_HEADER_ENV, "").strip()
    if header:
        forwarded = (headers.get(header) or "").split(",")[-1].strip()
        if forwarded:
            return forwarded[:64]
    return ip_address or LOCAL_CLIENT


def current_owner() -> Owner:
    """The Owner for jobs started by the script run of the calling session."""
    import streamlit as st
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    token = st.session_state.setdefault("_session_token", uuid.uuid4().hex)
    client = client_of(st.context.ip_address, dict(st.context.headers))
    return Owner(token, ctx.session_id if ctx else None, client)


# Computing time per image on one core of a 2-core server (hqcnn.estimate.measure, 2026-12-08):
# 0.29 ms per training image at 28 px (5.6 ms at 128 px: it grows with the pixels), 0.14 ms per
# evaluated image; 8 qubits at depth 8 add 0.16 ms (a statevector of 2**n amplitudes per layer).
TRAIN_MS_PER_IMAGE, EVAL_MS_PER_IMAGE, CIRCUIT_MS_PER_AMPLITUDE_LAYER = 0.29, 0.14, 0.00008


def run_minutes(config: Any, n_train: int, n_val: int, n_test: int) -> float:
    """Estimated computing minutes of one training run (hqcnn.config.RunConfig) on `n_train` images."""
    pixels = (config.data.image_size / 28) ** 2
    circuit = 2**config.model.n_qubits * config.model.depth if config.model.kind == "hybrid" else 0
    train_ms = TRAIN_MS_PER_IMAGE * pixels + CIRCUIT_MS_PER_AMPLITUDE_LAYER * circuit
    eval_ms = EVAL_MS_PER_IMAGE * pixels
    epochs = config.train.epochs
    return (epochs * (n_train * train_ms + n_val * eval_ms) + n_test * eval_ms) / 60_000


def _sizes(data: Any) -> tuple[int, int, int]:
    from hqcnn.data import get_info

    info = get_info(data.dataset)
    return info.training_images(data.train_per_class), info.n_samples["val"], info.n_samples["test"]


def _training_cost(args: tuple) -> tuple[float, str]:
    from hqcnn.config import RunConfig

    configs = [RunConfig.from_dict(values) for _, values in args[0]]
    n_train, n_val, n_test = _sizes(configs[0].data)
    minutes = sum(run_minutes(config, n_train, n_val, n_test) for config in configs)
    first = configs[0]
    what = f"{first.train.epochs} epochs × {n_train:,} images at {first.data.image_size} px" + (
        " for two models (the twin too)" if len(configs) > 1 else ""
    )
    advice = "Lower the epochs (Train page), the image size or the training images per class (Data page)" + (
        ", or leave out the classical twin" if len(configs) > 1 else ""
    )
    return minutes, f"This training ({what}) would need about {minutes:.0f} minutes of computing. {advice}."


def _experiment_cost(args: tuple) -> tuple[float, str]:
    from hqcnn.config import RunConfig
    from hqcnn.experiments.registry import get_study
    from hqcnn.experiments.tasks import train_config

    name, config, preset = args
    tasks = get_study(name).tasks(config, preset)
    minutes = 0.0
    for task in tasks:
        n_train, n_val, n_test = _sizes(task.data)
        run = RunConfig(data=task.data, model=task.model, train=train_config(n_train, task.seed, task.budget))
        minutes += run_minutes(run, n_train, n_val, n_test)
    return minutes, (
        f"This experiment ({len(tasks)} trainings) would need about {minutes:.0f} minutes of computing. Choose the "
        "quick preset or fewer seeds, or run it from the command line (python -m hqcnn experiment)."
    )


COSTS: dict[str, Callable[[tuple], tuple[float, str]]] = {"train": _training_cost, "experiment": _experiment_cost}


def check_cost(job: Job) -> None:
    """Refuse, before it starts, a job estimated to compute for longer than max_job_minutes()."""
    cost = COSTS.get(job.task)
    if cost is None:
        return
    try:
        minutes, described = cost(job.args)
    except HQCNNError:
        return  # e.g. its uploaded dataset is gone: the worker says so in the job's own words
    limit = max_job_minutes()
    if minutes > limit:
        raise HQCNNError(f"{described} This server runs jobs of at most {limit:g} minutes.")


def session_connected(session_id: str) -> bool:
    """True while the session has a browser connected (always True without a server, as in tests)."""
    from streamlit import runtime

    if not runtime.exists():
        return True
    return bool(runtime.get_instance().is_active_session(session_id))


class Job:
    """One background task of one session; subclasses turn the worker's events into results.

    Life: queued → running → finished. `stop()` asks the worker to stop after its current batch
    (results so far are kept); `cancel()` ends it at once and keeps nothing.
    """

    task = ""  # a key of hqcnn.workers.TASKS
    what = "job"  # shown to users: "training", "experiment"

    def __init__(self, owner: Owner | None, args: tuple) -> None:
        self.owner = owner
        self.args = args
        self.lock = threading.Lock()
        self.error: str | None = None
        self.submitted_at = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.cancelled = False
        self._stop = _CONTEXT.Event()
        self._process: Any = None
        self._finished = threading.Event()

    # --- what pages read -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True until the job has finished (while it waits for a slot too)."""
        return not self._finished.is_set()

    @property
    def waiting(self) -> bool:
        """True while the job waits in the queue for a free slot."""
        return self.started_at is None and self.running

    def queue_place(self) -> int:
        """1 for the first waiting job, 2 for the next, …; 0 once it runs or has finished."""
        return SCHEDULER.place(self)

    def waiting_message(self) -> str:
        """What the page says while the job waits for a slot."""
        waiting = SCHEDULER.busy()[1]
        return (
            f"Waiting for a free slot: place {self.queue_place() or 1} of {max(waiting, 1)} in the queue. This server "
            f"runs {SCHEDULER.slots} training(s) or experiment(s) at a time and serves them in order."
        )

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished (for scripts and benchmarks); False on timeout."""
        return self._finished.wait(timeout)

    # --- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop after the current batch, keeping what is finished; a waiting job is taken out of the queue."""
        self._stop.set()
        if SCHEDULER.withdraw(self):
            self._finish()
            return
        threading.Timer(STOP_GRACE_S, self._kill_if_alive).start()

    def cancel(self, reason: str) -> None:
        """End the job now and keep nothing (its session has gone)."""
        log.info("cancelling a %s: %s", self.what, reason)
        self.cancelled = True
        self._stop.set()
        if SCHEDULER.withdraw(self):
            self._finish()
        else:
            self._kill_if_alive()

    # --- for the scheduler -----------------------------------------------------------------
    def _launch(self) -> None:
        """Start the worker process and the thread that reads its events (called in a free slot)."""
        receiver, sender = _CONTEXT.Pipe(duplex=False)
        env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
        self._process = _CONTEXT.Process(
            target=workers.main,
            args=(self.task, self.args, env, sender, self._stop),
            name=f"hqcnn-{self.task}",
            daemon=True,
        )
        self.started_at = time.time()
        with _bare_main():
            self._process.start()
        sender.close()  # the worker holds the only sending end now: its death ends the reader with EOF
        threading.Thread(target=self._read, args=(receiver,), name=f"hqcnn-{self.task}-events", daemon=True).start()

    def _read(self, events: Any) -> None:
        """Apply the worker's events until it says it is done or dies."""
        try:
            while True:
                try:
                    event = events.recv()
                except (EOFError, OSError):
                    if not self.cancelled and self.error is None:
                        self.error = f"The {self.what} ended unexpectedly (its worker process stopped)."
                    break
                if event[0] == "done":
                    break
                if event[0] == "error":
                    self.error = event[1]
                elif not self.cancelled:
                    try:
                        self.on_event(event)
                    except HQCNNError as err:
                        self.error = str(err)
                    except Exception as err:
                        log.exception("could not use a result of a background %s", self.what)
                        self.error = f"The {self.what}'s result could not be read ({type(err).__name__})."
        finally:
            events.close()
            self._process.join(timeout=STOP_GRACE_S)
            self._kill_if_alive()
            self._finish()

    def _kill_if_alive(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=STOP_GRACE_S)

    def _finish(self) -> None:
        if self._finished.is_set():
            return
        self.finished_at = time.time()
        self._finished.set()
        SCHEDULER.release(self)

    def on_event(self, event: tuple) -> None:
        """Record one progress or result event from the worker (runs on the reader thread)."""
        raise NotImplementedError


class Scheduler:
    """The server's job slots and queue, shared by every session, with a watchdog for their owners."""

    def __init__(self, slots: int, connected: Callable[[str], bool] = session_connected) -> None:
        self.slots = slots
        self.connected = connected
        self._lock = threading.Lock()
        self._queue: deque[Job] = deque()
        self._running: set[Job] = set()
        self._gone_since: dict[str, float] = {}
        self._watchdog: threading.Thread | None = None
        self._closed = False

    def submit(self, job: Job) -> Job:
        """Queue `job` (it starts as soon as a slot is free).

        HQCNNError if it would compute for too long, if its session already has a job, or if its
        client has as many as jobs_per_client() allows.
        """
        check_cost(job)
        limit = jobs_per_client()
        with self._lock:
            if job.owner is not None:
                same_client = 0
                for other in (*self._running, *self._queue):
                    if other.owner is None:
                        continue
                    page = "Train" if other.what == "training" else "Experiments"
                    if other.owner.token == job.owner.token:
                        raise HQCNNError(
                            f"This session is already running a {other.what}. Wait for it to finish, or press "
                            f"Stop on the {page} page first."
                        )
                    same_client += job.owner.client is not None and other.owner.client == job.owner.client
                if same_client >= limit:
                    raise HQCNNError(
                        f"Another tab or window of this browser (or another computer at the same address) already "
                        f"has {same_client} training(s) or experiment(s) running or waiting; this server allows "
                        f"{limit} per computer. Wait for it to finish, or press Stop in that tab first. (A tab that was "
                        f"just closed or reloaded frees its place within about {OWNER_GONE_S + 2:.0f} seconds.)"
                    )
            self._queue.append(job)
            self._ensure_watchdog()
        self._dispatch()
        return job

    def place(self, job: Job) -> int:
        """The job's place in the queue (1 = next), 0 if it is not waiting."""
        with self._lock:
            try:
                return self._queue.index(job) + 1
            except ValueError:
                return 0

    def busy(self) -> tuple[int, int]:
        """(running, waiting) job counts."""
        with self._lock:
            return len(self._running), len(self._queue)

    def withdraw(self, job: Job) -> bool:
        """Take a waiting job out of the queue; False if it is not waiting."""
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
                return True
            return False

    def release(self, job: Job) -> None:
        """A job has finished: free its slot and start the next one."""
        with self._lock:
            self._running.discard(job)
            if job in self._queue:
                self._queue.remove(job)
        self._dispatch()

    def close(self) -> None:
        """End every job (the server is shutting down): nothing waits, nothing new starts."""
        with self._lock:
            self._closed = True
            jobs = [*self._running, *self._queue]
        for job in jobs:
            job.cancel("the server is shutting down")

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                if self._closed or len(self._running) >= self.slots or not self._queue:
                    return
                job = self._queue.popleft()
                self._running.add(job)
            try:
                job._launch()
            except Exception as err:  # e.g. no more processes allowed: tell the user, free the slot
                log.exception("could not start a worker process")
                job.error = f"The server could not start the {job.what} ({type(err).__name__}); try again later."
                job._finish()

    def _ensure_watchdog(self) -> None:
        if self._watchdog is None or not self._watchdog.is_alive():
            self._watchdog = threading.Thread(target=self._watch, name="hqcnn-job-watchdog", daemon=True)
            self._watchdog.start()

    def _watch(self) -> None:
        """Cancel the jobs whose session has been disconnected for OWNER_GONE_S."""
        while True:
            time.sleep(WATCH_S)
            with self._lock:
                jobs = [*self._running, *self._queue]
            now = time.monotonic()
            for job in jobs:
                session = job.owner.session_id if job.owner else None
                if session is None or self.connected(session):
                    self._gone_since.pop(session, None)
                    continue
                since = self._gone_since.setdefault(session, now)
                if now - since >= OWNER_GONE_S:
                    self._gone_since.pop(session, None)
                    job.cancel("its session ended")


SCHEDULER = Scheduler(SLOTS)
atexit.register(SCHEDULER.close)  # runs before multiprocessing's own clean-up of its children


_warming = threading.Event()


def warm_up() -> None:
    """Start the fork server in the background (it imports torch once, several seconds), so that the
    first job starts at once. Called by every page: the first visitor's arrival starts it."""
    if _warming.is_set():
        return
    _warming.set()

    def start() -> None:
        try:
            from multiprocessing import forkserver

            forkserver.ensure_running()
        except Exception:  # the first job will try again and report a failure
            log.exception("could not start the worker fork server")

    threading.Thread(target=start, name="hqcnn-forkserver-start", daemon=True).start()
