"""What the largest images the decode budget accepts cost, read in the server's process and in a worker.

For each image: wall time, the peak resident memory of the process that decodes (the server's own
when read in-process; the worker's, sampled every 10 ms, when read in a worker), and the longest
stall of a thread that wakes every 10 ms in the server's process while it waits (what a health
check or another session's page would wait: the decoders hold the interpreter lock). Also the
worker's overhead on a small PNG.

    nice -n 5 python -m benchmarks.bench_upload
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable

import numpy as np
import psutil
from PIL import Image

from hqcnn import decode_budget, decode_worker
from hqcnn.config import DataConfig
from hqcnn.datasets_base import ModelMeta
from hqcnn.imageio import MAX_PIXELS, image_to_model_input

META = ModelMeta("pneumoniamnist", ("normal", "pneumonia"), 1, 128, (0.5,), (0.25,))


def largest_dicom() -> bytes:
    """A 16-bit gray RLE DICOM at MAX_PIXELS (80 MB decoded, within the budget), in a few MB."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless, SecondaryCaptureImageStorage, generate_uid

    side = int(MAX_PIXELS**0.5)
    pixels = np.broadcast_to((np.arange(side, dtype=np.uint16) * 10)[:, None], (side, side))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("big.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "DX", side, side, 1
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored, ds.HighBit = "MONOCHROME2", 16, 16, 15
    ds.PixelRepresentation, ds.WindowCenter, ds.WindowWidth = 0, 30000, 40000
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.compress(RLELossless)
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def largest_png() -> bytes:
    """An RGB PNG at the byte budget (PIL holds RGB in 4 bytes a pixel)."""
    side = int((decode_budget.MAX_DECODED_BYTES / 4) ** 0.5)
    row = (np.arange(side) % 256).astype(np.uint8)
    pixels = np.ascontiguousarray(np.broadcast_to(row[:, None, None], (side, side, 3)))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def measure(read: Callable[[], object], watch_children: bool) -> tuple[float, float, float]:
    """(seconds, peak MB of the decoding process, longest stall in ms of a 10 ms ticker here)."""
    me = psutil.Process()
    stop = threading.Event()
    stall, peak = [0.0], [0]

    def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.01)
            now = time.perf_counter()
            stall[0] = max(stall[0], now - last - 0.01)
            last = now

    def sampler() -> None:
        while not stop.is_set():
            try:
                if watch_children:
                    for child in me.children(recursive=True):
                        if child.name() != "python" or child.ppid() == me.pid:
                            continue  # the fork server itself is a direct child
                        peak[0] = max(peak[0], child.memory_info().rss)
                else:
                    peak[0] = max(peak[0], me.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.01)

    threads = [threading.Thread(target=ticker), threading.Thread(target=sampler)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    try:
        read()
    finally:
        elapsed = time.perf_counter() - started
        stop.set()
        for t in threads:
            t.join()
    return elapsed, peak[0] / 2**20, stall[0] * 1000


def main() -> None:
    config = DataConfig()
    small = io.BytesIO()
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(small, "PNG")
    decode_worker.model_input(small.getvalue(), META, config)  # starts the fork server
    files = {"small PNG 64×64": small.getvalue(), "DICOM 16-bit gray RLE": largest_dicom(), "PNG RGB": largest_png()}
    print(f"budget {decode_budget.MAX_DECODED_BYTES / 2**20:.0f} MiB decoded, {MAX_PIXELS / 1e6:g} MP")
    print(f"{'file':28} {'where':10} {'s':>7} {'peak MB':>8} {'stall ms':>9}")
    for name, data in files.items():
        runs = (
            ("in-process", lambda d=data: image_to_model_input(d, META, config), False),
            ("worker", lambda d=data: decode_worker.model_input(d, META, config), True),
        )
        for where, read, children in runs:
            seconds, peak, stall = measure(read, children)
            print(f"{name:28} {where:10} {seconds:7.2f} {peak:8.0f} {stall:9.0f}")
        print(f"{'':28} ({len(data) / 2**20:.1f} MB file)")


if __name__ == "__main__":
    main()
