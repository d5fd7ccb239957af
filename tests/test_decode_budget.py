"""The decode budget: every costly payload refused from its headers, before decoding, with a plain
message; the decoding worker's limits; an upload decoded once per session.

Each payload is made here: DICOM files with pydicom (tests/test_dicom.py's `dicom_file`), JPEG 2000
and JPEG headers written by hand, deflate streams with zlib. A refusal's message names the check that
made it ("inconsistent", "too large", "deflated"): a decoder run on the payload would have failed
otherwise (or not at all), so the message alone shows that nothing was decoded.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from hqcnn import decode_budget as budget
from hqcnn import decode_worker
from hqcnn.config import DataConfig
from hqcnn.datasets_base import ModelMeta
from hqcnn.dicom import read_dicom
from hqcnn.errors import ImageError
from hqcnn.imageio import image_to_model_input, read_image
from tests.test_dicom import assert_clean_error, compressed, dicom_file, ramp
from tests.test_imageio import encode, with_ihdr_size

HUGE = 20_000  # the side a codestream claims


def j2k_header(width: int, height: int, components: int = 1, bits: int = 8, tile: int | None = None) -> bytes:
    """The start of a JPEG 2000 codestream: SOC and a SIZ marker for this image, then EOC."""
    tile = tile or max(width, height)
    siz = struct.pack(">HIIIIIIIIH", 0, width, height, 0, 0, tile, tile, 0, 0, components)
    siz += bytes([bits - 1, 1, 1]) * components
    return b"\xff\x4f\xff\x51" + struct.pack(">H", len(siz) + 2) + siz + b"\xff\xd9"


def jpeg_header(width: int, height: int, components: int = 1, bits: int = 8, sof: int = 0xC0) -> bytes:
    """SOI, an APP0 segment, a start-of-frame marker `sof` for this image, EOI."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0" + bytes(9)
    frame = struct.pack(">BHHB", bits, height, width, components) + bytes([1, 0x11, 0]) * components
    return b"\xff\xd8" + app0 + bytes([0xFF, sof]) + struct.pack(">H", len(frame) + 2) + frame + b"\xff\xd9"


def encapsulated(frame: bytes, syntax, rows: int = 16, columns: int = 16, **elements) -> bytes:
    """A DICOM file whose header says `rows` × `columns` 8-bit gray around the codestream `frame`."""
    return dicom_file(
        np.zeros((rows, columns), np.uint8),
        syntax=syntax,
        encoded=encapsulate([frame + b"\0" * (len(frame) % 2)]),
        **elements,
    )


def refused(data: bytes, match: str) -> ImageError:
    with pytest.raises(ImageError, match=match) as caught:
        read_dicom(data)
    assert_clean_error(caught.value)
    return caught.value


# --- codestreams that disagree with their header -----------------------------------------------


def test_a_jpeg_2000_codestream_larger_than_its_header_is_refused_before_decoding():
    data = encapsulated(j2k_header(HUGE, HUGE), JPEG2000Lossless)
    assert len(data) < 4096
    error = refused(data, "inconsistent")
    assert f"{HUGE} × {HUGE}" in str(error) and "16 × 16" in str(error)
    with pytest.raises(ImageError, match="inconsistent"):
        read_image(data, 1)


def test_a_real_jpeg_2000_codestream_with_its_siz_rewritten_is_refused():
    pytest.importorskip("openjpeg")
    real = compressed(dicom_file(ramp((32, 32), 0, 255, np.uint8)), JPEG2000Lossless)
    at = real.index(b"\xff\x4f\xff\x51") + 8  # Xsiz, Ysiz
    forged = real[:at] + struct.pack(">II", HUGE, HUGE) + real[at + 8 :]
    refused(forged, "inconsistent")
    assert read_dicom(real).pixels.shape == (32, 32)  # the honest file still reads


@pytest.mark.parametrize("size", [(32, 48), (300, 200)])
def test_the_siz_and_sof_sizes_agree_with_pil(size):
    """The sizes read from the markers are those PIL (OpenJPEG, libjpeg) reads from the same codestreams."""
    image = Image.fromarray(noise_rgb(size))
    j2k = encode(image, "JPEG2000", no_jp2=True)
    jpeg = encode(image, "JPEG", quality=90)
    progressive = encode(image, "JPEG", progressive=True)
    for stream, family in ((j2k, "j2k"), (jpeg, "jpeg"), (progressive, "jpeg")):
        found = budget.codestream_geometry(stream, family)
        assert (found.columns, found.rows) == Image.open(io.BytesIO(stream)).size and found.samples == 3


