"""The 2 KB JPEG 2000 DICOM that claims 20000 × 20000 pixels, uploaded to the real app: refused with a
plain message, and the server's health endpoint answers within a second all the while.

Uses the `streamlit run app.py` server of the e2e session (see conftest.py). The payload is made by
tests/test_decode_budget.py (a DICOM header of 16 × 16 around a hand-written SIZ marker).
"""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import pytest
from pydicom.uid import JPEG2000Lossless

from tests.e2e.test_browser import ERROR, assert_healthy, wait_idle
from tests.e2e.test_dicom_upload import open_explain_upload
from tests.test_decode_budget import HUGE, encapsulated, j2k_header

pytestmark = pytest.mark.e2e

HEALTH_LIMIT_S = 1.0


def test_a_jpeg_2000_bomb_is_refused_while_the_server_stays_healthy(page, app_url: str, tmp_path: Path) -> None:
    payload = tmp_path / "bomb.dcm"
    payload.write_bytes(encapsulated(j2k_header(HUGE, HUGE), JPEG2000Lossless))
    assert payload.stat().st_size < 4096

    open_explain_upload(page)

    latencies: list[float] = []
    failures: list[str] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(f"{app_url}/_stcore/health", timeout=10) as response:
                    if response.status != 200:
                        failures.append(f"status {response.status}")
            except OSError as err:
                failures.append(str(err))
            latencies.append(time.monotonic() - started)
            time.sleep(0.05)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        page.locator(".st-key-explain_upload input[type='file']").set_input_files(str(payload))
        page.locator(ERROR).filter(has_text="inconsistent").wait_for(timeout=60_000)
        wait_idle(page)
    finally:
        done.set()
        prober.join(timeout=15)
    assert latencies and not failures, failures
    assert max(latencies) < HEALTH_LIMIT_S, sorted(latencies)[-5:]
    message = page.locator(ERROR).filter(has_text="inconsistent").first.inner_text()
    assert f"{HUGE} × {HUGE}" in message and "not decoded" in message
    assert_healthy(page)
