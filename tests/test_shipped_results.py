"""The results set shipped in results/shipped: it loads, the Experiments page opens on it, and one
of its trainings re-run on the current code gives its rows again, bit for bit (timing aside).

When a change alters what a study computes, this fails until the set is regenerated with the
command in its provenance.json (README, "The shipped results set").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from hqcnn import experiments as ex
from hqcnn.data import DATASETS
from hqcnn.experiments import results_set
from tests.test_results_set import assert_task_reproduces

APP = str(Path(__file__).resolve().parent.parent / "app.py")
BUNDLED = ("pneumoniamnist", "breastmnist", "retinamnist")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shipped() -> ex.ResultsSet:
    return ex.load_set(results_set.ROOT / "results" / "shipped")  # the repository's, whatever the environment says


def test_the_shipped_set_is_complete_and_covers_every_study_and_bundled_dataset(shipped):
    assert shipped.provenance["complete"] is True
    assert shipped.datasets == list(BUNDLED)
    for dataset in BUNDLED:
        assert list(shipped.results[dataset]) == list(ex.STUDIES), dataset
        for result in shipped.results[dataset].values():
            assert result.preset["name"] == "full" and not result.stopped and len(result.table)
    assert shipped.provenance["git"]["commit"] not in ("", "unknown")
    assert all(d in DATASETS for d in shipped.datasets)


@pytest.mark.slow
def test_the_page_opens_on_the_shipped_set(shipped, monkeypatch):
    monkeypatch.delenv(ex.SHIPPED_ENV, raising=False)
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("pages/5_Experiments.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.radio(key="exp_view").value == "Shipped results"
    assert len(at.table[0].value.columns) == 1 + len(BUNDLED)


def test_one_shipped_training_rerun_gives_its_rows(shipped):
    """The smallest training of the low-data study on BreastMNIST, seed 0 (a few seconds)."""
    assert_task_reproduces(shipped.results["breastmnist"]["low_data"], 0)
