"""No patient data at rest from an uploaded zip: made-up DICOM files (built with pydicom, carrying a
patient's name, ID, birth date and a private tag) and images with metadata, in folders named after
the patient, zipped here and uploaded through the store and the Data page. What is stored holds
none of those bytes, is the server user's alone, expires, goes when its session ends, and the page
never shows a folder name that looks like a person's."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, PngImagePlugin
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from hqcnn import folder_data as fd
from hqcnn.errors import DataError
from hqcnn.folder_data import upload_store
from hqcnn.folder_data.privacy import class_names, file_kind, looks_personal, safe_title
from hqcnn.markdown import md
from tests.test_folder_data import zip_bytes

pytestmark = pytest.mark.usefixtures("folder_cache")

# Bytes that must never be stored: the patient's details inside the files, and the names of the
# folders, files and zip (which are the patient's name and birth date).
SECRETS = (b"Doe^Jane", b"PID-998877", b"19700101", b"PRIVATE-TAG-VALUE", b"Elsewhere Hospital", b"Smith", b"Jane")
FACT_KEYS = {"modality", "rows", "columns", "bits_stored", "frames", "photometric", "windowed", "burned_in", "note"}


def dicom_bytes(pixels: np.ndarray) -> bytes:
    """A Part-10 CR file of 8-bit MONOCHROME2 `pixels` with a patient's details and a private tag."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID-998877"
    ds.PatientBirthDate = "19700101"
    ds.InstitutionName = "Elsewhere Hospital"
    ds.private_block(0x0011, "ACME PRIVATE", create=True).add_new(0x01, "LO", "PRIVATE-TAG-VALUE")
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = pixels.astype(np.uint8).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def png_with_text(pixels: np.ndarray) -> bytes:
    """A PNG whose text chunk names the patient (as some exports write it)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Doe^Jane 19700101")
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def patient_zip(n: int = 5, seed: int = 0) -> tuple[bytes, dict[str, bytes]]:
    """A zip of folder Doe^Jane_19700101/ with class folders named after patients: DICOM files
    (named after the patient too), a PNG with a text chunk and a stray note."""
    rng = np.random.default_rng(seed)
    members = {}
    for cls in ("Doe^Jane", "Smith John 19700101"):
        for i in range(n):
            members[f"Doe^Jane_19700101/{cls}/DOE_JANE_{i:04d}.dcm"] = dicom_bytes(rng.integers(0, 256, (40, 48)))
        members[f"Doe^Jane_19700101/{cls}/Jane scan.png"] = png_with_text(rng.integers(0, 256, (32, 32)))
    members["Doe^Jane_19700101/Doe^Jane/Jane Doe notes.txt"] = b"Doe^Jane PID-998877"
    return zip_bytes(members), members


def stored_files() -> list[Path]:
    return [p for p in fd.folders_root().rglob("*") if p.is_file()]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- what is stored ----------------------------------------------------------------------------------


def test_a_stored_upload_holds_no_patient_details_and_is_the_servers_alone():
    blob, members = patient_zip()
    uploaded = b"".join([*members.values(), *(name.encode() for name in members)])
    assert all(secret in uploaded for secret in SECRETS)  # they were there to leak
    key, data = fd.add_upload(blob, "Jane_Doe_19700101.zip")

    files = stored_files()
    assert files and any(p.suffix == ".npz" for p in files) and any(p.suffix == ".png" for p in files)
    for path in files:
        relative = path.relative_to(fd.folders_root()).as_posix()
        content = path.read_bytes()
        for secret in SECRETS:
            assert secret.decode() not in relative, relative
            assert secret not in content, (relative, secret)
            # np.savez keeps strings (the cache's metadata) as UTF-32
            assert secret.decode().encode("utf-32-le") not in content, (relative, secret)
        assert mode(path) == 0o600, relative
    folders = [fd.folders_root(), *(p for p in fd.folders_root().rglob("*") if p.is_dir())]
    assert all(mode(p) == 0o700 for p in folders), [(p, oct(mode(p))) for p in folders]

    assert data.info.title == fd.title(key) == "your uploaded images"
    assert data.info.label_names == ("class 1", "class 2")
    assert sum(data.info.n_samples.values()) == 12 and data.report.n_files == 13
    message = data.report.skipped_message()
    assert message == (
        "1 file was skipped (only readable PNG, JPEG and DICOM images are used): "
        "a file ending in .txt (not a PNG, JPEG or DICOM image)."
    )
    shown = " ".join([data.info.description, data.report.folder, message, repr(data.info)])
    assert not any(secret.decode() in shown for secret in (*SECRETS, b"Doe", b"notes", b"DOE"))


def test_the_stored_pictures_are_pydicoms_pixels_and_only_the_facts_are_kept():
    blob, members = patient_zip()
    key, _ = fd.add_upload(blob, "x.zip")
    folder = fd.folders_root() / key.removeprefix("upload:")
    record = json.loads((folder / ".upload.json").read_text())
    assert len(record["images"]) == 10  # one entry of facts per DICOM file
    for facts in record["images"].values():
        assert set(facts) <= FACT_KEYS and facts["modality"] == "CR" and facts["bits_stored"] == 8
        assert (facts["rows"], facts["columns"]) == (40, 48)
    # The first DICOM file of the first class, as pydicom itself decodes it (8-bit, no window: the
    # values are the grays), centre-cropped to 40 × 40, is what was stored.
    original = pydicom.dcmread(io.BytesIO(members["Doe^Jane_19700101/Doe^Jane/DOE_JANE_0000.dcm"])).pixel_array
    stored = np.asarray(Image.open(folder / "images" / "class 1" / "00001.png"))
    assert stored.shape == (40, 40) and np.array_equal(stored, original[:, 4:44])
    assert Image.open(folder / "images" / "class 1" / "00005.png").info == {}  # no text chunk survived


def test_storing_only_pictures_gives_the_same_dataset_as_the_files(tmp_path):
    """The folder read from the original files (the command line) and the upload of its zip agree."""
    _, members = patient_zip(n=6)
    safe = {name.replace("Doe^Jane_19700101/", "scans/"): blob for name, blob in members.items()}
    safe = {name.replace("Doe^Jane/", "a/").replace("Smith John 19700101/", "b/"): b for name, b in safe.items()}
    for name, blob in safe.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(blob)
    from_files = fd.load(str(tmp_path / "scans"))
    _, uploaded = fd.add_upload(zip_bytes(safe), "scans.zip")
    assert uploaded.info.label_names == from_files.info.label_names == ("a", "b")
    for split in ("train", "val", "test"):
        for got, want in zip(uploaded.arrays[split], from_files.arrays[split], strict=True):
            assert np.array_equal(got, want), split


def test_every_dicom_member_is_parsed_once(monkeypatch):
    blob, _ = patient_zip(n=4)
    calls = []
    real = pydicom.dcmread
    monkeypatch.setattr(pydicom, "dcmread", lambda *a, **k: calls.append(1) or real(*a, **k))
    fd.extract_zip(blob, "x.zip")
    assert len(calls) == 8


# --- the time limit, old uploads, ended sessions -------------------------------------------------------


def age(key: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(fd.folders_root() / key.removeprefix("upload:"), (then, then))


def test_uploads_expire_after_the_time_limit(monkeypatch):
    monkeypatch.setenv(upload_store.ENV_HOURS, "1")
    old, _ = fd.add_upload(patient_zip(seed=1)[0], "a.zip")
    recent, _ = fd.add_upload(patient_zip(seed=2)[0], "b.zip")
    age(old, 3601)
    age(recent, 1800)
    upload_store.start()  # any use of the store sweeps
    assert [u.key for u in upload_store.uploads()] == [recent]
    assert not list(fd.folders_root().glob(f"cache/upload-{old.removeprefix('upload:')}-*"))
    fd.clear_memory()
    with pytest.raises(DataError, match="no longer on the server"):
        fd.load(old)
    assert fd.load(recent).info.key == recent  # loading marks it used
    age(recent, 3601)
    with pytest.raises(DataError, match="no longer on the server"):  # expired while unused: gone on the next use
        fd.load(recent)


def test_an_invalid_time_limit_falls_back_to_the_default(monkeypatch, caplog):
    monkeypatch.setenv(upload_store.ENV_HOURS, "soon")
    with caplog.at_level(logging.WARNING):
        assert upload_store.lifetime_seconds() == upload_store.DEFAULT_HOURS * 3600
    assert "HQCNN_UPLOAD_HOURS='soon'" in caplog.text


def test_an_upload_stored_as_raw_files_is_removed(tmp_path):
    """An upload folder without its record (raw files kept by an older version) goes on the next use."""
    legacy = fd.folders_root() / "0123456789abcdef" / "scans" / "a"
    legacy.mkdir(parents=True)
    (legacy / "x.dcm").write_bytes(dicom_bytes(np.zeros((8, 8))))
    upload_store.start()
    assert not (fd.folders_root() / "0123456789abcdef").exists()


def test_an_upload_goes_when_every_session_that_uploaded_it_has_ended(monkeypatch):
    from hqcnn.folder_data import uploads

    monkeypatch.setattr(uploads, "_claims", {})
    monkeypatch.setattr(uploads, "_gone_since", {})
    monkeypatch.setattr(uploads, "WATCH_S", 3600.0)  # the test looks itself, at the times it chooses
    key, _ = fd.add_upload(patient_zip()[0], "a.zip")
    connected = {"s1", "s2"}
    fd.claim_upload(key, "s1", connected.__contains__)
    fd.claim_upload(key, "s2", connected.__contains__)
    assert fd.release_ended_sessions(now=0.0) == []
    connected.discard("s1")
    assert fd.release_ended_sessions(now=1.0) == [] and fd.release_ended_sessions(now=1000.0) == []  # s2 is still here
    connected.discard("s2")
    assert fd.release_ended_sessions(now=1001.0) == []  # just gone: a reconnect may follow
    assert fd.release_ended_sessions(now=1001.0 + uploads.OWNER_GRACE_S) == [key]
    assert not upload_store.uploads() and not stored_files_of(key)
    with pytest.raises(DataError, match="no longer on the server"):
        fd.load(key)


def stored_files_of(key: str) -> list[Path]:
    return [p for p in stored_files() if key.removeprefix("upload:") in p.as_posix()]


# --- names ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Doe^Jane", "DOE_JANE", "Jane Doe", "Doe, Jane", "12345678", "MRN 4711", "patient 7", "a b c d e", "x@y.org",
     "Smith John 1970-01-01", "scan 03.04.1970", "jane\u200bdoe", "", ".hidden"],
)  # fmt: skip
def test_names_that_look_personal(name):
    assert looks_personal(name)


@pytest.mark.parametrize(
    "name", ["normal", "pneumonia", "Lung Opacity", "COVID-19", "grade 2", "No Finding", "benign", "NORMAL", "xrays"]
)
def test_class_names_that_are_kept(name):
    assert not looks_personal(name)


def test_class_names_titles_and_file_kinds():
    assert class_names(["pneumonia", "Doe^Jane", "normal"]) == {
        "Doe^Jane": "class 1",
        "normal": "normal",
        "pneumonia": "pneumonia",
    }
    assert class_names(["normal", "pneumonia"], fd.NUMBERED) == {"normal": "class 1", "pneumonia": "class 2"}
    assert list(class_names([f"c{i}" for i in range(12)], fd.NUMBERED).values())[:2] == ["class 01", "class 02"]
    assert class_names(["class 1", "Doe^Jane"]) == {"Doe^Jane": "class 1", "class 1": "class 2"}  # no clash
    assert safe_title(["Doe^Jane", "xrays"]) == "xrays" and safe_title(["Jane Doe"]) == "your uploaded images"
    assert [file_kind(n) for n in ("a/Jane Doe.DCM", "IM0001", "1.2.840.113619", "x.Doe^Jane")] == [
        "*.dcm",
        "*",
        "*",
        "*",
    ]


def test_numbered_naming_is_another_dataset_with_numbers_only():
    blob = patient_zip()[0]
    filtered, _ = fd.add_upload(blob, "a.zip")
    numbered, data = fd.add_upload(blob, "a.zip", naming=fd.NUMBERED)
    assert numbered != filtered and data.info.label_names == ("class 1", "class 2")
    with pytest.raises(DataError, match="Class names can be filtered or numbered"):
        fd.extract_zip(blob, naming="names")


# --- the Data page ----------------------------------------------------------------------------------------


def test_the_data_page_never_shows_a_patients_folder_or_file_name():
    from tests.test_folder_page import upload
    from tests.test_pages import assert_clean, open_page

    at = open_page("pages/1_Data.py")
    assert at.radio(key="upload_class_naming").value == fd.FILTERED  # the default
    upload(at, "Doe^Jane_19700101.zip", patient_zip(n=15)[0])
    assert_clean(at)
    key = at.session_state["settings"]["dataset"]
    assert fd.is_upload_key(key)
    texts = [
        e.value
        for kind in ("markdown", "caption", "info", "warning", "error", "success")
        for e in at.get(kind)
        if isinstance(getattr(e, "value", None), str)
    ]
    texts += [str(o) for o in at.sidebar.selectbox(key="w_dataset").options]
    page = "\n".join(texts)
    assert "your uploaded images" in page and md("a file ending in .txt") in page
    for secret in ("Doe", "Jane", "JANE", "Smith", "19700101", "PID-998877", "notes", "scan"):
        assert secret not in page, secret

    # Numbered: even a harmless folder name is replaced.
    at.radio(key="upload_class_naming").set_value(fd.NUMBERED).run()
    upload(
        at, "xrays.zip", zip_bytes({name.replace("Doe^Jane/", "normal/"): b for name, b in patient_zip(15)[1].items()})
    )
    assert_clean(at)
    assert fd.load(at.session_state["settings"]["dataset"]).info.label_names == ("class 1", "class 2")
