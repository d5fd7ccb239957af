"""The Ray executor on a real embedded Ray cluster: the same table as the local executor, bit for bit
(timings aside), with one worker or two; Stop cancels the queued and running tasks."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from hqcnn import experiments as ex
from tests.test_experiments import CONFIG, TINY

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def local_cluster():
    """One embedded two-CPU Ray cluster for the module (starting one takes seconds)."""
    ex.executors.start_ray(workers=2)
    yield
    ray.shutdown()


@pytest.mark.parametrize("name", ["paired", "input_noise", "hardware_noise"])
@pytest.mark.slow
def test_ray_gives_the_local_table_bit_for_bit(local_cluster, name):
    local = ex.run_study(name, CONFIG, TINY)
    one = ex.run_study(name, CONFIG, TINY, executor="ray", workers=1)
    two = ex.run_study(name, CONFIG, TINY, executor="ray", workers=2)
    for other in (one, two):
        pd.testing.assert_frame_equal(ex.without_timing(other.table), ex.without_timing(local.table), check_exact=True)
        assert [c.to_dict() for c in other.comparisons if c.tag != "cost"] == [
            c.to_dict() for c in local.comparisons if c.tag != "cost"
        ]
    assert two.executor["executor"] == "ray" and two.executor["workers"] == 2


@pytest.mark.slow
def test_stop_cancels_the_ray_tasks(local_cluster):
    stop = threading.Event()
    reports = []

    def callback(done: float, total: int, message: str) -> None:
        reports.append(done)
        if done >= 1:
            stop.set()

    long = ex.Preset(name="long", seeds=6, step_budget=None, max_epochs=2, base="quick", grids={"paired": {"seeds": 6, "train_per_class": 20}})
    result = ex.run_study("paired", CONFIG, long, callback=callback, stop=stop, executor="ray", workers=2)
    assert result.stopped and 1 <= len(result.table) < 12
    assert reports == sorted(reports)
