"""Reading a DICOM file (Part 10) into the 8-bit picture a viewer shows, and nothing else.

Clinicians' images are DICOM files. `read_dicom` turns the bytes of one into a `DicomImage`: its
first frame as uint8 gray or RGB, displayed as a DICOM viewer would (modality LUT or rescale, then
the file's VOI window or VOI LUT, else its own range; MONOCHROME1 inverted so that high values show
dark; YBR converted to RGB and palette colour expanded by pydicom), plus a few technical facts.

Privacy: a DICOM file also holds the patient's name, ID, birth date, the study and series UIDs, the
institution and more. Only the elements needed to show the pixels are parsed (`_NEEDED`); the
result keeps the pixels and the facts of `DicomImage` (modality, size, bit depth, frames, colour
model, whether a window was applied) and nothing else. No value read from the file other than those
facts is ever logged, printed or put into an exception message, and the ImageError raised for a bad
file carries no pydicom exception (whose text may quote values) as its cause or context.

Every failure is an ImageError with a one-line message for a non-programmer; nothing else escapes
`read_dicom`, whatever the bytes (tests/test_dicom.py fuzzes it).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import struct
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import numpy as np
import pydicom
import pydicom.config
from pydicom.encaps import get_frame
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info
from pydicom.filewriter import write_file_meta_info
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000TransferSyntaxes,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
    RLELossless,
)

from hqcnn import decode_budget
from hqcnn.errors import ImageError
from hqcnn.imageio import MAX_PIXELS

PREAMBLE = 128  # bytes before the "DICM" marker of a Part-10 file
MAGIC = b"DICM"
SNIFF_BYTES = PREAMBLE + len(MAGIC)  # what `is_dicom` needs to see

# The elements parsed: the Image Pixel, Modality LUT and VOI LUT modules and the modality. Asking
# pydicom for these alone means the patient's and study's elements are skipped, never decoded (so
# no warning about a malformed name can quote it) and never held.
_NEEDED = [
    "Modality",
    "BurnedInAnnotation",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData",
    "RescaleIntercept",
    "RescaleSlope",
    "ModalityLUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "VOILUTSequence",
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
    "PixelData",
    "FloatPixelData",
    "DoubleFloatPixelData",
]
# Values above this size (the pixel data) are left in the buffer until they are decoded: parsing
# the header costs the same for any image size.
_DEFER = "256 KB"

# What pydicom and its decoders raise on damaged or hostile data: a truncated element (EOFError,
# struct.error, BytesLengthException), a value of the wrong form (ValueError, with
# UnicodeDecodeError; KeyError and IndexError from a missing or short sequence item; OverflowError
# from a huge length), a deflated body that does not inflate (zlib.error), missing Image Pixel
# elements (AttributeError: pydicom reads them as attributes), a value of the wrong type (TypeError:
# a number left as text, since values are not validated, see below) and a decoder plug-in's failure (RuntimeError, NotImplementedError). MemoryError: a header that
# asks for more than the process can hold. Only the steps that call into pydicom (parsing, reading
# the header, decoding, the LUTs) are guarded by this tuple, not the checks around them, so that a
# mistake there is not taken for a damaged file.
_DATA_ERRORS: tuple[type[BaseException], ...] = (
    InvalidDicomError,
    BytesLengthException,
    EOFError,
    OSError,
    struct.error,
    zlib.error,
    ValueError,
    KeyError,
    IndexError,
    OverflowError,
    AttributeError,
    TypeError,
    RuntimeError,
    NotImplementedError,
    MemoryError,
)

_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")
_PALETTE = "PALETTE COLOR"
_CODE_STRING = re.compile(r"^[A-Z0-9_ ]{1,16}$")  # the form of a DICOM code string (CS)
# The defined terms of Photometric Interpretation (PS3.3 C.7.6.3.1.2), retired ones included, and of
# Modality (PS3.3 C.7.3.1.1.1, as of 2024, retired ones included). A value of a code string's form
# can still be a word of the patient's ("JANE DOE" is one), so only these are ever shown; any other
# modality is shown as OTHER.
_PHOTOMETRIC_TERMS = frozenset({*_MONOCHROME, *_COLOUR, _PALETTE, "YBR_PARTIAL_422", "HSV", "ARGB", "CMYK", "XYZ"})
MODALITY_TERMS = frozenset(
    """AR ASMT AU BDUS BI BMD CFM CP CR CS CT CTPROTOCOL DD DF DG DM DMS DOC DS DX EC ECG EPS ES FA FID FS GM
    HC HD IO IOL IVOCT IVUS KER KO LEN LP LS MA MG MR MS NM OAM OCT OP OPM OPR OPT OPTBSV OPTENF OPV OSS OT
    PLAN POS PR PT PX REG RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG
    SM SMR SR SRF STAIN ST TEXTUREMAP TG US VA VF XA XAPROTOCOL XC""".split()
)
OTHER_MODALITY = "OTHER"

NOT_DICOM = "The file is not a DICOM image (it lacks the 'DICM' marker of a DICOM file)."
DAMAGED = "The DICOM file is damaged or incomplete and cannot be read."
NO_PIXELS = (
    "The DICOM file holds no image: it may be a report, a measurement or a list of files, or it was "
    "cut short. Choose a file that holds a picture."
)
_T = TypeVar("_T")

# pydicom warns about, and logs, malformed elements, and its messages can quote bytes of the file
# (a damaged length makes a "value" that runs on into the patient's name). So values are not
# validated as they are read (the check that writes most such messages; a pydicom setting for the
# whole process, which reads DICOM nowhere else); this thread's pydicom log records are dropped
# while it reads a file (a filter keyed on a thread-local flag: other threads are untouched); and
# warnings issued from pydicom's modules, or from this module's calls into it, are ignored (a
# warnings filter cannot tell threads apart; pydicom's warnings only ever concern a file read here).
_reading = threading.local()


class _WhileReading(logging.Filter):
    """Drops the records of a thread that is inside `read_dicom`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_reading, "active", False)


