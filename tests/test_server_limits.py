"""Limits of a shared server: each uploader's size checked by the server, jobs per client, a job's
cost, what Streamlit's upload store holds per session, terminal-safe `predict`, Ray on loopback."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.uploaded_file_manager import UploadedFileRec
from streamlit.testing.v1 import AppTest

from hqcnn import checkpoint
from hqcnn import experiments as ex
from hqcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from hqcnn.datasets_base import ModelMeta
from hqcnn.errors import HQCNNError
from hqcnn.model import build_model
from ui import jobs, uploads
from ui.jobs import Owner, Scheduler
from ui.state import SETTINGS
from ui.training import TrainingJob

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
MB = 2**20


def open_page(page: str, **settings) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    values = {name: spec.default for name, spec in SETTINGS.items()}
    values.update(settings)
    at.session_state["settings"] = values
    at.run()
    at.switch_page(page).run()
    return at


def errors(at: AppTest) -> str:
    assert not at.exception, [e.value for e in at.exception]
    return " ".join(e.value for e in at.error)


# --- uploads ---------------------------------------------------------------------------------


@pytest.fixture
def session_runs(tmp_path, monkeypatch) -> None:
    """The Experiments page on this session's runs (its uploader), as when no results set is shipped."""
    monkeypatch.setenv(ex.SHIPPED_ENV, str(tmp_path / "no-shipped-set"))


def json_of(size: int) -> bytes:
    """A JSON document of exactly `size` bytes (one long string, as an attacker's file would be)."""
    return b'{"x": "' + b"a" * (size - 10) + b'"}\n'


@pytest.mark.parametrize(
    ("page", "key", "limit_mb", "make", "name"),
    [
        ("pages/5_Experiments.py", "exp_upload", 5, json_of, "results.json"),
        ("pages/3_Train.py", "upload_model", 64, lambda n: b"PK" + bytes(n - 2), "model.zip"),
    ],
)
def test_an_upload_over_its_uploaders_limit_is_refused_by_the_server(session_runs, page, key, limit_mb, make, name):
    """AppTest hands the file to the page as the upload handler would, with no browser to check
    the widget's limit: what a request sent straight to /_stcore/upload_file does."""
    at = open_page(page)
    at.file_uploader(key=key).set_value((name, make(limit_mb * MB + 1), "application/octet-stream")).run()
    assert f"accepts files of at most {limit_mb} MB" in errors(at)
    # At the limit the file is read: what refuses it then is the reader, not the size check.
    at.file_uploader(key=key).set_value((name, make(limit_mb * MB), "application/octet-stream")).run()
    message = errors(at)
    assert message and "accepts files of at most" not in message


def rec(file_id: str, size: int) -> UploadedFileRec:
    return UploadedFileRec(file_id=file_id, name=f"{file_id}.bin", type="application/octet-stream", data=bytes(size))


def test_one_session_holds_at_most_the_server_limit_in_uploaded_files(monkeypatch):
    """Files PUT to a session's upload address pile up in Streamlit's store unless trimmed."""
    monkeypatch.setattr(uploads, "session_budget_bytes", lambda: 10 * MB)
    manager = MemoryUploadedFileManager("/_stcore/upload_file")
    for n in range(5):
        manager.add_file("attacker", rec(f"f{n}", 4 * MB))
        uploads._trim(manager, "attacker", f"f{n}")
    manager.add_file("neighbour", rec("g", 4 * MB))
    held = manager.file_storage["attacker"]
    assert list(held) == ["f3", "f4"]  # the newest files that fit 10 MB
    assert sum(len(r.data) for r in held.values()) <= 10 * MB
    assert list(manager.file_storage["neighbour"]) == ["g"]  # other sessions untouched
    manager.add_file("attacker", rec("huge", 12 * MB))  # over the budget alone: kept, it is the one asked for
    uploads._trim(manager, "attacker", "huge")
    assert list(manager.file_storage["attacker"]) == ["huge"]


# --- jobs per client -------------------------------------------------------------------------

LONG = RunConfig(train=TrainConfig(epochs=15))  # minutes: only a stop or a cancel ends it (and within the cost limit)


