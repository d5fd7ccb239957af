"""Your own images: a folder (or an uploaded .zip) with one sub-folder per class, used like a MedMNIST set.

Layout (class names are the folder names, sorted; any sizes and modes of PNG, JPEG or DICOM)::

    my_xrays/                      my_xrays/
      normal/     a.png b.jpg …      train/  normal/ … pneumonia/ …
      pneumonia/  c.png …            val/    normal/ … pneumonia/ …     (optional)
                                     test/   normal/ … pneumonia/ …     (optional)

Without split folders, each class is split on its own (stratified) into 80 % training, 10 %
validation and 10 % test images, with at least one image of every class in each split. The split
is drawn with the fixed seed SPLIT_SEED, not with the training seed, so it never changes between
runs and test images stay test images. With split folders (train/, val/, test/; "training",
"valid", "validation", "testing" and any capitalisation also count) they are used as given; a
missing val/ or test/ is taken out of train/ the same way (10 % of each class).

Every image is read once with `imageio.read_image` (so the same checks and limits as an uploaded
image apply), turned upright, centre-cropped to a square and shrunk to at most STORE_SIZE pixels.
All images of a dataset are then stored at one common side: STORE_SIZE (128), or the largest
image's side if every image is smaller, so that small images are not blown up and shrunk again.
`preprocessing.preprocess` resizes them to `DataConfig.image_size` as for MedMNIST. A folder has
one stored resolution, so `DataConfig.source_size` (the MedMNIST file to read) is ignored for it.
The set is gray (1 channel) if every image is gray, an RGB file whose three channels agree
included (many X-ray JPEGs are saved that way); a single colour image makes it RGB (3 channels),
and the "grayscale" option converts it back.

The decoded arrays are cached as an .npz file (read with pickle refused) under
$HQCNN_DATA_DIR/folders/cache/ (default ~/.cache/hqcnn/medmnist/folders/cache/), keyed by the
folder's path and a fingerprint of its file names, sizes and modification times, so the second
run loads at once and an edited folder is read anew; only pixels are cached, nothing of a DICOM
file's header. Files that are not readable PNG, JPEG or DICOM images are skipped and counted, with
their names for a folder given on the command line (a file without an extension is looked at only
if its first bytes say PNG, JPEG or DICOM); hidden files (.DS_Store, __MACOSX, …) are ignored
silently.

A .zip is taken in by `extract_zip`: its layout is read from the member names, every image is
decoded once in memory and only its picture is stored (a metadata-free PNG of at most STORE_SIZE
pixels; no DICOM header, file name or original file) under $HQCNN_DATA_DIR/folders/<first 16 hex
digits of its SHA-256>/, with class folders named by `privacy.class_names` (names that look like
personal data become "class N") and a title from `privacy.safe_title`. Its key is "upload:<those
16 digits>" (`is_upload_key`), which every function taking a dataset key accepts, and which never
shows a path of the server (nor does any message about an upload, nor any name from it: skipped
files are counted by extension). Every member name is checked (no absolute paths, no "..", no
links, no encryption) and the sizes are checked against the limits below before anything is
written. The app calls `add_upload`, which also reads the images and keeps nothing of an archive
that is no dataset, and `claim_upload`, which removes it when the session has ended.

Uploads and their caches share a bounded store (upload_store), readable by the server's user alone
(files 0600, folders 0700): at most $HQCNN_UPLOAD_STORE_GB (default 4) GB, the least recently
used uploads removed first, and none kept longer than $HQCNN_UPLOAD_HOURS (default 8) hours
unused; loading a removed upload says so.

hqcnn.data reads these datasets through SOURCE, their entry in its table of dataset sources; this
package needs nothing of hqcnn.data (the shared types are in hqcnn.datasets_base).
"""

from __future__ import annotations

from hqcnn.datasets_base import Progress
from hqcnn.folder_data.dataset import FolderData, clear_memory, is_cached, load
from hqcnn.folder_data.limits import (
    LIMITS,
    MAX_CLASSES,
    MAX_FILE_BYTES,
    MAX_IMAGES,
    MAX_RATIO,
    MAX_TOTAL_PIXELS,
    MAX_UNCOMPRESSED,
    MAX_ZIP_BYTES,
    MAX_ZIP_ENTRIES,
    MIN_PER_CLASS,
    RATIO_FLOOR,
    SHOWN_SKIPPED,
    SPLIT_SEED,
    STORE_SIZE,
    TEST_FRACTION,
    VAL_FRACTION,
)
from hqcnn.folder_data.paths import UPLOAD_PREFIX, file_label, folders_root, is_folder_key, is_upload_key, title
from hqcnn.folder_data.privacy import FILTERED, NAMINGS, NUMBERED, looks_personal
from hqcnn.folder_data.scan import FolderReport, Skipped
from hqcnn.folder_data.source import SOURCE
from hqcnn.folder_data.store import _decode_all
from hqcnn.folder_data.uploads import add_upload, claim_upload, discard_upload, release_ended_sessions
from hqcnn.folder_data.zips import extract_zip

__all__ = [
    "LIMITS",
    "MAX_CLASSES",
    "MAX_FILE_BYTES",
    "MAX_IMAGES",
    "MAX_RATIO",
    "MAX_TOTAL_PIXELS",
    "MAX_UNCOMPRESSED",
    "MAX_ZIP_BYTES",
    "MAX_ZIP_ENTRIES",
    "MIN_PER_CLASS",
    "RATIO_FLOOR",
    "SHOWN_SKIPPED",
    "SOURCE",
    "SPLIT_SEED",
    "STORE_SIZE",
    "TEST_FRACTION",
    "UPLOAD_PREFIX",
    "VAL_FRACTION",
    "FILTERED",
    "NAMINGS",
    "NUMBERED",
    "FolderData",
    "FolderReport",
    "Progress",
    "Skipped",
    "_decode_all",
    "add_upload",
    "claim_upload",
    "clear_memory",
    "discard_upload",
    "extract_zip",
    "file_label",
    "folders_root",
    "is_cached",
    "is_folder_key",
    "is_upload_key",
    "load",
    "looks_personal",
    "release_ended_sessions",
    "title",
]