_PYDICOM_LOGGER = logging.getLogger("pydicom")
_PYDICOM_LOGGER.addFilter(_WhileReading())
_QUIET_MODULES = (r"pydicom(\.|$)", r"hqcnn\.dicom$")


def _quiet_warnings() -> None:
    """Put the filters that ignore pydicom's warnings (and this module's calls into it) first, once
    per process, or again if another filter was put before them or a `warnings.catch_warnings`
    block (as pytest uses around each test) restored the filters without them."""
    first = {(f[0], f[3].pattern) for f in warnings.filters[: len(_QUIET_MODULES)] if f[3] is not None}
    if first != {("ignore", module) for module in _QUIET_MODULES}:
        for module in _QUIET_MODULES:
            warnings.filterwarnings("ignore", module=module)  # moved to the front if already present


@dataclass(frozen=True)
class DicomImage:
    """The first frame of a DICOM file as a viewer shows it, and facts that identify nobody.

    `pixels` is uint8, (rows, columns) gray or (rows, columns, 3) RGB. The other fields describe
    the file: `modality` ("CR", "DX", "MR", …; "" if absent or malformed), `rows` × `columns`,
    `bits_stored` (the bit depth of a sample), `frames`, `photometric` (its colour model as
    stored, e.g. "MONOCHROME1", "YBR_FULL_422"), `windowed` (the file's VOI window or VOI LUT was
    applied), `burned_in` (Burned In Annotation: "yes", "no" or "unknown" when the file does not
    say: text such as the patient's name may be part of the pixels) and `note` (a plain sentence for
    the user, or ""). `modality` is one of the standard terms (MODALITY_TERMS), OTHER_MODALITY for
    any other value, or "".
    """

    pixels: np.ndarray = field(repr=False)
    modality: str
    rows: int
    columns: int
    bits_stored: int
    frames: int
    photometric: str
    windowed: bool
    burned_in: str
    note: str

    def facts(self) -> dict[str, Any]:
        """Every field but the pixels, by name (what `describe_dicom` returns)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "pixels"}


def is_dicom(data: bytes) -> bool:
    """True if `data` starts like a DICOM Part-10 file: a 128-byte preamble, then b"DICM".

    (Files without the preamble, as some old systems wrote, are not recognised.)
    """
    return len(data) >= SNIFF_BYTES and bytes(data[PREAMBLE:SNIFF_BYTES]) == MAGIC


def _guarded(call: Callable[[], _T], message: str) -> _T:
    """call(), or ImageError(message) if pydicom finds the data bad.

    The ImageError is raised outside the `except` block, so it carries no pydicom exception as its
    cause or context: their texts may quote values of the file, and a logged traceback would show them.
    """
    try:
        return call()
    except _DATA_ERRORS:
        pass
    except BaseException as err:
        if not _is_panic(err):
            raise
    raise ImageError(message)


def _is_panic(err: BaseException) -> bool:
    """True for the PanicException of a decoder written in Rust (pylibjpeg-rle) that met bad data.

    PyO3 turns a Rust panic into pyo3_runtime.PanicException, a BaseException (so `except
    Exception` misses it) from a module that cannot be imported: it is known by its name. The panic
    has been unwound by then, so the process is sound.
    """
    kind = type(err)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"


def _code(value: object) -> str:
    """A code-string value (modality, colour model) if it has a code string's form, else "":
    a malformed value could hold any text."""
    text = str(value).strip() if value is not None else ""
    return text if _CODE_STRING.match(text) else ""


def _modality(value: object) -> str:
    """The modality to show: a standard term, OTHER_MODALITY for any other value, "" if none."""
    if value is None or not str(value).strip():
        return ""
    code = _code(value)
    return code if code in MODALITY_TERMS else OTHER_MODALITY


def _burned_in(value: object) -> str:
    """Burned In Annotation as "yes", "no" or "unknown" (absent or malformed)."""
    return {"YES": "yes", "NO": "no"}.get(_code(value), "unknown")


def _int(ds: pydicom.Dataset, keyword: str, default: int | None = None) -> int:
    """An integer element of the Image Pixel module; ImageError(DAMAGED) if absent (without a
    default) or not an integer."""
    value = ds.get(keyword, default)
    # US and IS values are ints; a multi-valued, missing or non-numeric one means a damaged header.
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise ImageError(DAMAGED)


@dataclass(frozen=True)
class _Header:
    modality: str
    photometric: str
    rows: int
    columns: int
    bits_stored: int
    frames: int
    samples: int
    bits_allocated: int
    burned_in: str
    window: tuple[float, float] | None  # the VOI output for black and for white; None: no window

    def facts(self, windowed: bool) -> dict[str, Any]:
        notes = []
        if self.frames > 1:
            notes.append(f"This file has {self.frames} frames; the first is shown.")
        return {
            "modality": self.modality,
            "rows": self.rows,
            "columns": self.columns,
            "bits_stored": self.bits_stored,
            "frames": self.frames,
            "photometric": self.photometric,
            "windowed": windowed,
            "burned_in": self.burned_in,
            "note": " ".join(notes),
        }


def _header(ds: pydicom.Dataset) -> _Header:
    """The facts needed before decoding, checked: pixel data present, colour model known, size
    within MAX_PIXELS and the decode budget (rows × columns × samples × bytes a sample), and the VOI
    window if there is a usable one."""
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise ImageError(
                "The DICOM file holds floating-point pixel data (a parametric map), which cannot be shown here."
            )
        if "Rows" in ds or "Columns" in ds or "PhotometricInterpretation" in ds:
            raise ImageError(DAMAGED)  # it describes an image whose pixels are missing: cut short
        raise ImageError(NO_PIXELS)
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if not syntax:
        raise ImageError(DAMAGED)  # without it the pixel data's encoding is unknown
    rows, columns = _int(ds, "Rows"), _int(ds, "Columns")
    frames = _int(ds, "NumberOfFrames", 1)
    bits_allocated = _int(ds, "BitsAllocated")
    bits_stored = _int(ds, "BitsStored", bits_allocated)
    samples = _int(ds, "SamplesPerPixel")
    if rows <= 0 or columns <= 0 or frames <= 0:
        raise ImageError(f"The DICOM image has no pixels ({columns} × {rows}, {frames} frame(s)).")
    if samples not in (1, 3) or not 1 <= bits_allocated <= 64:
        raise ImageError(DAMAGED)
    # Before decoding: only the header has been parsed, so a huge image costs nothing yet. Only the
    # first frame is ever decoded, so its size is what must fit; a multi-frame file's other frames
    # stay as bytes (at most MAX_UPLOAD_BYTES of them).
    if rows * columns > MAX_PIXELS:
        raise ImageError(
            f"The DICOM image has too many pixels ({columns} × {rows}): the limit is "
            f"{MAX_PIXELS / 1e6:g} million (for example 6000 × 6000)."
        )
    photometric = _code(ds.get("PhotometricInterpretation"))
    if photometric not in (*_MONOCHROME, *_COLOUR, _PALETTE):
        shown = f"'{photometric}'" if photometric in _PHOTOMETRIC_TERMS else "an unknown one"
        raise ImageError(
            f"The DICOM image uses a colour model this app cannot show ({shown}); "
            "gray (MONOCHROME1/2), RGB, YBR and palette colour are supported."
        )
    # The decoded first frame (a palette image becomes 16-bit RGB), then what displaying it holds.
    colours, sample_bytes = (3, 2) if photometric == _PALETTE else (samples, -(-bits_allocated // 8))
    decode_budget.check_decoded_bytes(rows, columns, colours, sample_bytes, "DICOM image")
    window = None
    if photometric in _MONOCHROME:  # the VOI module applies to gray images only
        try:
            window = _voi_range(ds)
        except _DATA_ERRORS:
            window = None  # a malformed window (a width of 0, a short LUT): shown as if there were none
    return _Header(
        _modality(ds.get("Modality")),
        photometric,
        rows,
        columns,
        bits_stored,
        frames,
        samples,
        bits_allocated,
        _burned_in(ds.get("BurnedInAnnotation")),
        window,
    )


def _check_decoder(ds: pydicom.Dataset) -> None:
    """ImageError naming the compression if no installed plug-in can decode this transfer syntax."""
    syntax = UID(str(ds.file_meta.TransferSyntaxUID))
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:  # pydicom knows no decoder for it at all
        available = False
    if not available:
        # A standard syntax has a name in words; a private one's UID means nothing to a user.
        what = f"'{syntax.name}'" if syntax.is_transfer_syntax else "a non-standard format"
        raise ImageError(
            f"The DICOM image is compressed with {what}, which this installation cannot decode. "
            "Export it uncompressed or as PNG."
        )


def _to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """`values` mapped linearly from low..high to 0..255 (clipped, rounded); all 0 if high <= low."""
    if not high > low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (np.asarray(values, dtype=np.float64) - low) / (high - low) * 255.0
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def _voi_range(ds: pydicom.Dataset) -> tuple[float, float] | None:
    """The output values that pydicom's `apply_voi_lut` gives for black and for white, or None if
    the file has no usable VOI window or LUT.

    Found by asking pydicom itself rather than repeating its rules: a window sends everything below
    it to its lowest output and everything above to its highest (whatever the bit depth and
    rescale), and a VOI LUT's outputs are its entries, taken from the lowest to the highest.
    """
    sequence = ds.get("VOILUTSequence")
    if sequence and "LUTDescriptor" in sequence[0] and "LUTData" in sequence[0]:
        entries, first, bits = (int(v) for v in sequence[0].LUTDescriptor)
        if bits == 8 and entries != 256:
            # pydicom 3.0.2 indexes an 8-bit LUT with 8-bit indices, so inputs above 255 wrap
            # around; declared 16-bit, the same entries are looked up with wide enough indices.
            sequence[0].LUTDescriptor = [entries, first, 16]
        lut = apply_voi_lut(np.arange(first, first + (entries or 2**16), dtype=np.int64), ds)
        return float(lut.min()), float(lut.max())
    if ds.get("WindowCenter") is None or ds.get("WindowWidth") is None:
        return None
    with np.errstate(over="ignore"):  # a SIGMOID window's exp() of the far ends
        black, white = apply_voi_lut(np.array([-1e300, 1e300]), ds)
    return float(black), float(white)


def _monochrome(frame: np.ndarray, ds: pydicom.Dataset, header: _Header) -> np.ndarray:
    """A gray frame as shown: modality LUT, then the VOI window or LUT (else the image's own range
    or, for 8-bit data, the 8-bit range as stored), MONOCHROME1 inverted."""
    values = apply_modality_lut(frame, ds)
    if header.window is not None:
        if ds.get("VOILUTSequence") and not np.issubdtype(values.dtype, np.integer):
            values = np.round(values).astype(np.int64)  # a LUT is indexed by integers
        shown = apply_voi_lut(values, ds)
        black, white = header.window
        # A window puts black at its low end even when a negative rescale slope made that the
        # larger number (pydicom then returns white < black): map each end to its own grey.
        gray = _to_uint8(shown, black, white) if black <= white else 255 - _to_uint8(shown, white, black)
    else:
        low, high = float(values.min()), float(values.max())
        if header.bits_stored <= 8 and int(ds.get("PixelRepresentation", 0)) == 0 and 0 <= low and high <= 255:
            # 8-bit data (a secondary capture, a photograph): its values are already the grays
            # to show, as they would be in a PNG of the same picture.
            low, high = 0.0, 255.0
        gray = _to_uint8(values, low, high)
    if header.photometric == "MONOCHROME1":
        gray = 255 - gray  # the lowest value is white
    return gray


def _colour(frame: np.ndarray, ds: pydicom.Dataset, header: _Header, photometric: str) -> np.ndarray:
    """An RGB (or palette) frame as uint8 RGB: 8-bit samples as they are, deeper ones scaled from
    their full range (as a 16-bit PNG is read)."""
    if photometric == _PALETTE:
        frame = apply_color_lut(frame, ds)
        depth = 16 if frame.dtype.itemsize > 1 else 8
    else:
        depth = max(1, min(header.bits_stored, 8 * frame.dtype.itemsize))
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ImageError(DAMAGED)
    if depth <= 8 and frame.dtype == np.uint8:
        return frame
    if frame.dtype.kind == "u" and depth <= 16:
        # round(v × 255 / top) in 32-bit integers, a quarter of the float64 path's memory: top is odd,
        # so v × 255 / top is never a tie and rounding half up agrees with np.round.
        top = 2**depth - 1
        values = np.minimum(frame, top).astype(np.uint32)
        values *= 255
        values += top // 2
        values //= top
        return values.astype(np.uint8)
    return _to_uint8(frame, 0.0, float(2**depth - 1))


def _codestream_family(syntax: UID) -> str | None:
    """Which header `decode_budget.check_codestream` reads for this transfer syntax; None for native data."""
    if syntax in JPEG2000TransferSyntaxes:
        return "j2k"
    if syntax in JPEGTransferSyntaxes or syntax in JPEGLSTransferSyntaxes:
        return "jpeg"
    if syntax == RLELossless:
        return "rle"
    if syntax.is_encapsulated:
        raise ImageError(  # a decoder exists, but the size it would decode at cannot be read beforehand
            f"The DICOM image is compressed with '{syntax.name}', whose image size cannot be checked before "
            "decoding. Export it uncompressed or as PNG."
        )
    return None


def _check_frame(ds: pydicom.Dataset, header: _Header) -> None:
    """For compressed pixel data: the first frame's codestream must declare the header's size
    (the decoder goes by the codestream), else ImageError, before anything is decoded."""
    family = _codestream_family(UID(str(ds.file_meta.TransferSyntaxUID)))
    if family is None:
        return
    offsets = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    # The same call that pydicom's decoder makes to find frame 0, so the bytes checked are the bytes decoded.
    frame = get_frame(ds.PixelData, 0, extended_offsets=offsets, number_of_frames=header.frames)
    decode_budget.check_codestream(frame, family, header.rows, header.columns, header.samples, header.bits_allocated)


def _undeflated(data: bytes) -> bytes:
    """A Deflated Explicit VR Little Endian file as the same file in Explicit VR Little Endian, its
    body inflated at most `decode_budget.MAX_INFLATED_BYTES` (pydicom inflates it all in one call);
    any other file as it is."""
    fp = io.BytesIO(data)
    fp.seek(SNIFF_BYTES)
    meta = _read_file_meta_info(fp)
    if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return data
    body = decode_budget.inflate_bounded(data[fp.tell() :])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if "FileMetaInformationGroupLength" in meta:
        del meta.FileMetaInformationGroupLength  # its value was the old syntax's
    out = DicomBytesIO()
    out.write(data[:SNIFF_BYTES])
    write_file_meta_info(out, meta, enforce_standard=False)
    out.write(body)
    return out.getvalue()


def _parse(data: bytes) -> pydicom.Dataset:
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE  # see `_reading`
    return pydicom.dcmread(io.BytesIO(data), defer_size=_DEFER, force=False, specific_tags=_NEEDED)


def _first_frame(ds: pydicom.Dataset) -> tuple[np.ndarray, str]:
    """The first frame as decoded by pydicom (YBR made RGB), and its colour model after decoding."""
    frame, meta = get_decoder(UID(str(ds.file_meta.TransferSyntaxUID))).as_array(ds, index=0)
    return frame, str(meta.get("photometric_interpretation", ds.PhotometricInterpretation))


def _open(data: bytes) -> tuple[pydicom.Dataset, _Header]:
    """The parsed elements and checked header of a DICOM file, before any pixel is decoded."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"Expected the bytes of a DICOM file, got {type(data).__name__}.")
    data = bytes(data)
    if not is_dicom(data):
        raise ImageError(NOT_DICOM)
    data = _guarded(lambda: _undeflated(data), DAMAGED)
    ds = _guarded(lambda: _parse(data), DAMAGED)
    header = _guarded(lambda: _header(ds), DAMAGED)
    _check_decoder(ds)
    _guarded(lambda: _check_frame(ds, header), DAMAGED)
    return ds, header


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """pydicom's warnings and this thread's pydicom log records silenced (see `_reading`)."""
    _quiet_warnings()
    _reading.active = True
    try:
        yield
    finally:
        _reading.active = False


