"""The job scheduler with real worker processes: one job per session, first come first served,
and every job ends, freeing its slot, when its session goes."""

from __future__ import annotations

import time

import pytest

from hqcnn.config import DataConfig, RunConfig, TrainConfig
from hqcnn.errors import HQCNNError
from ui import jobs
from ui.jobs import Owner, Scheduler
from ui.training import HYBRID, TrainingJob

TINY = RunConfig(data=DataConfig(train_per_class=10), train=TrainConfig(epochs=1, batch_size=16))
LONG = RunConfig(train=TrainConfig(epochs=200))  # minutes: only a stop or a cancel ends it


@pytest.fixture
def scheduler(monkeypatch) -> Scheduler:
    """A private one-slot scheduler whose sessions are connected while listed in `.connected_ids`."""
    connected_ids: set[str] = set()
    private = Scheduler(slots=1, connected=lambda sid: sid in connected_ids)
    private.connected_ids = connected_ids
    monkeypatch.setattr(jobs, "SCHEDULER", private)  # Job.stop/cancel/_finish report to it
    yield private
    private.close()


def owner(name: str, scheduler: Scheduler) -> Owner:
    scheduler.connected_ids.add(name)
    return Owner(token=name, session_id=name)


def wait_until(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_job_trains_in_a_worker_and_returns_a_checked_model(scheduler):
    job = scheduler.submit(TrainingJob(TINY, with_twin=True, owner=owner("a", scheduler)))
    assert job.wait(180) and job.error is None
    assert set(job.models) == {HYBRID, "classical twin"}
    hybrid = job.models[HYBRID]
    assert hybrid.source == "trained" and hybrid.config == TINY
    assert hybrid.metrics["test"]["n"] == 624  # the whole PneumoniaMNIST test split
    progress = job.snapshot()[HYBRID]
    assert progress.total_steps == len(progress.steps) > 0 and len(progress.epochs) == 1
    assert scheduler.busy() == (0, 0)


def test_one_job_per_session_and_the_queue_is_served_in_order(scheduler):
    first = scheduler.submit(TrainingJob(LONG, with_twin=False, owner=owner("a", scheduler)))
    with pytest.raises(HQCNNError, match="already running a training"):
        scheduler.submit(TrainingJob(TINY, with_twin=False, owner=owner("a", scheduler)))
    second = scheduler.submit(TrainingJob(TINY, with_twin=False, owner=owner("b", scheduler)))
    third = scheduler.submit(TrainingJob(TINY, with_twin=False, owner=owner("c", scheduler)))
    assert (first.queue_place(), second.queue_place(), third.queue_place()) == (0, 1, 2)
    assert second.waiting and third.waiting and scheduler.busy() == (1, 2)

    third.stop()  # a waiting job leaves the queue at once
    assert not third.running and second.queue_place() == 1
    first.stop()  # keeps what it has trained, frees the slot
    assert first.wait(60) and second.wait(180)
    assert second.error is None and HYBRID in second.models
    assert first.started_at < second.started_at


@pytest.mark.slow
def test_a_job_ends_when_its_session_goes(scheduler):
    gone = scheduler.submit(TrainingJob(LONG, with_twin=False, owner=owner("gone", scheduler)))
    waiting = scheduler.submit(TrainingJob(LONG, with_twin=False, owner=owner("gone too", scheduler)))
    wait_until(lambda: gone.snapshot()[HYBRID].steps, 60)  # it is training
    process = gone._process
    scheduler.connected_ids.difference_update({"gone", "gone too"})  # both browsers closed
    assert gone.wait(jobs.OWNER_GONE_S + 15) and waiting.wait(5)
    assert gone.cancelled and waiting.cancelled and not gone.models
    assert not process.is_alive()  # the worker process is gone, not just told to stop
    assert scheduler.busy() == (0, 0)
    # The slot is free at once for the next session.
    fresh = scheduler.submit(TrainingJob(TINY, with_twin=False, owner=owner("fresh", scheduler)))
    assert fresh.wait(180) and fresh.error is None


def test_a_failure_in_the_worker_is_a_plain_message(scheduler):
    bad = RunConfig(data=DataConfig(dataset="upload:0123456789abcdef"), train=TrainConfig(epochs=1))
    job = scheduler.submit(TrainingJob(bad, with_twin=False, owner=owner("a", scheduler)))
    assert job.wait(60)
    assert job.error and "upload" in job.error and "Traceback" not in job.error
    assert not job.models and scheduler.busy() == (0, 0)
