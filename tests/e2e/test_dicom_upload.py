"""A DICOM file uploaded on the Explain page of the real app, in a real browser: the prediction and the
file's technical facts are shown, and nothing of the patient.

Uses the one `streamlit run app.py` server of the e2e session (see conftest.py); the file is made with
pydicom by tests/test_dicom.py's `dicom_file`, which writes a patient name, ID, birth date and
institution into it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hqcnn.data import load_arrays
from tests.e2e.test_browser import (
    ERROR,
    TRAIN_DEADLINE_MS,
    assert_healthy,
    button,
    heading,
    open_page,
    texts,
    wait_idle,
)
from tests.test_dicom import SECRETS, dicom_file


def open_explain_upload(page) -> None:
    """Train a quick model on the Train page, then open the Explain page's upload box."""
    open_page(page, "/Train?train_per_class=20&epochs=1&batch_size=32", "Train")
    button(page, "train_button").click()
    page.locator("[data-testid='stMetricLabel']").filter(has_text=re.compile(r"^Accuracy$")).wait_for(
        timeout=TRAIN_DEADLINE_MS
    )
    wait_idle(page, timeout=TRAIN_DEADLINE_MS)
    page.locator("[data-testid='stSidebarNavLink']").filter(has_text=re.compile(r"Explain$")).click()
    heading(page, "Explain a prediction").wait_for()
    wait_idle(page, timeout=TRAIN_DEADLINE_MS)
    page.locator(".st-key-explain_mode").get_by_text("upload my own image").click()
    wait_idle(page)
    page.get_by_text("PNG, JPEG or DICOM image").first.wait_for()


def test_a_dicom_upload_is_explained_without_patient_details(page, tmp_path: Path, artifacts: Path) -> None:
    # A 12-bit MONOCHROME1 X-ray of two frames with a VOI window, from a PneumoniaMNIST test image.
    image = load_arrays("pneumoniamnist")["test"][0][3].astype(np.uint16) * 16
    frames = np.stack([4095 - image, 4095 - image[::-1]])
    scan = tmp_path / "chest.dcm"
    scan.write_bytes(
        dicom_file(
            frames,
            bits_stored=12,
            frames=2,
            photometric="MONOCHROME1",
            Modality="DX",
            WindowCenter=2048,
            WindowWidth=4096,
        )
    )

    open_explain_upload(page)

    page.locator(".st-key-explain_upload input[type='file']").set_input_files(str(scan))
    page.get_by_text(re.compile(r"^Predicted: ")).wait_for()
    facts = page.get_by_text(re.compile(r"^DICOM · modality DX · 28 × 28 pixels \(rows × columns\) · 12-bit"))
    facts.wait_for()
    wait_idle(page)
    assert "This file has 2 frames; the first is shown." in facts.inner_text()
    page.get_by_text(re.compile(r"patient details are never shown or stored")).wait_for()
    assert texts(page, ERROR) == []
    assert_healthy(page)
    shown = page.content()
    assert not [s for s in SECRETS if s in shown]
    page.screenshot(path=str(artifacts / "explain_dicom.png"))
