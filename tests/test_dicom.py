"""DICOM input: files made here with pydicom, read as a viewer shows them, and nothing of the patient kept.

Every file carries a patient name, ID, birth date and institution (`SECRETS`); the tests check that
none of them reaches a DicomImage, an error message, a log record, a warning, the folder cache on
disk or the Explain page. Display is checked against hand computations: the linear VOI window of
DICOM PS3.3 C.11.2.1.2.1, min..max scaling without a window, MONOCHROME1 inversion, the rescale.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import convert_color_space
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from streamlit.testing.v1 import AppTest

from hqcnn import dicom
from hqcnn import folder_data as fd
from hqcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from hqcnn.data import load_arrays
from hqcnn.datasets_base import ModelMeta
from hqcnn.dicom import DicomImage, describe_dicom, is_dicom, read_dicom
from hqcnn.errors import ImageError
from hqcnn.imageio import MAX_PIXELS, describe_upload, image_to_model_input, read_image
from hqcnn.markdown import md
from tests.conftest import quick_config

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
SECRETS = ("DOE^JANE", "JANE", "SECRET-123", "19700101", "Elsewhere Hospital", "Dr^Who")
FACTS = {"modality", "rows", "columns", "bits_stored", "frames", "photometric", "windowed", "burned_in", "note"}


# --- making DICOM files ------------------------------------------------------------------------


def identify(ds: Dataset) -> None:
    """The patient's and study's details every test file carries, and that must never come out."""
    ds.PatientName = "DOE^JANE"
    ds.PatientID = "SECRET-123"
    ds.PatientBirthDate = "19700101"
    ds.InstitutionName = "Elsewhere Hospital"
    ds.ReferringPhysicianName = "Dr^Who"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()


def dicom_file(
    pixels: np.ndarray | None,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    signed: bool = False,
    frames: int | None = None,
    syntax: UID = ExplicitVRLittleEndian,
    encoded: bytes | None = None,
    **elements: object,
) -> bytes:
    """A Part-10 file (Explicit VR Little Endian unless `syntax` says otherwise) holding `pixels`:
    (rows, columns), (frames, rows, columns) or (rows, columns, 3) for a colour model with 3 samples.
    `encoded` replaces the pixel data (already compressed); `elements` are set as they are."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = FileDataset("scan.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    identify(ds)
    if pixels is not None:
        array = np.asarray(pixels)
        colour = photometric in ("RGB", "YBR_FULL")
        ds.Rows, ds.Columns = array.shape[-3:-1] if colour else array.shape[-2:]
        ds.SamplesPerPixel = 3 if colour else 1
        if colour:
            ds.PlanarConfiguration = 0
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = array.dtype.itemsize * 8
        ds.BitsStored = bits_stored or ds.BitsAllocated
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = int(signed)
        if frames:
            ds.NumberOfFrames = frames
        ds.PixelData = encoded if encoded is not None else array.tobytes()
    for name, value in elements.items():
        setattr(ds, name, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def compressed(data: bytes, syntax: UID) -> bytes:
    """`data` (an uncompressed file) with its pixel data compressed by pydicom's encoders."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    ds.compress(syntax)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def assert_private(text: object) -> None:
    """No detail of the patient or study in `text`."""
    shown = str(text)
    leaked = [s for s in SECRETS if s in shown]
    assert not leaked, f"{leaked} in {shown[:300]!r}"


def assert_clean_error(err: ImageError) -> None:
    """A one-line message, no patient detail, and no pydicom exception attached (its text may quote values)."""
    message = str(err)
    assert message and "\n" not in message and "Traceback" not in message
    assert_private(message)
    assert err.__cause__ is None and err.__context__ is None


RNG = np.random.default_rng(0)


def ramp(shape: tuple[int, ...], low: int, high: int, dtype: type) -> np.ndarray:
    """Random values in low..high with both ends present."""
    values = RNG.integers(low, high + 1, shape).astype(dtype)
    values.flat[0], values.flat[-1] = low, high
    return values


# --- the hand computations --------------------------------------------------------------------


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 ('LINEAR') with the output range 0..255:
    x <= c - 0.5 - (w-1)/2 → 0; x > c - 0.5 + (w-1)/2 → 255; else ((x - (c-0.5)) / (w-1) + 0.5) × 255."""
    x = values.astype(np.float64)
    inside = ((x - (center - 0.5)) / (width - 1) + 0.5) * 255
    out = np.where(x <= center - 0.5 - (width - 1) / 2, 0, np.where(x > center - 0.5 + (width - 1) / 2, 255, inside))
    return np.round(out)


def min_max(values: np.ndarray) -> np.ndarray:
    x = values.astype(np.float64)
    return np.round((x - x.min()) / (x.max() - x.min()) * 255)


def assert_close(shown: np.ndarray, expected: np.ndarray) -> None:
    """Equal but for rounding at exact halves (pydicom computes in its own output range first)."""
    diff = np.abs(shown.astype(np.int64) - expected.astype(np.int64))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.98, (diff.max(), (diff == 0).mean())


# --- recognising and the facts kept -----------------------------------------------------------


def test_is_dicom_needs_the_preamble_and_the_marker():
    data = dicom_file(np.zeros((4, 4), np.uint8))
    assert is_dicom(data) and is_dicom(data[:132]) and not is_dicom(data[:131])
    assert not is_dicom(data[128:])  # no preamble (not accepted: the brief's Part-10 files only)
    assert not is_dicom(png(np.zeros((4, 4), np.uint8)))
    with pytest.raises(ImageError, match="not a DICOM image") as caught:
        read_dicom(data[128:])
    assert_clean_error(caught.value)


def test_only_non_identifying_facts_are_kept():
    image = read_dicom(dicom_file(ramp((12, 10), 0, 255, np.uint8)))
    assert isinstance(image, DicomImage) and {f.name for f in dataclasses.fields(DicomImage)} == FACTS | {"pixels"}
    assert image.facts() == {
        "modality": "CR",
        "rows": 12,
        "columns": 10,
        "bits_stored": 8,
        "frames": 1,
        "photometric": "MONOCHROME2",
        "windowed": False,
        "burned_in": "unknown",
        "note": "",
    }
    assert_private(repr(image))
    assert_private(image.facts())
    assert "pixels" not in repr(image)
    with pytest.raises(AttributeError):
        image.rows = 3  # frozen


def test_a_modality_that_is_no_standard_term_is_not_shown():
    blank = np.zeros((4, 4), np.uint8)
    assert read_dicom(dicom_file(blank, Modality="DOE^JANE was here")).modality == "OTHER"
    # A value of a code string's form can still be a name: only the standard terms are shown.
    assert read_dicom(dicom_file(blank, Modality="JANE DOE")).modality == "OTHER"
    assert read_dicom(dicom_file(blank, Modality="MG")).modality == "MG"
    assert read_dicom(dicom_file(blank, Modality="")).modality == ""


def test_a_colour_model_that_is_no_standard_term_is_not_echoed():
    with pytest.raises(ImageError, match="an unknown one") as caught:
        read_dicom(dicom_file(np.zeros((4, 4), np.uint8), photometric="JANE DOE"))
    assert "JANE" not in str(caught.value)
    with pytest.raises(ImageError, match="'HSV'"):  # a standard term this app does not show is named
        read_dicom(dicom_file(np.zeros((4, 4), np.uint8), photometric="HSV"))


@pytest.mark.parametrize(("value", "expected"), [("YES", "yes"), ("NO", "no"), (None, "unknown"), ("MAYBE", "unknown")])
def test_burned_in_annotation_is_reported(value, expected):
    elements = {} if value is None else {"BurnedInAnnotation": value}
    image = read_dicom(dicom_file(np.zeros((4, 4), np.uint8), **elements))
    assert image.burned_in == expected


# --- display ------------------------------------------------------------------------------------


def test_8_bit_monochrome2_without_a_window_is_shown_as_stored():
    pixels = ramp((20, 30), 10, 200, np.uint8)  # not the full range: no stretching
    image = read_dicom(dicom_file(pixels))
    assert image.pixels.dtype == np.uint8 and np.array_equal(image.pixels, pixels)
    assert not image.windowed


@pytest.mark.parametrize(
    ("bits", "signed", "low", "high", "dtype"),
    [(12, False, 0, 4095, np.uint16), (16, False, 0, 65535, np.uint16), (12, True, -2048, 2047, np.int16),
     (16, True, -32768, 32767, np.int16), (12, False, 100, 900, np.uint16)],
)  # fmt: skip
def test_deep_images_without_a_window_are_scaled_from_their_range(bits, signed, low, high, dtype):
    pixels = ramp((24, 20), low, high, dtype)
    image = read_dicom(dicom_file(pixels, bits_stored=bits, signed=signed))
    assert image.bits_stored == bits and not image.windowed
    assert np.array_equal(image.pixels, min_max(pixels))


@pytest.mark.parametrize(
    ("bits", "signed", "dtype", "center", "width", "slope", "intercept"),
    [
        (12, False, np.uint16, 2048, 1000, None, None),
        (16, False, np.uint16, 30000, 20000, None, None),
        (12, True, np.int16, 0, 1500, None, None),
        (16, True, np.int16, 40, 400, 1, -1024),  # a CT: Hounsfield units, a soft-tissue window
        (12, False, np.uint16, 500, 2000, 2, -1000),
        (8, False, np.uint8, 128, 64, None, None),
    ],
)
def test_a_voi_window_is_applied_as_the_standard_says(bits, signed, dtype, center, width, slope, intercept):
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    pixels = ramp((32, 24), low, high, dtype)
    rescale = {} if slope is None else {"RescaleSlope": slope, "RescaleIntercept": intercept}
    data = dicom_file(pixels, bits_stored=bits, signed=signed, WindowCenter=center, WindowWidth=width, **rescale)
    image = read_dicom(data)
    assert image.windowed
    modality_values = pixels.astype(np.float64) * (slope or 1) + (intercept or 0)
    assert_close(image.pixels, linear_window(modality_values, center, width))
    assert 0 < (image.pixels == 0).sum() < image.pixels.size  # the window clips at both ends
    assert (image.pixels == 255).sum() > 0


def test_monochrome1_is_inverted_with_and_without_a_window():
    pixels = ramp((16, 16), 0, 4095, np.uint16)
    plain = read_dicom(dicom_file(pixels, bits_stored=12, photometric="MONOCHROME1"))
    assert plain.photometric == "MONOCHROME1"
    assert np.array_equal(plain.pixels, 255 - min_max(pixels))  # high values dark
    windowed = read_dicom(
        dicom_file(pixels, bits_stored=12, photometric="MONOCHROME1", WindowCenter=1000, WindowWidth=800)
    )
    assert_close(windowed.pixels, 255 - linear_window(pixels, 1000, 800))


@pytest.mark.parametrize(
    ("bits", "lut"),
    [
        (8, (np.arange(4096) // 16)[::-1]),  # an inverting 8-bit LUT of 4096 entries
        (12, np.clip(np.arange(4096) * 2 - 1000, 0, 4095)),  # a 12-bit LUT that clips at both ends
    ],
)
def test_a_voi_lut_is_applied(bits, lut):
    pixels = ramp((16, 16), 0, 4095, np.uint16)
    item = Dataset()
    item.LUTDescriptor = [4096, 0, bits]
    item.LUTData = lut.astype(np.uint16).tolist()
    item["LUTDescriptor"].VR = "US"
    item["LUTData"].VR = "US"
    image = read_dicom(dicom_file(pixels, bits_stored=12, VOILUTSequence=[item]))
    assert image.windowed
    # The LUT's outputs, from its lowest entry (black) to its highest (white).
    assert np.array_equal(image.pixels, min_max(lut[pixels]) if bits != 8 else lut[pixels])


def test_a_malformed_window_is_ignored():
    pixels = ramp((8, 8), 0, 4095, np.uint16)
    image = read_dicom(dicom_file(pixels, bits_stored=12, WindowCenter=100, WindowWidth=0))  # width 0 is invalid
    assert not image.windowed and np.array_equal(image.pixels, min_max(pixels))


def test_rgb_ybr_and_palette_colour():
    rgb = ramp((10, 14, 3), 0, 255, np.uint8)
    image = read_dicom(dicom_file(rgb, photometric="RGB"))
    assert image.photometric == "RGB" and np.array_equal(image.pixels, rgb) and not image.windowed

    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    image = read_dicom(dicom_file(ybr, photometric="YBR_FULL"))
    assert image.photometric == "YBR_FULL" and image.pixels.shape == rgb.shape
    assert np.abs(image.pixels.astype(int) - rgb).max() <= 2  # converted back to RGB by pydicom

    indices = ramp((6, 8), 0, 255, np.uint8)
    red, green, blue = (RNG.integers(0, 65536, 256).astype(np.uint16) for _ in range(3))
    palette = {}
    for name, table in (("Red", red), ("Green", green), ("Blue", blue)):
        palette[f"{name}PaletteColorLookupTableDescriptor"] = [256, 0, 16]
        palette[f"{name}PaletteColorLookupTableData"] = table.tobytes()
    image = read_dicom(dicom_file(indices, photometric="PALETTE COLOR", **palette))
    expected = np.round(np.stack([red, green, blue], axis=-1)[indices] / 65535 * 255)
    assert image.pixels.shape == (6, 8, 3) and np.array_equal(image.pixels, expected)


def test_multi_frame_shows_the_first_frame_and_says_so():
    frames = ramp((3, 10, 12), 0, 255, np.uint8)
    image = read_dicom(dicom_file(frames, frames=3))
    assert np.array_equal(image.pixels, frames[0]) and image.frames == 3
    assert image.note == "This file has 3 frames; the first is shown."
    assert describe_dicom(dicom_file(frames, frames=3))["note"] == image.note


def test_compressed_rle_jpeg2000_and_jpeg_baseline():
    pixels = ramp((32, 32), 0, 4095, np.uint16)
    plain = read_dicom(dicom_file(pixels, bits_stored=12)).pixels
    assert np.array_equal(read_dicom(compressed(dicom_file(pixels, bits_stored=12), RLELossless)).pixels, plain)
    pytest.importorskip("openjpeg")  # pylibjpeg-openjpeg encodes JPEG 2000 (and decodes it)
    j2k = compressed(dicom_file(pixels, bits_stored=12), JPEG2000Lossless)
    assert np.array_equal(read_dicom(j2k).pixels, plain)

    # JPEG baseline: pydicom cannot encode it, so a JPEG made by PIL is encapsulated as a scanner would.
    gray = ramp((32, 40), 0, 255, np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, "JPEG", quality=90)
    data = dicom_file(gray, syntax=JPEGBaseline8Bit, encoded=encapsulate([buffer.getvalue()]))
    from_jpeg = read_image(buffer.getvalue(), 1)
    assert np.abs(read_image(data, 1).astype(int) - from_jpeg).max() <= 2  # two JPEG decoders may differ by 1


@pytest.mark.parametrize(
    ("syntax", "named"),
    [
        (UID("1.2.840.10008.1.2.4.100"), "'MPEG2 Main Profile / Main Level'"),
        (UID("1.2.3.4.5.6"), "a non-standard format"),
    ],
)
def test_a_compression_nothing_installed_decodes_is_named(syntax, named):
    data = dicom_file(np.zeros((8, 8), np.uint8), syntax=syntax, encoded=encapsulate([b"\0" * 64]))
    with pytest.raises(ImageError, match="compressed with") as caught:
        read_dicom(data)
    assert named in str(caught.value) and "1.2.3.4.5.6" not in str(caught.value)
    assert_clean_error(caught.value)


def test_a_file_without_pixel_data_is_refused():
    report = dicom_file(None, Modality="SR")
    with pytest.raises(ImageError, match="holds no image") as caught:
        read_dicom(report)
    assert_clean_error(caught.value)
    with pytest.raises(ImageError, match="holds no image"):
        read_image(report, 1)


def test_too_many_pixels_is_refused_before_decoding(monkeypatch):
    def no_decoding(ds):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(dicom, "_first_frame", no_decoding)
    side = int(MAX_PIXELS**0.5) + 1
    data = dicom_file(np.zeros((2, 2), np.uint8), Rows=side, Columns=side)  # a header that lies
    with pytest.raises(ImageError, match="too many pixels") as caught:
        read_dicom(data)
    assert f"{side} × {side}" in str(caught.value)
    assert_clean_error(caught.value)


# --- damaged files: nothing but an ImageError, nothing private anywhere -----------------------


def _valid_files() -> list[bytes]:
    pixels = ramp((16, 16), 0, 4095, np.uint16)
    base = dicom_file(pixels, bits_stored=12, WindowCenter=2000, WindowWidth=1000, RescaleSlope=1, RescaleIntercept=0)
    return [
        base,
        compressed(base, RLELossless),
        dicom_file(ramp((8, 8, 3), 0, 255, np.uint8), photometric="RGB"),
        dicom_file(ramp((3, 8, 8), -2000, 2000, np.int16), signed=True, frames=3, photometric="MONOCHROME1"),
    ]


VALID = _valid_files()


def _read_any(data: bytes) -> None:
    """read_dicom succeeds with a uint8 picture of the header's size, or raises a clean ImageError."""
    try:
        image = read_dicom(data)
    except ImageError as err:
        assert_clean_error(err)
        return
    assert image.pixels.dtype == np.uint8 and image.pixels.shape[:2] == (image.rows, image.columns)
    assert_private(repr(image))


@pytest.mark.slow
def test_every_truncation_and_many_bit_flips_end_in_an_image_error(caplog):
    caplog.set_level(logging.DEBUG)
    rng = np.random.default_rng(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for data in VALID:
            for end in range(len(data)):
                _read_any(data[:end])
            for _ in range(300):
                damaged = bytearray(data)
                for _ in range(rng.integers(1, 4)):
                    damaged[rng.integers(0, len(damaged))] ^= 1 << int(rng.integers(0, 8))
                _read_any(bytes(damaged))
            for _ in range(200):  # a length field overwritten: a "value" that runs on into the patient's name
                damaged = bytearray(data)
                at = int(rng.integers(132, len(damaged) - 4))
                damaged[at : at + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
                _read_any(bytes(damaged))
    assert_private(caplog.text)
    for warning in caught:
        assert_private(warning.message)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(0, len(VALID) - 1),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
    end=st.integers(0, 10**6),
)
def test_fuzzed_files_end_in_an_image_error(which, edits, end):
    data = bytearray(VALID[which])
    for at, value in edits:
        data[at % len(data)] = value
    _read_any(bytes(data[: end % (len(data) + 1)]))


@pytest.mark.parametrize(
    "data", [b"", b"DICM", bytes(200), b"\0" * 128 + b"DICM", b"\0" * 128 + b"DICM" + bytes(range(256)) * 4]
)
def test_garbage_ends_in_an_image_error(data):
    with pytest.raises(ImageError) as caught:
        read_dicom(data)
    assert_clean_error(caught.value)
    with pytest.raises(ImageError):
        read_image(data, 1)


def test_pydicom_warnings_and_log_records_are_silenced(caplog):
    """A truncated file makes pydicom warn and log ("End of file reached …"); read_dicom lets neither out."""
    import pydicom

    caplog.set_level(logging.DEBUG)
    truncated = VALID[1][:-20]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every warning recorded, unless a filter put before this one ignores it
        pydicom.dcmread(io.BytesIO(truncated))  # pydicom alone speaks up
        assert caught and any(r.name == "pydicom" for r in caplog.records)
        caught.clear()
        caplog.clear()
        with pytest.raises(ImageError, match="cut short"):
            read_dicom(truncated)
    assert caught == [] and caplog.records == []


# --- through imageio: the same path as PNG ----------------------------------------------------


def test_read_image_of_8_bit_dicom_gives_the_model_input_of_the_same_png():
    image = load_arrays("pneumoniamnist")["test"][0][3]
    data = dicom_file(image)
    for channels in (1, 3):
        assert np.array_equal(read_image(data, channels), read_image(png(image), channels))
    meta = ModelMeta("pneumoniamnist", ("normal", "pneumonia"), 1, 28, (0.5,), (0.25,))
    config = DataConfig(dataset="pneumoniamnist")
    assert torch.equal(image_to_model_input(data, meta, config), image_to_model_input(png(image), meta, config))


def test_read_image_crops_a_dicom_image_to_its_centre_square():
    pixels = ramp((20, 30), 0, 255, np.uint8)
    assert np.array_equal(read_image(dicom_file(pixels), 1), pixels[:, 5:25])
    rgb = ramp((30, 20, 3), 0, 255, np.uint8)
    assert np.array_equal(read_image(dicom_file(rgb, photometric="RGB"), 3), rgb[5:25])


def test_describe_upload_gives_dicom_facts_and_none_for_png():
    assert describe_upload(png(np.zeros((4, 4), np.uint8))) is None
    data = dicom_file(ramp((3, 6, 5), 0, 4095, np.uint16), bits_stored=12, frames=3, WindowCenter=9, WindowWidth=9)
    facts = describe_upload(data)
    assert facts == read_dicom(data).facts()
    assert facts["windowed"] and facts["rows"] == 6 and facts["columns"] == 5 and "3 frames" in facts["note"]
    assert_private(facts)
    with pytest.raises(ImageError, match="not a PNG, JPEG or DICOM image"):
        describe_upload(b"plain text, not an image at all")


# --- folders and zips of DICOM files ------------------------------------------------------------


def dicom_folder(root: Path, per_class: int = 6) -> tuple[Path, Path]:
    """The same BreastMNIST images as class folders of 8-bit DICOM files (some named without an
    extension, as exports name them) and of PNG files."""
    images, labels = load_arrays("breastmnist", 28)["train"]
    folders = root / "dicom", root / "png"
    for label in (0, 1):
        chosen = images[labels.ravel() == label][:per_class]
        for i, image in enumerate(chosen):
            names = ["img_{i:02d}.dcm", "IM{i:04d}", "1.2.826.0.1.3680043.{i}"]  # a UID as the name
            name = names[i % 3].format(i=i)
            (folders[0] / f"class{label}").mkdir(parents=True, exist_ok=True)
            (folders[1] / f"class{label}").mkdir(parents=True, exist_ok=True)
            (folders[0] / f"class{label}" / name).write_bytes(dicom_file(image))
            (folders[1] / f"class{label}" / f"{name}.png").write_bytes(png(image))
    return folders


def assert_cache_private(cache: Path) -> None:
    files = [p for p in cache.rglob("*") if p.is_file() and "cache" in p.relative_to(cache).parts]
    assert files, "no cache was written"
    for path in files:
        content = path.read_bytes()
        with zipfile.ZipFile(path) as archive:  # an .npz: also look inside, whatever its compression
            content += b"".join(archive.read(name) for name in archive.namelist())
        for secret in SECRETS:
            assert secret.encode() not in content, (secret, path.name)


def test_a_folder_of_dicom_files_loads_like_the_same_pngs(tmp_path, folder_cache, monkeypatch):
    dicoms, pngs = dicom_folder(tmp_path)
    (dicoms / "class0" / "LOCKFILE").write_bytes(b"locked by the viewer\n" * 10_000)  # no extension, no image
    (dicoms / "class0" / "DICOMDIR").write_bytes(dicom_file(None, Modality=""))  # DICOM, but no image
    read: list[str] = []
    original = Path.read_bytes

    def recording(self: Path) -> bytes:
        read.append(self.name)
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", recording)
    data = fd.load(str(dicoms))
    assert "LOCKFILE" not in read  # only its first 132 bytes were looked at
    assert {s.path: s.reason for s in data.report.skipped} == {
        "class0/LOCKFILE": "not a PNG, JPEG or DICOM image",
        "class0/DICOMDIR": "the DICOM file holds no image: it may be a report, a measurement or a list of files, "
        "or it was cut short. Choose a file that holds a picture",
    }
    assert "DICOM" in data.report.skipped_message()
    same = fd.load(str(pngs))
    assert data.info.n_samples == same.info.n_samples == {"train": 8, "val": 2, "test": 2}
    for split in ("train", "val", "test"):
        assert np.array_equal(data.arrays[split][0], same.arrays[split][0])
        assert np.array_equal(data.arrays[split][1], same.arrays[split][1])
    assert_cache_private(folder_cache)


def test_training_on_a_dicom_folder_and_a_zip_of_it_keeps_nothing_private(tmp_path, folder_cache, caplog):
    from hqcnn.train import run

    caplog.set_level(logging.DEBUG)
    torch.set_num_threads(1)
    dicoms, _ = dicom_folder(tmp_path, per_class=10)
    config = RunConfig(
        data=DataConfig(dataset=str(dicoms), image_size=28),
        model=ModelConfig(n_qubits=2, depth=1, n_features=4),
        train=TrainConfig(epochs=1, batch_size=16, device="cpu"),
    )
    outcome = run(config)
    assert outcome.test["n"] == 2 and outcome.data.in_channels == 1  # one test image per class
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(dicoms.rglob("*")):
            if path.is_file():
                archive.write(path, f"scans/{path.relative_to(dicoms).as_posix()}")
    key, found = fd.add_upload(buffer.getvalue(), "scans.zip")
    assert sum(found.info.n_samples.values()) == 20 and not found.report.skipped
    assert_cache_private(folder_cache)  # the caches of both; an upload's own files are the user's
    assert_private(caplog.text)
    assert_private(found.info.description)


# --- the Explain page ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hybrid(small_pneumonia, one_torch_thread):
    from hqcnn.train import run
    from ui.training import TrainedModel

    return TrainedModel.from_outcome(run(quick_config(), data=small_pneumonia))


def page_text(at: AppTest) -> str:
    """Everything the page sent to the browser: every element's message, recursively."""
    parts: list[str] = []

    def walk(node: object) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def open_upload(hybrid) -> AppTest:
    from ui.training import HYBRID

    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["models"] = {HYBRID: hybrid}
    at.run()
    at.switch_page("pages/4_Explain.py").run()
    at.radio(key="explain_mode").set_value("upload my own image").run()
    return at


def upload(at: AppTest, name: str, data: bytes, mime: str = "application/dicom") -> None:
    at.file_uploader(key="explain_upload").set_value((name, data, mime)).run()
    assert not at.exception, [e.value for e in at.exception]


def prediction(at: AppTest) -> str:
    (caption,) = [c.value for c in at.caption if c.value.startswith("Predicted")]
    return caption


@pytest.mark.slow
def test_explain_page_shows_dicom_facts_and_no_patient_details(hybrid, caplog):
    caplog.set_level(logging.DEBUG)
    image = load_arrays("pneumoniamnist")["test"][0][3]
    at = open_upload(hybrid)
    assert any("DICOM" in i.value for i in at.info)
    upload(at, "scan.dcm", dicom_file(ramp((2, 28, 28), 0, 255, np.uint8), frames=2))
    assert not at.error, [e.value for e in at.error]
    captions = [c.value for c in at.caption]
    assert "DICOM · modality CR · 28 × 28 pixels (rows × columns) · 8-bit. " in " ".join(captions)
    assert any(md("This file has 2 frames; the first is shown.") in c for c in captions)
    assert any("never shown or stored" in c for c in captions)
    text = page_text(at)
    assert "modality CR" in text  # the walk sees the captions
    assert_private(text)

    # The same pixels as DICOM and as PNG: the same prediction.
    upload(at, "scan.dcm", dicom_file(image))
    from_dicom = prediction(at)
    upload(at, "scan.png", png(image), "image/png")
    assert prediction(at) == from_dicom
    assert not any(c.value.startswith("DICOM ·") for c in at.caption)  # facts only for DICOM

    # A DICOM file without an image: a message, nothing of the patient.
    upload(at, "report.dcm", dicom_file(None, Modality="SR"))
    assert [e.value for e in at.error] and "holds no image" in at.error[0].value
    assert_private(page_text(at))
    assert_private(caplog.text)