@pytest.fixture
def scheduler(monkeypatch) -> Scheduler:
    """A private one-slot scheduler whose sessions are always connected."""
    private = Scheduler(slots=1, connected=lambda sid: True)
    monkeypatch.setattr(jobs, "SCHEDULER", private)
    yield private
    private.close()


def test_one_job_per_client_across_its_tabs(scheduler, monkeypatch):
    monkeypatch.delenv(jobs.JOBS_PER_CLIENT_ENV, raising=False)
    first = scheduler.submit(TrainingJob(LONG, False, Owner("tab 1", "s1", "10.0.0.7")))
    with pytest.raises(HQCNNError, match="Another tab or window of this browser"):
        scheduler.submit(TrainingJob(LONG, False, Owner("tab 2", "s2", "10.0.0.7")))
    other = scheduler.submit(TrainingJob(LONG, False, Owner("other tab", "s3", "10.0.0.8")))  # another computer
    assert scheduler.busy() == (1, 1)
    monkeypatch.setenv(jobs.JOBS_PER_CLIENT_ENV, "2")  # a lab behind one NAT address
    second = scheduler.submit(TrainingJob(LONG, False, Owner("tab 2", "s2", "10.0.0.7")))
    with pytest.raises(HQCNNError, match="allows 2 per computer"):
        scheduler.submit(TrainingJob(LONG, False, Owner("tab 3", "s4", "10.0.0.7")))
    for job in (second, other):
        job.stop()  # waiting: leaves the queue at once
    first.cancel("the test is over")
    assert first.wait(60) and scheduler.busy() == (0, 0)
    # The client's slot is free again.
    again = scheduler.submit(TrainingJob(LONG, False, Owner("tab 2", "s2", "10.0.0.7")))
    again.cancel("the test is over")


def test_the_client_is_the_connection_unless_a_proxy_header_is_configured(monkeypatch):
    monkeypatch.delenv(jobs.CLIENT_HEADER_ENV, raising=False)
    headers = {"Host": "server", "X-Forwarded-For": "1.2.3.4, 10.0.0.9"}
    assert jobs.client_of("192.0.2.5", headers) == "192.0.2.5"  # the header is the browser's to forge
    assert jobs.client_of(None, headers) == jobs.LOCAL_CLIENT  # a browser on the server itself
    assert jobs.client_of(None, {}) is None  # no connection at all (AppTest, a script): no client limit
    monkeypatch.setenv(jobs.CLIENT_HEADER_ENV, "X-Forwarded-For")
    assert jobs.client_of("127.0.0.2", headers) == "10.0.0.9"  # the address the proxy appended
    assert jobs.client_of("127.0.0.2", {"Host": "server"}) == "127.0.0.2"


# --- a job's cost ----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_train_page_refuses_a_job_too_long_for_the_server_and_says_what_to_lower(monkeypatch):
    monkeypatch.delenv(jobs.MAX_MINUTES_ENV, raising=False)
    at = open_page("pages/3_Train.py", recipe=False, epochs=100, image_size=128, n_qubits=8, depth=8, n_features=16)
    at.button(key="train_button").click().run()
    message = errors(at)
    assert "100 epochs × 4,708 images at 128 px" in message and "Lower the epochs" in message
    assert "at most 20 minutes" in message
    assert "job" not in at.session_state  # the page stopped at the message: no job was made


def test_the_cost_limit_is_the_operators(monkeypatch):
    """The same job passes once the operator allows longer ones (nothing is started here)."""
    big = RunConfig(data=DataConfig(image_size=128), model=ModelConfig(n_qubits=8, depth=8, n_features=16),
                    train=TrainConfig(epochs=100))  # fmt: skip
    job = TrainingJob(big, with_twin=False)
    monkeypatch.setenv(jobs.MAX_MINUTES_ENV, "20")
    with pytest.raises(HQCNNError, match=r"about \d+ minutes of computing"):
        jobs.check_cost(job)
    monkeypatch.setenv(jobs.MAX_MINUTES_ENV, "90")
    jobs.check_cost(job)
    monkeypatch.setenv(jobs.MAX_MINUTES_ENV, "not a number")  # falls back to the default, with a log line
    with pytest.raises(HQCNNError):
        jobs.check_cost(job)
    # The recipe's training on the largest bundled dataset, twin included, stays well inside the default.
    monkeypatch.delenv(jobs.MAX_MINUTES_ENV)
    jobs.check_cost(TrainingJob(RunConfig(), with_twin=True))