def noise_rgb(size: tuple[int, int]) -> np.ndarray:
    width, height = size
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(("syntax", "sof"), [(JPEGBaseline8Bit, 0xC0), (JPEGLSLossless, 0xF7)])
def test_a_jpeg_or_jpeg_ls_frame_larger_than_its_header_is_refused(syntax, sof):
    refused(encapsulated(jpeg_header(HUGE, HUGE, sof=sof), syntax), "inconsistent")


def test_a_codestream_with_other_samples_or_more_bits_is_refused():
    refused(encapsulated(j2k_header(16, 16, components=3), JPEG2000Lossless), "inconsistent")
    refused(encapsulated(j2k_header(16, 16, bits=12), JPEG2000Lossless), "inconsistent")
    refused(encapsulated(jpeg_header(16, 16, components=3), JPEGBaseline8Bit), "inconsistent")


def test_too_many_jpeg_2000_tiles_are_refused():
    refused(encapsulated(j2k_header(4096, 4096, tile=16), JPEG2000Lossless, rows=4096, columns=4096), "tiles")


def test_an_rle_frame_with_other_segments_than_its_header_needs_is_refused():
    real = compressed(dicom_file(ramp((16, 16), 0, 255, np.uint8)), RLELossless)  # one segment
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(real))
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15  # two bytes a sample: two segments
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    error = refused(buffer.getvalue(), "inconsistent")
    assert "1 segment(s)" in str(error)


# --- the byte budget -------------------------------------------------------------------------------


def test_a_16_bit_rgb_image_under_the_pixel_limit_is_refused_by_its_bytes():
    """40 megapixels, as the pixel limit allows, but 6 bytes a pixel: 240 MB decoded."""
    side = 6324
    header_only = dicom_file(ramp((2, 2, 3), 0, 65535, np.uint16), photometric="RGB", Rows=side, Columns=side)
    error = refused(header_only, "too large")
    assert "3 samples of 16 bits" in str(error) and f"{side} × {side}" in str(error)
    rle_header = struct.pack("<16I", 6, *[64] * 6, *[0] * 9)  # six segments: 3 samples × 2 bytes
    rle = dicom_file(
        ramp((2, 2, 3), 0, 65535, np.uint16),
        photometric="RGB",
        syntax=RLELossless,
        encoded=encapsulate([rle_header]),
        Rows=side,
        Columns=side,
    )
    refused(rle, "too large")
    # The same pixels in 8-bit gray are within the budget: the header passes (and the short data then fails).
    gray = dicom_file(np.zeros((2, 2), np.uint8), Rows=side, Columns=side)
    refused(gray, "damaged")


def test_a_png_within_the_pixel_limit_but_over_the_byte_budget_is_refused():
    side = 6000  # 36 megapixels, under MAX_PIXELS; RGB is 4 bytes a pixel in PIL: 144 MB
    header = with_ihdr_size(encode(Image.new("RGB", (4, 4))), side, side)
    with pytest.raises(ImageError, match="too large"):
        read_image(header, 3)
    gray = with_ihdr_size(encode(Image.new("L", (4, 4))), side, side)  # 36 MB: passes the budget
    with pytest.raises(ImageError, match="damaged"):
        read_image(gray, 1)


# --- deflate -------------------------------------------------------------------------------------


