"""The sidebar every page shows: the shared set-up (dataset, qubits, depth) and the disclaimer."""

from __future__ import annotations

import streamlit as st

from hqcnn.config import DEPTH_RANGE, QUBITS_RANGE
from ui import state

DISCLAIMER = "For research and teaching only. Not a medical device: never use it to diagnose, treat or triage patients."
USER_DATASETS_KEY = "user_datasets"  # this session's own-image datasets (folder paths), in upload order


def user_datasets() -> list[str]:
    """The folder datasets this session uploaded; only these (and MedMNIST) are offered or accepted."""
    return st.session_state.setdefault(USER_DATASETS_KEY, [])


def add_user_dataset(key: str) -> None:
    """Offer the folder dataset `key` in this session's dataset list and make it the current one."""
    keys = user_datasets()
    if key not in keys:
        keys.append(key)
    state.settings()["dataset"] = key


def _dataset_label(key: str) -> str:
    from hqcnn.data import DATASETS, dataset_status

    if key not in DATASETS:
        from hqcnn.folder_data import title

        return f"{title(key)} (your images)"
    status = dataset_status(key, 28)
    note = {"bundled": "offline", "cached": "downloaded", "downloadable": "needs download"}[status]
    return f"{DATASETS[key].title} ({note})"


def render() -> dict:
    """Draw the shared controls and return the session's settings."""
    from hqcnn.data import DATASETS

    values = state.settings()
    # A folder path is accepted only if this session uploaded it: a path in a shared link would name a
    # folder on another computer, and must never let a link open an arbitrary folder of the server.
    if values["dataset"] not in DATASETS and values["dataset"] not in user_datasets():
        hint = (
            " (your own images are not shared by links: upload them again)"
            if any(c in values["dataset"] for c in "/\\")
            else ""
        )
        st.warning(f"Unknown dataset '{values['dataset']}' in the link{hint}; showing PneumoniaMNIST instead.")
        values["dataset"] = "pneumoniamnist"
    for message in state.url_messages():
        st.warning(f"Link setting ignored: {message}")
    with st.sidebar:
        st.header("Set-up")
        state.bind(
            st.selectbox,
            "dataset",
            "Dataset",
            options=[*DATASETS, *user_datasets()],
            format_func=_dataset_label,
            help="MedMNIST collections (the offline ones ship with the app; others download once, tens of MB) "
            "and your own images, uploaded as a .zip on the Data page.",
        )
        state.bind(
            st.slider,
            "n_qubits",
            "Qubits",
            min_value=QUBITS_RANGE[0],
            max_value=QUBITS_RANGE[1],
            help="Each qubit carries part of the image summary; the simulation cost doubles with every qubit.",
        )
        state.fit_features(values)  # the qubit count may just have changed
        state.bind(
            st.slider,
            "depth",
            "Circuit depth (layers)",
            min_value=DEPTH_RANGE[0],
            max_value=DEPTH_RANGE[1],
            help="Number of trainable rotation + entangling layers.",
        )
        st.caption(
            f"Features into the circuit: {values['n_features']} · entangler: {values['entangler']} · "
            f"image {values['image_size']}×{values['image_size']} px"
        )
        st.divider()
        st.caption(DISCLAIMER)
    state.sync_url()
    return values
