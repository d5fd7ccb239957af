"""Names from an upload (folder and file names) before anyone sees them.

Folders of medical images are often named after the patient ("Doe^Jane", "DOE_JANE_1970-01-01",
"MRN 12345678"), so a name from an uploaded .zip is shown (as a class or dataset name) only if it
does not look like personal data, and a file's name is never shown at all (only its extension).

`looks_personal` is a heuristic, not a guarantee: it flags what patient folders usually look like
(digits of an ID or a date, a DICOM person-name caret, "Last, First", an e-mail address, two or more
capitalised words that are not common words of medical class names, more than MAX_WORDS words, words
such as "patient" or "MRN", characters a class name does not need) and lets ordinary class names
("normal", "pneumonia", "Lung Opacity", "grade 2") through. A single lower-case or capitalised first
name ("jane") cannot be told from a class name; the "numbered" naming replaces every class name.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

FILTERED = "filtered"  # keep the class names that do not look personal, number the others (the default)
NUMBERED = "numbered"  # "class 1", "class 2", … for every class
NAMINGS = (FILTERED, NUMBERED)
UPLOADED_TITLE = "your uploaded images"  # a dataset's title when no name from the upload may be shown

MAX_WORDS = 3
MAX_LENGTH = 40

# Words that make a capitalised multi-word name a class name rather than a person's.
_CLASS_WORDS = frozenset(
    """
    normal abnormal benign malignant healthy disease diseased positive negative control case cases tumor tumour
    no yes other unknown none mild moderate severe proliferative grade stage class type left right
    pneumonia viral bacterial covid lung lungs opacity effusion pleural nodule mass cardiomegaly edema oedema
    atelectasis consolidation emphysema fibrosis infiltration pneumothorax hernia fracture
    glioma meningioma pituitary brain chest breast skin blood retina retinal eye liver kidney colon bone
    melanoma nevus naevus carcinoma adenoma lesion lesions cyst cancer metastasis
    ct mri mr cr dx xray ray scan scans image images x
    """.split()
)
_PERSONAL_WORDS = frozenset(
    "patient patients pt pat mrn dob born birth id ssn nhs name surname firstname lastname mr mrs ms dr".split()
)
_DATE = re.compile(r"\d{1,4}[-./]\d{1,2}[-./]\d{1,4}")
_WORD_SPLIT = re.compile(r"[\s_.\-+()]+")


def _words(name: str) -> list[str]:
    return [w for w in _WORD_SPLIT.split(name) if w]


def looks_personal(name: str) -> bool:
    """True if a folder or file name from an upload might be personal data (see the module's note),
    or is not a plain printable name; such a name is never shown."""
    text = name.strip()
    if not text or len(text) > MAX_LENGTH or text.startswith("."):
        return True
    if any(unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in text):
        return True  # control or format characters, odd spaces: nothing a class name needs
    if any(ch in text for ch in "^@,;:/\\=#&%$*?!<>|\"'`~"):
        return True  # a DICOM person name (Doe^Jane), "Doe, Jane", an e-mail address, …
    if re.search(r"\d{3,}", text) or _DATE.search(text):
        return True  # an ID, a date, a year
    words = _words(text)
    if len(words) > MAX_WORDS:
        return True
    lowered = [w.lower() for w in words]
    if any(w in _PERSONAL_WORDS for w in lowered):
        return True
    alphabetic = [w for w in words if w.isalpha()]
    capitalised = [w for w in alphabetic if w[0].isupper() and w.lower() not in _CLASS_WORDS]
    # "Jane Doe", "DOE JANE": two capitalised words, neither a common word of class names
    return len(capitalised) >= 2


def class_names(names: list[str], naming: str = FILTERED) -> dict[str, str]:
    """How each class folder name is shown and stored: kept if `naming` is FILTERED and it does not
    look personal, else "class N" (N its place among the sorted names, zero-padded so that the
    numbered names sort alike). Every shown name is distinct."""
    ordered = sorted(set(names))
    width = len(str(len(ordered)))
    numbered = {name: f"class {i:0{width}d}" for i, name in enumerate(ordered, start=1)}
    if naming == NUMBERED:
        return numbered
    shown = {name: (numbered[name] if looks_personal(name) else name) for name in ordered}
    if len(set(shown.values())) < len(shown):  # a kept name equal to a number given to another
        return numbered
    return shown


def safe_title(candidates: list[str]) -> str:
    """The first candidate (the dataset folder's name, then the zip's) that does not look personal,
    else UPLOADED_TITLE."""
    for name in candidates:
        if name and not looks_personal(name):
            return name
    return UPLOADED_TITLE


def file_kind(name: str) -> str:
    """What may be said of a file from an upload: "*.ext" (its extension, lower case) or "*" when it
    has none, or when its last part is digits (a DICOM UID such as 1.2.840.113619.2.55)."""
    suffix = PurePosixPath(name).suffix.lower()
    if not suffix or suffix[1:].isdigit() or not re.fullmatch(r"\.[a-z0-9]{1,8}", suffix):
        return "*"
    return f"*{suffix}"
