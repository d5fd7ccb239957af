"""What decoding an uploaded image will cost, decided from its headers before a pixel is decoded.

A file's cost is the memory its decoded pixels take: rows × columns × samples × bytes per sample
(`decoded_bytes`), for the frames actually decoded (the first). A pixel count alone is not enough:
a 40-megapixel 16-bit RGB image holds six times the bytes of a 40-megapixel 8-bit gray one.

The size that counts is the one the decoder will use. For compressed DICOM pixel data that is the
size written in the codestream itself, not the DICOM header: a header that says 16 × 16 around a
JPEG 2000 codestream that says 20000 × 20000 would be decoded at 20000 × 20000. So
`codestream_geometry` reads the JPEG 2000 SIZ marker, the JPEG and JPEG-LS start-of-frame marker
(SOF0..SOF15, SOF55) and the RLE header, and `check_codestream` refuses a frame whose codestream
disagrees with its header. `inflate_bounded` unpacks a deflated DICOM body in chunks, stopping at
MAX_INFLATED_BYTES (pydicom would inflate all of it in one call).

Every refusal is an ImageError whose message quotes only numbers read from the file.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

from hqcnn.errors import ImageError

# The decoded pixels of one image: 128 MiB is a 16-bit 8000 × 8000 mammogram, an 8-bit RGB
# 6500 × 6500 photograph (PIL holds RGB in 4 bytes a pixel), a 16-bit RGB 4700 × 4700 image.
# benchmarks/bench_upload.py measures what the largest accepted image costs.
MAX_DECODED_BYTES = 128 * 2**20
# A deflated DICOM data set, unpacked: the budget plus room for the other elements of the file.
MAX_INFLATED_BYTES = MAX_DECODED_BYTES + 16 * 2**20
INFLATE_CHUNK = 4 * 2**20  # bytes inflated per step: the most held beyond the limit
MAX_TILES = 16_384  # JPEG 2000 tiles a frame may have (a 6000 × 6000 image in 64 × 64 tiles has 8 836)

_J2K_SOC_SIZ = b"\xff\x4f\xff\x51"
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
# Start-of-frame markers of ISO 10918 (all but DHT C4, JPG C8 and DAC CC) and SOF55 of JPEG-LS.
_JPEG_SOF = {*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC} | {0xF7}
_JPEG_STANDALONE = {*range(0xD0, 0xD8), 0x01}  # RSTn and TEM carry no length
_JPEG_SOS, _JPEG_EOI = 0xDA, 0xD9
_SIZ_COMPONENTS = 42  # where a JPEG 2000 codestream's per-component sizes start
_RLE_HEADER = 64

DAMAGED = "The DICOM file is damaged or incomplete and cannot be read."


@dataclass(frozen=True)
class Geometry:
    """The size of an image as a codestream declares it: `rows` × `columns` pixels of `samples`
    samples (colour components) of `bits` bits each, in `tiles` tiles (JPEG 2000)."""

    rows: int
    columns: int
    samples: int
    bits: int
    tiles: int = 1


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def decoded_bytes(rows: int, columns: int, samples: int, bytes_per_sample: int, frames: int = 1) -> int:
    """The memory that `frames` decoded frames of `rows` × `columns` × `samples` samples take."""
    return rows * columns * samples * bytes_per_sample * frames


def check_decoded_bytes(rows: int, columns: int, samples: int, bytes_per_sample: int, what: str = "image") -> None:
    """ImageError if one decoded frame of this size would exceed MAX_DECODED_BYTES."""
    size = decoded_bytes(rows, columns, samples, bytes_per_sample)
    if size > MAX_DECODED_BYTES:
        depth = f"{samples} sample{'s' if samples != 1 else ''} of {8 * bytes_per_sample} bits a pixel"
        raise ImageError(
            f"The {what} is too large to read here: {columns} × {rows} pixels, {depth}, take {_mb(size)} "
            f"once decoded; the limit is {_mb(MAX_DECODED_BYTES)}. Export it smaller or as an 8-bit image."
        )


def pil_bytes_per_pixel(mode: str) -> int:
    """Bytes a pixel of a PIL image of `mode` takes in memory: PIL keeps 8-bit gray, palette and
    1-bit images in one byte, 16-bit gray in two, and every other mode (RGB included) in four."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def check_pil(width: int, height: int, mode: str) -> None:
    """ImageError if a PNG or JPEG of this header size and PIL mode would exceed the budget."""
    check_decoded_bytes(height, width, 1, pil_bytes_per_pixel(mode))


# --- codestreams ---------------------------------------------------------------------------------


def _jpeg_geometry(data: bytes) -> Geometry:
    """The SOF marker of a JPEG or JPEG-LS codestream: its lines, samples a line, components, precision."""
    if not data.startswith(b"\xff\xd8"):
        raise ImageError(DAMAGED)
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise ImageError(DAMAGED)
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte before a marker
            at += 1
            continue
        if marker in _JPEG_STANDALONE:
            at += 2
            continue
        if marker in (_JPEG_SOS, _JPEG_EOI):
            break  # the scan began with no frame header
        (length,) = struct.unpack_from(">H", data, at + 2)
        if marker in _JPEG_SOF:
            if length < 8 or at + 10 > len(data):
                break
            bits, rows, columns, samples = struct.unpack_from(">BHHB", data, at + 4)
            # rows == 0 means a DNL marker gives the height after the first scan: a size that cannot
            # be checked before decoding, refused (no modality writes it).
            if rows == 0 or columns == 0 or samples == 0:
                break
            return Geometry(rows, columns, samples, bits)
        if length < 2:
            break
        at += 2 + length
    raise ImageError(DAMAGED)


