"""Every failure a user can cause or meet, with a message a non-programmer understands.

The app shows `str(err)` in `st.error`; the CLI prints it and exits with status 2. Subclasses exist
so that callers (and tests) can tell the kinds apart; the message alone must be enough for a user.
"""

from __future__ import annotations


class HQCNNError(Exception):
    """Base class of every user-facing error in HQCNN Explorer."""


class ConfigError(HQCNNError, ValueError):
    """A setting is out of range, of the wrong type, or inconsistent with another setting."""


class DataError(HQCNNError):
    """A dataset is unknown, missing, corrupted, or cannot be downloaded."""


class DownloadError(DataError):
    """A dataset file could not be fetched (offline, server error, or checksum mismatch)."""


class CheckpointError(HQCNNError):
    """A saved model cannot be loaded: wrong format, damaged, or made for another set-up."""


class ImageError(HQCNNError):
    """An uploaded image cannot be read or is not acceptable."""


class TrainingError(HQCNNError):
    """Training could not go on (for example the loss became NaN)."""


class MissingPackageError(HQCNNError):
    """An optional package that a feature needs is not installed."""