def describe_dicom(data: bytes) -> dict[str, Any]:
    """The facts `read_dicom` would give (`DicomImage.facts()`), from the header alone.

    Parses the same elements and makes the same checks as `read_dicom` up to decoding: cheap (a
    millisecond or two) whatever the image's size. A file that passes may still fail to decode.
    """
    with _quiet():
        _, header = _open(data)
    return header.facts(windowed=header.window is not None)


def read_dicom(data: bytes) -> DicomImage:
    """The bytes of a DICOM Part-10 file → its first frame as a viewer shows it, with its facts.

    Raises ImageError, with a one-line message that quotes nothing of the file but the facts of
    `DicomImage`, when the bytes are not DICOM, hold no image, are compressed in a way no installed
    plug-in decodes, describe more than MAX_PIXELS pixels a frame (checked before decoding), or are
    damaged.
    """
    with _quiet():
        ds, header = _open(data)
        frame, photometric = _guarded(lambda: _first_frame(ds), DAMAGED)
        if frame.ndim == 3 and frame.shape[2] == 1:
            frame = frame[..., 0]
        if frame.shape[:2] != (header.rows, header.columns):
            raise ImageError(DAMAGED)
        if photometric in _MONOCHROME and frame.ndim == 2:
            pixels = _guarded(lambda: _monochrome(frame, ds, header), DAMAGED)
        elif photometric in (*_COLOUR, _PALETTE):
            pixels = _guarded(lambda: _colour(frame, ds, header, photometric), DAMAGED)
        else:
            raise ImageError(DAMAGED)  # e.g. a gray colour model with three samples a pixel
    facts = header.facts(windowed=header.window is not None and photometric in _MONOCHROME)
    return DicomImage(pixels=np.ascontiguousarray(pixels), **facts)
