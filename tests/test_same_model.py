"""One configuration and seed give one model, whichever way it is trained: through the app's
training job (a worker process), `python -m hqcnn train`, or the experiment engine.

Under the determinism contract (hqcnn/determinism.py): pinned kernels and one torch thread, which
all three set. The weights are compared exactly, the engine's rows (it keeps no weights) by their
test metrics, which the same weights give bit for bit.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hqcnn import checkpoint, determinism
from hqcnn import experiments as ex
from hqcnn.__main__ import build_parser, run_config_from_args
from hqcnn.experiments import tasks
from hqcnn.markdown import md
from ui import jobs
from ui.jobs import Owner, Scheduler
from ui.training import HYBRID, TrainingJob

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine_task() -> ex.Task:
    """The paired study's first hybrid training on BreastMNIST at the full preset (the whole recipe)."""
    config = ex.ExperimentConfig(dataset="breastmnist", seeds=1)
    hybrid = [t for t in ex.STUDIES["paired"].tasks(config, ex.PRESETS["full"]) if t.model.kind == "hybrid"]
    return hybrid[0]


@pytest.fixture(scope="module")
def cli_run(engine_task, tmp_path_factory) -> checkpoint.Checkpoint:
    out = tmp_path_factory.mktemp("cli") / "run"
    argv = ["train", "--dataset", "breastmnist", "--recipe", "--seed", str(engine_task.seed), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "hqcnn", *argv, "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 thread(s)" in done.stdout and "pinned kernels" in done.stdout, done.stdout
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "Trained with torch" in card and md("1 thread(s), CPU capability AVX2; pinned kernels") in card
    return checkpoint.load(out)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def test_the_command_line_records_the_contract_it_trained_under(cli_run):
    compute = cli_run.metrics["compute"]
    assert compute["kernels"] == determinism.PINNED and compute["threads"] == 1
    assert determinism.holds(compute), determinism.differences(compute)
    assert cli_run.config.train.threads is None  # the contract's count, recorded in "compute"


def test_the_app_job_and_the_command_line_give_the_same_weights(cli_run, monkeypatch):
    scheduler = Scheduler(slots=1, connected=lambda sid: True)
    monkeypatch.setattr(jobs, "SCHEDULER", scheduler)
    try:
        job = scheduler.submit(TrainingJob(cli_run.config, with_twin=False, owner=Owner(token="t", session_id="s")))
        assert job.wait(600) and job.error is None, job.error
    finally:
        scheduler.close()
    app_model = job.models[HYBRID]
    assert app_model.config == cli_run.config
    _same_weights(app_model.model, cli_run.model)
    assert app_model.metrics["test"] == cli_run.metrics["test"]
    assert app_model.metrics["compute"] == cli_run.metrics["compute"]


def test_the_engine_trains_the_command_lines_model(engine_task, cli_run):
    args = build_parser().parse_args(["train", "--dataset", "breastmnist", "--recipe", "--seed", str(engine_task.seed)])
    cli_config = run_config_from_args(args)
    assert (engine_task.data, engine_task.model) == (cli_config.data, cli_config.model)
    from hqcnn.data import prepare

    data = prepare(engine_task.data)
    engine_train = tasks.train_config(len(data.y_train), engine_task.seed, engine_task.budget)
    # The engine names the CPU where the command line says "auto" (the CPU on a machine without CUDA).
    assert not torch.cuda.is_available()
    assert dataclasses.replace(engine_train, device="auto") == cli_config.train
    (row,) = tasks.run_task(engine_task, data)
    for metric in ("accuracy", "auc", "precision", "recall", "f1"):
        assert row[metric] == cli_run.metrics["test"][metric], metric