def test_the_experiments_page_refuses_the_full_preset_of_a_long_study(session_runs, monkeypatch):
    monkeypatch.delenv(jobs.MAX_MINUTES_ENV, raising=False)
    at = open_page("pages/5_Experiments.py")
    at.selectbox(key="exp_name").set_value("param_efficiency").run()
    at.radio(key="exp_preset").set_value("full").run()
    at.button(key="exp_run").click().run()
    message = errors(at)
    assert "minutes of computing" in message and "quick preset" in message
    assert "experiment_job" not in at.session_state


# --- predict in a terminal -------------------------------------------------------------------

ESCAPES = (
    "\x1b[2J\x1b[H",  # clear the screen, cursor home
    "\x1b]52;c;cm0gLXJmIH4=\x07",  # OSC 52: put text on the clipboard
    "\x1b]0;title\x1b\\",  # OSC terminated by ST
    "\x9b31m",  # an 8-bit CSI (C1)
    "\r\n\x08\x7f\x00",  # carriage return, new line, backspace, DEL, NUL
)


@pytest.mark.slow
def test_predict_prints_class_names_without_terminal_controls(tmp_path):
    names = ("normal" + "".join(ESCAPES), "pneumonia\x1b[8m hidden")
    config = RunConfig(data=DataConfig(dataset="pneumoniamnist"), model=ModelConfig())
    model = build_model(config.model, 1, 2).eval()
    meta = ModelMeta("pneumoniamnist", names, 1, 28, (0.5,), (0.25,))
    run = checkpoint.save(tmp_path / "run", model, config, meta)
    image = tmp_path / "x.png"
    Image.fromarray((np.arange(28 * 28).reshape(28, 28) % 256).astype(np.uint8)).save(image)

    out = subprocess.run(
        [sys.executable, "-m", "hqcnn", "predict", "--run", str(run), str(image)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    printed = out.stdout
    assert "normal" in printed and "pneumonia" in printed and "hidden" in printed
    assert not any(ord(c) < 32 and c != "\n" or 0x7F <= ord(c) <= 0x9F for c in printed), repr(printed)
    assert "]52;" not in printed and "[2J" not in printed
    assert len(printed.splitlines()) == 2  # the header and one line per image: no line forged by a name


# --- Ray -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_embedded_ray_cluster_listens_on_loopback_only_and_its_files_are_the_users(tmp_path):
    """start_ray in a fresh process (Ray reads its settings when imported); its listening sockets
    are read from /proc by psutil, the files' modes from the file system."""
    script = f"""
import json, os, psutil
os.environ["HOME"] = {str(tmp_path)!r}  # the token file goes to ~/.ray; an older one, world-readable
os.makedirs(os.path.join(os.environ["HOME"], ".ray"), exist_ok=True)
token = os.path.join(os.environ["HOME"], ".ray", "auth_token")
with open(token, "w") as f:
    f.write("0123456789abcdef0123456789abcdef")
os.chmod(token, 0o644)
from hqcnn.experiments.executors import start_ray
ray = start_ray(1)
assert ray.get(ray.remote(lambda: 1 + 1).remote()) == 2
me = psutil.Process()
listening = sorted({{c.laddr.ip for p in [me, *me.children(recursive=True)]
                    for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}})
session = ray._private.worker.global_worker.node.get_session_dir_path()
print(json.dumps({{"listening": listening, "session": os.stat(session).st_mode, "token": os.stat(token).st_mode}}))
ray.shutdown()
"""
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("RAY_")},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["listening"], "Ray started no server"
    assert set(found["listening"]) <= {"127.0.0.1", "::ffff:127.0.0.1"}, found["listening"]
    assert stat.S_IMODE(found["token"]) == 0o600
    assert stat.S_IMODE(found["session"]) == 0o700
