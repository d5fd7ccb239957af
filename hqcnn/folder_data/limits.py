"""The limits on a folder dataset or a .zip (stated in the README and in every message that enforces
them) and the fixed settings of reading, splitting and caching."""

from __future__ import annotations

# --- limits (stated in the README and in every message that enforces them) -------------------
MAX_IMAGES = 20_000  # image files in one dataset (files found in the class folders)
MAX_TOTAL_PIXELS = 2_000_000_000  # width × height summed over all images, as stored in the files
MAX_FILE_BYTES = 10 * 2**20  # one image file (the limit of imageio.read_image)
MAX_CLASSES = 100
MAX_ZIP_BYTES = 200 * 2**20  # an uploaded .zip
MAX_UNCOMPRESSED = 2**30  # everything inside the .zip, unpacked
MAX_RATIO = 100  # unpacked / packed size, per member over RATIO_FLOOR and for the whole archive
RATIO_FLOOR = 2**20  # members smaller than this cannot hurt, whatever their ratio
MAX_ZIP_ENTRIES = 2 * MAX_IMAGES  # files and folders listed in the archive

STORE_SIZE = 128  # largest side kept in the cache
SPLIT_SEED = 0  # the split never depends on the training seed
VAL_FRACTION = TEST_FRACTION = 0.1
MIN_PER_CLASS = 3  # one image each for training, validation and test
SHOWN_SKIPPED = 10  # file names listed in the warning about skipped files
_FORMAT = 2  # bump when the cache layout or the reading changes (2: DICOM files are read)

_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
_IGNORED = {"__macosx", "thumbs.db", "desktop.ini", "__pycache__", "$recycle.bin"}
_GRAY_TOLERANCE = 8  # largest channel difference (0..255) of a pixel in an image counted as gray


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


LIMITS = (
    f"at most {MAX_IMAGES:,} images and {MAX_TOTAL_PIXELS / 1e9:g} billion pixels in all, "
    f"{_mb(MAX_FILE_BYTES)} per image file, {MAX_CLASSES} classes; "
    f"a .zip of at most {_mb(MAX_ZIP_BYTES)} that unpacks to at most {MAX_UNCOMPRESSED / 2**30:g} GB"
)
