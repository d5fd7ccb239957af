"""Shared page helpers: error display, cached data access, the download flow."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from hqcnn.errors import HQCNNError
from hqcnn.markdown import md

log = logging.getLogger("hqcnn.app")


@contextmanager
def user_errors(stop: bool = True) -> Iterator[None]:
    """Show an HQCNNError as st.error; log anything else and show a plain message, never a traceback."""
    try:
        yield
    except HQCNNError as err:
        st.error(md(err, limit=1000), icon="🚫")  # messages quote file, folder and class names
        if stop:
            st.stop()
    except Exception as err:
        log.exception("unexpected error in a page")
        st.error(
            f"Something went wrong ({type(err).__name__}). Your model and settings are kept; "
            "the details are in the server log.",
            icon="🚫",
        )
        if stop:
            st.stop()


def dataset_title(key: str) -> str:
    """A dataset's display name (a MedMNIST title, or an upload's zip name); never raises."""
    from hqcnn import folder_data
    from hqcnn.data import DATASETS

    return DATASETS[key].title if key in DATASETS else folder_data.title(key)


@st.cache_data(show_spinner=False)
def class_counts(dataset: str, source_size: int = 28) -> dict[str, list[int]]:
    """Images per class in each split."""
    import numpy as np

    from hqcnn.data import get_info, load_arrays

    n_classes = get_info(dataset).n_classes
    return {
        split: np.bincount(labels.ravel(), minlength=n_classes).tolist()
        for split, (_, labels) in load_arrays(dataset, source_size).items()
    }


def ensure_dataset(dataset: str, source_size: int = 28) -> bool:
    """True if the dataset file is on this computer; otherwise offer the download and return False."""
    from hqcnn.data import dataset_file, dataset_status, get_info

    if dataset_status(dataset, source_size) != "downloadable":
        return True
    info = get_info(dataset)
    st.info(
        f"{md(info.title)} is not on this computer yet. It is downloaded once from the MedMNIST release "
        f"({sum(info.n_samples.values()):,} images) and then works offline."
    )
    if st.button(f"Download {info.title}", key=f"download_{dataset}_{source_size}", type="primary"):
        bar = st.progress(0.0, text="Connecting…")

        def report(done: int, total: int) -> None:
            if total:
                bar.progress(min(done / total, 1.0), text=f"Downloaded {done / 2**20:.1f} of {total / 2**20:.1f} MB")

        try:
            dataset_file(dataset, source_size, progress=report)
        except Exception:
            bar.empty()  # a failed download leaves only its message, no "Connecting…" above it
            with user_errors():
                raise
        bar.empty()
        return True
    return False