def deflated_file(body: bytes | None = None, zeros: int = 0) -> bytes:
    """A Deflated Explicit VR Little Endian file: its meta, then `body` (or an OB element of
    `zeros` zero bytes, streamed) deflated."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    out = DicomBytesIO()
    out.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(out, meta)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    if body is not None:
        out.write(packer.compress(body))
    else:
        out.write(packer.compress(struct.pack("<HH2sHI", 0x0009, 0x0010, b"OB", 0, zeros)))
        chunk = bytes(2**20)
        for _ in range(zeros // len(chunk)):
            out.write(packer.compress(chunk))
    out.write(packer.flush())
    return out.getvalue()


def test_a_deflate_bomb_is_refused_within_a_bounded_memory():
    zeros = 2 * budget.MAX_INFLATED_BYTES
    bomb = deflated_file(zeros=zeros)
    assert len(bomb) < zeros // 500
    tracemalloc.start()
    try:
        refused(bomb, "deflated")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < budget.MAX_INFLATED_BYTES + 4 * budget.INFLATE_CHUNK + len(bomb) * 2


def test_a_deflated_file_reads_as_its_uncompressed_twin():
    import pydicom

    plain = dicom_file(ramp((20, 24), 0, 4095, np.uint16), bits_stored=12, WindowCenter=2000, WindowWidth=3000)
    ds = pydicom.dcmread(io.BytesIO(plain))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)  # pydicom deflates the data set
    deflated = buffer.getvalue()
    assert pydicom.dcmread(io.BytesIO(deflated)).file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert np.array_equal(read_dicom(deflated).pixels, read_dicom(plain).pixels)
    refused(deflated[:-20], "damaged")


def test_inflate_bounded_against_zlib():
    text = np.random.default_rng(0).integers(0, 4, 3 * budget.INFLATE_CHUNK, dtype=np.uint8).tobytes()
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = packer.compress(text) + packer.flush()
    assert budget.inflate_bounded(stream) == zlib.decompress(stream, -zlib.MAX_WBITS)
    with pytest.raises(ImageError, match="deflated"):
        budget.inflate_bounded(stream, limit=len(text) - 1)


# --- the worker ------------------------------------------------------------------------------------


def meta(channels: int = 1, size: int = 28) -> ModelMeta:
    return ModelMeta("pneumoniamnist", ("a", "b"), channels, size, (0.5,) * channels, (0.25,) * channels)


def test_the_worker_gives_the_model_input_of_the_in_process_reader():
    png = encode(Image.fromarray(ramp((40, 50), 0, 255, np.uint8)))
    scan = dicom_file(ramp((30, 30), 0, 4095, np.uint16), bits_stored=12, Modality="DX", BurnedInAnnotation="YES")
    for data, channels in ((png, 1), (png, 3), (scan, 1)):
        found = decode_worker.model_input(data, meta(channels), DataConfig())
        expected = image_to_model_input(data, meta(channels), DataConfig()).numpy()
        assert found.array.dtype == np.float32 and np.array_equal(found.array, expected)
    assert found.facts["modality"] == "DX" and found.facts["burned_in"] == "yes"


def test_the_worker_passes_refusals_on_and_gives_a_picture_for_folders():
    with pytest.raises(ImageError, match="inconsistent"):
        decode_worker.model_input(encapsulated(j2k_header(HUGE, HUGE), JPEG2000Lossless), meta(), DataConfig())
    picture = decode_worker.picture(encode(Image.fromarray(noise_rgb((90, 60)))), 3, 32)
    assert picture.array.shape == (32, 32, 3) and picture.facts is None


def test_a_worker_out_of_memory_or_time_ends_in_the_limits_message(monkeypatch):
    smooth = np.broadcast_to((np.arange(3000) % 256).astype(np.uint8)[:, None, None], (3000, 3000, 3))
    big = encode(Image.fromarray(np.ascontiguousarray(smooth)))  # 36 MB in PIL, within the budget
    monkeypatch.setattr(decode_worker, "MEMORY_ALLOWANCE", 8 * 2**20)
    with pytest.raises(ImageError, match="server's limits"):
        decode_worker.model_input(big, meta(3), DataConfig())
    monkeypatch.undo()
    with pytest.raises(ImageError, match="server's limits"):
        decode_worker.model_input(big, meta(3), DataConfig(), timeout=0.01)


def test_an_answer_with_unexpected_facts_is_refused():
    with pytest.raises(ImageError, match="server's limits"):
        decode_worker._facts({"modality": "CR", "patient": "DOE^JANE"})
    with pytest.raises(ImageError, match="server's limits"):
        decode_worker._facts(dict.fromkeys(decode_worker._FACT_TYPES, 1))


@pytest.mark.slow
def test_an_upload_is_decoded_once_and_the_cache_is_bounded(monkeypatch):
    calls = []
    real = decode_worker.model_input

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(decode_worker, "model_input", counted)
    cache = decode_worker.UploadCache(size=2)
    files = [encode(Image.fromarray(np.full((8, 8), v, np.uint8))) for v in (0, 100, 200)]
    first = cache.model_input(files[0], meta(), DataConfig())
    again = cache.model_input(files[0], meta(), DataConfig())
    assert len(calls) == 1 and first[0] == again[0] and np.array_equal(first[1], again[1])
    cache.model_input(files[0], meta(1, 32), DataConfig())  # another model input size: decoded again
    assert len(calls) == 2
    bad = encapsulated(j2k_header(HUGE, HUGE), JPEG2000Lossless)
    for _ in range(2):  # a refusal is kept too: a rerun does not run the worker again
        with pytest.raises(ImageError, match="inconsistent"):
            cache.model_input(bad, meta(), DataConfig())
    assert len(calls) == 3 and len(cache) == 2
    for data in files:
        cache.model_input(data, meta(), DataConfig())
    assert len(cache) == 2