def _j2k_codestream(data: bytes) -> bytes:
    """The codestream of a JPEG 2000 frame: as it is, or the contents of a JP2 file's 'jp2c' box."""
    if data.startswith(_J2K_SOC_SIZ):
        return data
    if data.startswith(_JP2_SIGNATURE):
        at = 0
        while at + 8 <= len(data):
            length, kind = struct.unpack_from(">I4s", data, at)
            header = 8
            if length == 1 and at + 16 <= len(data):
                (length,) = struct.unpack_from(">Q", data, at + 8)
                header = 16
            if kind == b"jp2c":
                return data[at + header :]
            if length < header:  # 0: "to the end of the file", and that is not the codestream
                break
            at += length
    raise ImageError(DAMAGED)


def _j2k_geometry(data: bytes) -> Geometry:
    """The SIZ marker of a JPEG 2000 (or HTJ2K) codestream: the image area, components and precision."""
    stream = _j2k_codestream(data)
    # SOC, SIZ, Lsiz, Rsiz (8 bytes), eight 32-bit sizes and offsets, Csiz: 42 bytes, then 3 a component.
    if len(stream) < _SIZ_COMPONENTS:
        raise ImageError(DAMAGED)
    xsiz, ysiz, xo, yo, xt, yt, xto, yto, components = struct.unpack_from(">8IH", stream, 8)
    if not (xsiz > xo and ysiz > yo and xt > 0 and yt > 0 and xto <= xo and yto <= yo and components > 0):
        raise ImageError(DAMAGED)
    if len(stream) < _SIZ_COMPONENTS + 3 * components:
        raise ImageError(DAMAGED)
    bits = 0
    for c in range(components):
        ssiz, dx, dy = struct.unpack_from(">BBB", stream, _SIZ_COMPONENTS + 3 * c)
        if dx == 0 or dy == 0:
            raise ImageError(DAMAGED)
        bits = max(bits, (ssiz & 0x7F) + 1)
    tiles = math.ceil((xsiz - xto) / xt) * math.ceil((ysiz - yto) / yt)
    return Geometry(ysiz - yo, xsiz - xo, components, bits, tiles)


def rle_segments(data: bytes) -> int:
    """The number of segments an RLE Lossless frame's header declares (one per byte of a sample)."""
    if len(data) < _RLE_HEADER:
        raise ImageError(DAMAGED)
    (segments,) = struct.unpack_from("<I", data, 0)
    return segments


def codestream_geometry(frame: bytes, family: str) -> Geometry:
    """The geometry a JPEG ("jpeg", also JPEG-LS) or JPEG 2000 ("j2k") frame declares; ImageError
    if the frame has no readable header."""
    try:
        if family == "jpeg":
            return _jpeg_geometry(frame)
        if family == "j2k":
            return _j2k_geometry(frame)
    except struct.error:
        raise ImageError(DAMAGED) from None
    raise ValueError(f"unknown codestream family {family!r}")


def check_codestream(frame: bytes, family: str, rows: int, columns: int, samples: int, bits_allocated: int) -> None:
    """ImageError unless the frame's codestream declares the header's size: the same rows, columns
    and samples (for RLE: one segment per byte of each sample), and no more bits than allocated."""
    if family == "rle":
        expected = samples * math.ceil(bits_allocated / 8)
        found = rle_segments(frame)
        if found != expected:
            raise ImageError(
                f"The DICOM file is inconsistent: its RLE data has {found} segment(s) where the header's "
                f"{samples} sample(s) of {bits_allocated} bits need {expected}. It was not decoded."
            )
        return
    found = codestream_geometry(frame, family)
    if (found.rows, found.columns, found.samples) != (rows, columns, samples) or found.bits > bits_allocated:
        raise ImageError(
            "The DICOM file is inconsistent: its compressed image declares "
            f"{found.columns} × {found.rows} pixels, {found.samples} sample(s) of {found.bits} bits, where its "
            f"header says {columns} × {rows}, {samples} sample(s) of at most {bits_allocated} bits. It was not decoded."
        )
    if found.tiles > MAX_TILES:  # each tile has its own decoder state
        raise ImageError(
            f"The DICOM image is cut into {found.tiles:,} JPEG 2000 tiles; at most {MAX_TILES:,} are read here."
        )


# --- deflate -------------------------------------------------------------------------------------


def inflate_bounded(zipped: bytes, limit: int = MAX_INFLATED_BYTES) -> bytes:
    """Raw deflate data (DICOM's Deflated Explicit VR Little Endian body) inflated, at most `limit`
    bytes; ImageError if it would be larger or is not valid deflate data.

    Inflates INFLATE_CHUNK bytes at a time (zlib's max_length), so a bomb costs at most
    `limit` + INFLATE_CHUNK bytes before it is refused, never what it would inflate to.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    parts: list[bytes] = []
    total = 0
    pending = zipped
    try:
        while not inflater.eof:
            # Empty input still yields what zlib holds back when the last call filled its chunk.
            part = inflater.decompress(pending, INFLATE_CHUNK)
            total += len(part)
            if total > limit:
                raise ImageError(
                    f"The DICOM file is deflated (zip-compressed) to a fraction of its size and would take more "
                    f"than {_mb(limit)} unpacked, the limit. It was refused before being unpacked."
                )
            parts.append(part)
            pending = inflater.unconsumed_tail
            if not pending and not part:
                break  # the input ran out before the end of the deflate stream
    except zlib.error:
        raise ImageError(DAMAGED) from None
    if not inflater.eof:
        raise ImageError(DAMAGED)  # cut short
    return b"".join(parts)
