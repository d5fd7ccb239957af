"""Reading uploaded images: a corpus of real PNG/JPEG variants made with PIL, hostile files, fuzzing."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from hqcnn.config import DataConfig
from hqcnn.datasets_base import ModelMeta
from hqcnn.errors import ImageError
from hqcnn.imageio import MAX_PIXELS, MAX_UPLOAD_BYTES, image_to_model_input, read_image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def encode(img: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise(shape: tuple[int, ...], seed: int = 0, dtype=np.uint8, high: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, size=shape).astype(dtype)


def with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """The same PNG with IHDR claiming another size, its CRC recomputed so PIL trusts it."""
    data = bytearray(png)
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def check_shape(array: np.ndarray, side: int, channels: int) -> None:
    assert array.dtype == np.uint8
    assert array.shape == ((side, side) if channels == 1 else (side, side, 3))
    assert array.flags.c_contiguous


# --- what is accepted ----------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_8bit_gray_png(channels):
    pixels = noise((30, 40))  # landscape: 40 wide, 30 high
    out = read_image(encode(Image.fromarray(pixels, "L")), channels)
    check_shape(out, 30, channels)
    expected = pixels[:, 5:35]  # the centred 30 × 30 square
    np.testing.assert_array_equal(out if channels == 1 else out[..., 0], expected)
    if channels == 3:
        assert (out == out[..., :1]).all()  # gray copied to all three channels


def test_16bit_png_is_scaled_by_the_format_range_not_min_max():
    pixels = np.array([[0, 257 * 100], [65535, 1000]], dtype=np.uint16)
    img = Image.fromarray(pixels)
    assert img.mode == "I;16"
    out = read_image(encode(img), 1)
    np.testing.assert_array_equal(out, [[0, 100], [255, 4]])
    dim = read_image(encode(Image.fromarray(noise((8, 8), dtype=np.uint16, high=1000))), 1)
    assert dim.max() <= 4  # a dark 16-bit image stays dark: no stretching to 0..255


def test_rgba_and_la_are_composited_on_black():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 255, 255, 0)  # transparent white → black
    rgba[0, 1] = (200, 100, 50, 255)  # opaque → itself
    rgba[1, 0] = (255, 255, 255, 128)  # half transparent → half
    out = read_image(encode(Image.fromarray(rgba, "RGBA")), 3)
    np.testing.assert_array_equal(out[0, 0], [0, 0, 0])
    np.testing.assert_array_equal(out[0, 1], [200, 100, 50])
    assert abs(int(out[1, 0, 0]) - 128) <= 1
    la = np.stack([np.full((3, 3), 255, np.uint8), np.array([[0] * 3, [255] * 3, [0] * 3], np.uint8)], axis=-1)
    out = read_image(encode(Image.fromarray(la, "LA")), 1)
    np.testing.assert_array_equal(out, [[0] * 3, [255] * 3, [0] * 3])


def test_palette_images_with_and_without_transparency():
    img = Image.fromarray(noise((12, 12), high=4), "P")
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 255, 255, 255] + [0] * (256 * 3 - 12))
    out = read_image(encode(img), 3)
    check_shape(out, 12, 3)
    assert {tuple(p) for p in out.reshape(-1, 3)} <= {(0, 0, 0), (255, 0, 0), (0, 255, 0), (255, 255, 255)}
    gray = read_image(encode(img), 1)
    check_shape(gray, 12, 1)
    # index 3 (white) transparent → black
    transparent = read_image(encode(img, transparency=3), 1)
    indices = np.asarray(img)
    assert (transparent[indices == 3] == 0).all()
    np.testing.assert_array_equal(transparent[indices != 3], gray[indices != 3])


def test_one_bit_png():
    bits = noise((9, 9), high=2).astype(bool)
    out = read_image(encode(Image.fromarray(bits)), 1)
    np.testing.assert_array_equal(out, np.where(bits, 255, 0))


def test_cmyk_jpeg():
    img = Image.new("CMYK", (16, 24), (0, 0, 0, 0))  # no ink: white
    out = read_image(encode(img, "JPEG"), 3)
    check_shape(out, 16, 3)
    assert out.min() >= 250
    img = Image.new("CMYK", (16, 16), (0, 0, 0, 255))  # full black ink
    assert read_image(encode(img, "JPEG"), 1).max() <= 40


@pytest.mark.parametrize("size", [(20, 50), (50, 20)])  # portrait and landscape (width, height)
@pytest.mark.parametrize("channels", [1, 3])
def test_portrait_and_landscape_are_centre_cropped(size, channels):
    width, height = size
    pixels = np.zeros((height, width), np.uint8)
    # a bright stripe through the middle along the long side, dark margins at its two ends
    if width > height:
        pixels[:, 15:35] = 200
    else:
        pixels[15:35, :] = 200
    out = read_image(encode(Image.fromarray(pixels, "L")), channels)
    check_shape(out, 20, channels)
    assert (out == 200).all()  # the 20 × 20 crop is the centre, none of the dark margins


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_tiny_one_pixel_images(fmt, mode):
    data = encode(Image.new(mode, (1, 1), 128 if mode == "L" else (128, 128, 128)), fmt)
    for channels in (1, 3):
        out = read_image(data, channels)
        check_shape(out, 1, channels)
        assert abs(int(out.flat[0]) - 128) <= 2


def test_exif_orientation_is_applied():
    pixels = np.zeros((40, 40), np.uint8)
    pixels[:20] = 255  # stored with the bright half on top
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the top ends up on the right
    out = read_image(encode(Image.fromarray(pixels, "L"), "JPEG", exif=exif, quality=95), 1)
    check_shape(out, 40, 1)
    assert out[:, 24:].mean() > 230 and out[:, :16].mean() < 25
    # without the tag, the same picture stays as stored
    plain = read_image(encode(Image.fromarray(pixels, "L"), "JPEG", quality=95), 1)
    assert plain[:16].mean() > 230 and plain[24:].mean() < 25


def test_rgb_to_gray_uses_bt601_like_preprocess():
    rgb = noise((6, 6, 3), seed=3)
    out = read_image(encode(Image.fromarray(rgb, "RGB")), 1)
    luma = rgb.astype(float) @ [0.299, 0.587, 0.114]
    assert np.abs(out - luma).max() <= 1
    np.testing.assert_array_equal(read_image(encode(Image.fromarray(rgb, "RGB")), 3), rgb)


def test_multi_picture_jpeg_is_read():
    first = Image.new("RGB", (10, 10), (90, 90, 90))
    data = encode(first, "MPO", save_all=True, append_images=[Image.new("RGB", (10, 10), (0, 0, 0))])
    out = read_image(data, 1)
    check_shape(out, 10, 1)
    assert abs(int(out.mean()) - 90) <= 2


def test_bytearray_and_memoryview_are_accepted():
    data = encode(Image.new("L", (3, 3), 7))
    for wrapped in (bytearray(data), memoryview(data)):
        assert (read_image(wrapped, 1) == 7).all()


# --- what is rejected ----------------------------------------------------------------------------


def test_empty_file():
    with pytest.raises(ImageError, match="empty"):
        read_image(b"", 1)


@pytest.mark.parametrize(
    "data",
    [
        b"this is just text, renamed to scan.png\n",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        encode(Image.new("RGB", (8, 8)), "GIF"),
        encode(Image.new("RGB", (8, 8)), "BMP"),
        encode(Image.new("RGB", (8, 8)), "TIFF"),
    ],
    ids=["text", "pdf", "gif", "bmp", "tiff"],
)
def test_other_file_types(data):
    with pytest.raises(ImageError, match="not a PNG, JPEG or DICOM image"):
        read_image(data, 1)


def test_png_signature_on_something_else():
    with pytest.raises(ImageError, match="not a readable PNG or JPEG"):
        read_image(PNG_MAGIC + b"GIF89a" + bytes(64), 1)
    with pytest.raises(ImageError, match="not a readable PNG or JPEG"):
        read_image(JPEG_MAGIC + bytes(64), 1)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files(fmt):
    data = encode(Image.fromarray(noise((64, 64, 3)), "RGB"), fmt)
    for keep in (0.9, 0.5):
        with pytest.raises(ImageError, match="damaged or incomplete"):
            read_image(data[: int(len(data) * keep)], 3)


def test_decompression_bomb_header():
    bomb = with_ihdr_size(encode(Image.new("L", (8, 8))), 20000, 20000)
    assert len(bomb) < 200
    with pytest.raises(ImageError, match="too many pixels"):
        read_image(bomb, 1)
    # just above the limit PIL would only warn: still refused
    over = int(MAX_PIXELS**0.5) + 1
    with pytest.raises(ImageError, match="too many pixels"):
        read_image(with_ihdr_size(encode(Image.new("L", (8, 8))), over, over), 1)


def test_size_check_does_not_rely_on_pil_guard(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # someone switched PIL's guard off
    bomb = with_ihdr_size(encode(Image.new("L", (8, 8))), 20000, 20000)
    with pytest.raises(ImageError, match="20000 × 20000 pixels"):
        read_image(bomb, 1)


def test_real_one_bit_bomb():
    bomb = encode(Image.new("1", (20000, 20000)))  # 400 megapixels in about 50 KB
    assert len(bomb) < 100_000
    with pytest.raises(ImageError, match="too many pixels"):
        read_image(bomb, 1)


def test_zero_width_png():
    with pytest.raises(ImageError, match="not a readable|no pixels"):
        read_image(with_ihdr_size(encode(Image.new("L", (8, 8))), 0, 8), 1)


def test_oversized_file():
    with pytest.raises(ImageError, match="too large.*limit is 10 MB"):
        read_image(PNG_MAGIC + bytes(MAX_UPLOAD_BYTES), 1)


def test_bad_channel_count_and_type():
    data = encode(Image.new("L", (3, 3)))
    with pytest.raises(ImageError, match="1 or 3 channels"):
        read_image(data, 2)
    with pytest.raises(ImageError, match="bytes"):
        read_image("scan.png", 1)  # type: ignore[arg-type]


# --- what reading an image costs ------------------------------------------------------------------


def test_reading_images_imports_no_quantum_code():
    # A fresh interpreter: in this one, other tests have imported PennyLane already.
    heavy = "{'pennylane', 'hqcnn.model', 'hqcnn.checkpoint'}"
    code = f"import sys, hqcnn.imageio; print(sorted({heavy} & set(sys.modules)))"
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- into the model's input ----------------------------------------------------------------------


def _meta(in_channels: int, image_size: int = 28) -> ModelMeta:
    return ModelMeta(
        dataset="pneumoniamnist" if in_channels == 1 else "retinamnist",
        label_names=("a", "b"),
        in_channels=in_channels,
        image_size=image_size,
        mean=(0.5,) * in_channels,
        std=(0.25,) * in_channels,
    )


def test_image_to_model_input():
    pixels = noise((28, 28))
    x = image_to_model_input(encode(Image.fromarray(pixels, "L")), _meta(1), DataConfig(noise_std=0.3))
    assert x.shape == (1, 1, 28, 28) and x.dtype.is_floating_point
    # exactly as training: 0..1, then (x − mean) / std; and no noise for an upload
    np.testing.assert_allclose(x[0, 0].numpy(), (pixels / 255 - 0.5) / 0.25, rtol=1e-5, atol=1e-5)


def test_image_to_model_input_resizes_and_adds_channels():
    data = encode(Image.fromarray(noise((50, 90)), "L"))
    x = image_to_model_input(data, _meta(3, image_size=64), DataConfig(dataset="retinamnist", image_size=28))
    assert x.shape == (1, 3, 64, 64)
    assert np.isfinite(x.numpy()).all()


# --- fuzzing: ImageError or a valid array, never anything else -----------------------------------


def _corpus() -> list[bytes]:
    rgb = noise((12, 10, 3), seed=1)
    return [
        encode(Image.fromarray(rgb[..., 0], "L")),
        encode(Image.fromarray(rgb, "RGB")),
        encode(Image.fromarray(np.dstack([rgb, rgb[..., :1]]), "RGBA")),
        encode(Image.fromarray(rgb[..., 0].astype(np.uint16) * 200)),
        encode(Image.fromarray(rgb[..., 0] > 128)),
        encode(Image.fromarray(rgb, "RGB").convert("P")),
        encode(Image.fromarray(rgb, "RGB"), "JPEG"),
        encode(Image.fromarray(rgb[..., 0], "L"), "JPEG"),
        encode(Image.fromarray(rgb, "RGB").convert("CMYK"), "JPEG"),
        encode(Image.fromarray(rgb, "RGB"), "JPEG", progressive=True),
    ]


CORPUS = _corpus()


def _read_or_reject(data: bytes, channels: int) -> None:
    try:
        out = read_image(data, channels)
    except ImageError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    assert out.ndim == (2 if channels == 1 else 3) and out.shape[0] == out.shape[1] >= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from([b"", PNG_MAGIC, JPEG_MAGIC]),
    payload=st.binary(max_size=2048),
    channels=st.sampled_from([1, 3]),
)
def test_arbitrary_bytes_never_escape(prefix, payload, channels):
    _read_or_reject(prefix + payload, channels)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    original=st.sampled_from(CORPUS),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
    cut=st.none() | st.integers(0, 10**6),
    channels=st.sampled_from([1, 3]),
)
def test_corrupted_images_never_escape(original, edits, cut, channels):
    data = bytearray(original)
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    _read_or_reject(bytes(data), channels)
