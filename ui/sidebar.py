"""The sidebar every page shows: the shared set-up (dataset, qubits, depth) and the disclaimer."""

from __future__ import annotations

import streamlit as st

from hqcnn.config import DEPTH_RANGE, QUBITS_RANGE
from ui import state

DISCLAIMER = "For research and teaching only. Not a medical device: never use it to diagnose, treat or triage patients."


def _dataset_label(key: str) -> str:
    from hqcnn.data import DATASETS, dataset_status

    status = dataset_status(key, 28)
    note = {"bundled": "offline", "cached": "downloaded", "downloadable": "needs download"}[status]
    return f"{DATASETS[key].title} ({note})"


def render() -> dict:
    """Draw the shared controls and return the session's settings."""
    from hqcnn.data import DATASETS

    values = state.settings()
    if values["dataset"] not in DATASETS:
        st.warning(f"Unknown dataset '{values['dataset']}' in the link; showing PneumoniaMNIST instead.")
        values["dataset"] = "pneumoniamnist"
    for message in state.url_messages():
        st.warning(f"Link setting ignored: {message}")
    with st.sidebar:
        st.header("Set-up")
        state.bind(
            st.selectbox,
            "dataset",
            "Dataset",
            options=list(DATASETS),
            format_func=_dataset_label,
            help="MedMNIST collections. The offline ones ship with the app; others download once (tens of MB).",
        )
        state.bind(
            st.slider,
            "n_qubits",
            "Qubits",
            min_value=QUBITS_RANGE[0],
            max_value=QUBITS_RANGE[1],
            help="Each qubit carries part of the image summary; the simulation cost doubles with every qubit.",
        )
        n = values["n_qubits"]
        if not n <= values["n_features"] <= 3 * n:  # keep features valid when the qubit count changes
            values["n_features"] = min(max(values["n_features"], n), 3 * n)
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
