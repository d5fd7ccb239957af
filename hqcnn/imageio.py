"""Reading user-uploaded images (PNG, JPEG or DICOM) safely, into the uint8 arrays the models are fed from.

An upload is untrusted: it may be empty, mislabelled (a GIF or a PDF renamed .png), truncated,
damaged, huge, or a decompression bomb (a few KB that decode to gigabytes). Each of these ends in
an ImageError with a one-line message for the user; nothing else escapes `read_image`.

A file is told by its first bytes, not its name: the PNG or JPEG signature, or the DICOM Part-10
preamble and "DICM" marker. A DICOM file is read by `hqcnn.dicom.read_dicom` (its first frame, as
a viewer shows it: modality LUT, VOI window, MONOCHROME1 inverted) and then takes the same path as
a decoded PNG. Accepted pictures are brought to what MedMNIST looks like: 8-bit gray or RGB,
upright (EXIF orientation applied) and centre-cropped to a square; `preprocessing.preprocess` then
resizes them. `describe_upload` gives a DICOM file's facts (modality, size, bit depth, …; never
anything about the patient) for display, and None for a PNG or JPEG.
"""

from __future__ import annotations

import dataclasses
import io
import struct
import warnings
import zlib
from types import ModuleType
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from hqcnn import decode_budget
from hqcnn.config import DataConfig
from hqcnn.datasets_base import ModelMeta
from hqcnn.errors import ImageError
from hqcnn.preprocessing import preprocess

MAX_UPLOAD_BYTES = 10 * 2**20
MAX_PIXELS = 40_000_000  # width × height; a 40 MP RGBA image already decodes to 160 MB

# PIL warns above MAX_IMAGE_PIXELS and refuses above twice that. Lowering its limit to ours makes
# PIL's own guard agree with the explicit header check below (which does not rely on it).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

SNIFF_BYTES = 132  # enough to tell every accepted format: DICOM's is the longest (a 128-byte preamble, "DICM")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
# MPO is the multi-picture JPEG of phone and 3D cameras; PIL names it apart, its first frame is a JPEG.
_FORMATS = {"PNG", "JPEG", "MPO"}
# What PIL's decoders raise on damaged or hostile data (zlib and struct errors come from PNG chunks).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError, TypeError)

_TOO_LARGE = f"The image has too many pixels: the limit is {MAX_PIXELS / 1e6:g} million (for example 6000 × 6000)."
_DAMAGED = "The image file is damaged or incomplete and cannot be read."
_NOT_AN_IMAGE = "The file is not a PNG, JPEG or DICOM image."


def _dicom() -> ModuleType:
    """hqcnn.dicom, imported on first use: it takes MAX_PIXELS from this module (so it cannot be
    imported at the top), and pydicom costs a fifth of a second to import, paid only when a DICOM
    file arrives."""
    from hqcnn import dicom

    return dicom


def _is_png_or_jpeg(data: bytes) -> bool:
    return data.startswith(_PNG_MAGIC) or data.startswith(_JPEG_MAGIC)


def sniff_image(head: bytes) -> bool:
    """True if `head`, the first SNIFF_BYTES bytes of a file (or all of a shorter one), starts like
    a PNG, JPEG or DICOM file: the test `read_image` makes before it decodes anything."""
    head = bytes(head[:SNIFF_BYTES])
    return _is_png_or_jpeg(head) or _dicom().is_dicom(head)


def _check_bytes(data: bytes) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"Expected the bytes of an image file, got {type(data).__name__}.")
    data = bytes(data)
    if not data:
        raise ImageError("The file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(
            f"The file is too large ({len(data) / 2**20:.1f} MB); the limit is {MAX_UPLOAD_BYTES / 2**20:g} MB."
        )
    if not sniff_image(data):
        raise ImageError(_NOT_AN_IMAGE)
    return data


def _open(data: bytes) -> Image.Image:
    """Open and fully decode the first frame, after checking format and size from the header."""
    try:
        with warnings.catch_warnings():
            # Just above the limit PIL only warns; make that a refusal. (The explicit size check
            # below gives the same answer, so a race on the global warning filters cannot let
            # a bomb through.)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(_TOO_LARGE) from None
    except _DECODE_ERRORS as err:
        # A PNG/JPEG signature that PIL cannot parse: a corrupt header or another file type in disguise.
        raise ImageError("The file is not a readable PNG or JPEG image.") from err
    if img.format not in _FORMATS:
        raise ImageError(f"The file is a {img.format or 'unknown'} image, not a PNG or JPEG.")
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError(f"The image has no pixels ({width} × {height}).")
    # Before decoding: only the header has been read so far, so a bomb costs nothing yet.
    if width * height > MAX_PIXELS:
        raise ImageError(f"The image is {width} × {height} pixels. " + _TOO_LARGE)
    decode_budget.check_pil(width, height, img.mode)  # pixels × the bytes PIL holds for each
    try:
        img.load()  # PIL decodes lazily; force it so truncated data fails here, not later
    except _DECODE_ERRORS as err:
        raise ImageError(_DAMAGED) from err
    return img


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (phone photos are stored sideways with a rotation tag)."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 — the pixels decoded fine; a garbled EXIF block only loses the rotation
        return img


def _centre_square(img: Image.Image) -> Image.Image:
    """The largest centred square: MedMNIST images are centre-cropped squares, and resizing a
    non-square picture to one would distort it."""
    width, height = img.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return img.crop((left, top, left + side, top + side))


def _to_gray_or_rgb(img: Image.Image) -> Image.Image:
    """Any PNG/JPEG mode → 8-bit "L" or "RGB"."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit gray (I;16) or its 32-bit container (I): scale by the format's range, 65535 → 255,
        # not by the image's own min and max, so that brightness means the same in every file.
        # (v + 128) // 257 is round(v / 257) (257 is odd: no ties), in integers a quarter the size of floats.
        values = np.clip(np.asarray(img), 0, 65535).astype(np.int32)
        return Image.fromarray(((values + 128) // 257).astype(np.uint8), "L")
    if mode == "F":
        values = np.asarray(img, dtype=np.float64)
        return Image.fromarray(np.round(np.clip(np.nan_to_num(values), 0, 255)).astype(np.uint8), "L")
    if mode == "1":
        return img.convert("L")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        gray = mode in ("LA", "La") or (mode == "L" and "transparency" in img.info)
        rgba = img.convert("LA" if gray else "RGBA")
        # Composite on black, not white: in X-rays and fundus photos black is "nothing there"
        # (no absorption, no light), so transparent margins must look like the usual background.
        background = Image.new("L" if gray else "RGB", img.size, 0)
        background.paste(rgba.convert("L" if gray else "RGB"), mask=rgba.getchannel("A"))
        return background
    if mode in ("L", "RGB"):
        return img
    return img.convert("RGB")  # P (palette), CMYK, YCbCr, LAB, …


def _picture(data: bytes) -> tuple[Image.Image, dict[str, Any] | None]:
    """The decoded picture of checked bytes, with a DICOM file's facts (None for PNG and JPEG): a
    PNG or JPEG upright, a DICOM file's first frame as shown (8-bit gray "L" or "RGB", see hqcnn.dicom)."""
    if _is_png_or_jpeg(data):
        return _upright(_open(data)), None
    image = _dicom().read_dicom(data)
    return Image.fromarray(image.pixels), image.facts()


def read_image(data: bytes, channels: int) -> np.ndarray:
    """The bytes of a PNG, JPEG or DICOM file → uint8 (H, W) if `channels` == 1, else (H, W, 3); H == W.

    Accepts 8- and 16-bit gray, RGB, RGBA and gray+alpha (composited on black), palette, CMYK
    and 1-bit images of any size up to MAX_PIXELS; applies the EXIF orientation and crops the
    centred square. A DICOM file gives its first frame as a viewer shows it (see hqcnn.dicom).
    Colour images are made gray with ITU-R BT.601 weights (as `preprocessing.preprocess` does).
    Raises ImageError, with a one-line message, for anything it cannot accept.
    """
    return read_upload(data, channels)[0]


def read_upload(data: bytes, channels: int) -> tuple[np.ndarray, dict[str, Any] | None]:
    """`read_image` and `describe_upload` at once, the file parsed and decoded once: the picture
    and a DICOM file's facts (None for PNG and JPEG)."""
    if channels not in (1, 3):
        raise ImageError(f"Images can have 1 or 3 channels, not {channels!r}.")
    data = _check_bytes(data)
    img, facts = _picture(data)
    try:
        img = _to_gray_or_rgb(_centre_square(img))
        img = img.convert("L" if channels == 1 else "RGB")
        array = np.asarray(img, dtype=np.uint8)
    except _DECODE_ERRORS as err:
        raise ImageError(_DAMAGED) from err
    expected_ndim = 2 if channels == 1 else 3
    if array.ndim != expected_ndim or array.size == 0:
        raise ImageError(_DAMAGED)
    return np.ascontiguousarray(array), facts


def describe_upload(data: bytes) -> dict[str, Any] | None:
    """A DICOM file's facts for display, or None for a PNG or JPEG file.

    The facts are `hqcnn.dicom.DicomImage.facts()`: "modality" ("CR", "MR", …; "" if the file has
    none), "rows", "columns", "bits_stored", "frames", "photometric", "windowed" (its VOI window
    was applied) and "note" (a sentence for the user, or ""); nothing that identifies the patient.
    They come from the file's header (a millisecond or two, whatever its size); `read_image` reads
    the pixels. Raises ImageError for bytes `read_image` refuses before decoding (not an image,
    too large, a DICOM file without an image or with an undecodable compression, …).
    """
    data = _check_bytes(data)
    if _is_png_or_jpeg(data):
        return None
    return _dicom().describe_dicom(data)


def image_to_model_input(data: bytes, meta: ModelMeta, data_config: DataConfig) -> torch.Tensor:
    """An uploaded image as the model's input (1, C, H, W): read, resized and normalised as in training.

    Uses `meta`'s channels, image size, mean and std. No noise is added even if `data_config`
    asks for it: that setting simulates noisy test data, and an upload is to be judged as it is.
    """
    return upload_to_model_input(data, meta, data_config)[0]


def upload_to_model_input(
    data: bytes, meta: ModelMeta, data_config: DataConfig
) -> tuple[torch.Tensor, dict[str, Any] | None]:
    """`image_to_model_input` and `describe_upload` at once, the file decoded once."""
    picture, facts = read_upload(data, meta.in_channels)
    config = dataclasses.replace(data_config, image_size=meta.image_size, noise_std=0.0)
    return preprocess(picture[None], config, meta.mean, meta.std), facts
