"""The sidebar every page shows: the shared set-up (dataset, qubits, depth) and the disclaimer."""

from __future__ import annotations

import streamlit as st

from hqcnn.errors import DataError
from hqcnn.markdown import md
from ui import jobs, state

DISCLAIMER = "For research and teaching only. Not a medical device: never use it to diagnose, treat or triage patients."
USER_DATASETS_KEY = "user_datasets"  # this session's uploads ("upload:<id>" keys), in upload order


def user_datasets() -> list[str]:
    """The datasets this session uploaded; only these (and MedMNIST) are offered or accepted."""
    return st.session_state.setdefault(USER_DATASETS_KEY, [])


def session_may_use(key: object) -> bool:
    """True for a MedMNIST dataset and for a dataset this session uploaded. Anything else (a folder
    path, another session's upload) names data on the server that is not this user's to read."""
    from hqcnn.data import DATASETS

    return isinstance(key, str) and (key in DATASETS or key in user_datasets())


def require_session_dataset(key: object, what: str) -> None:
    """DataError unless this session may use dataset `key` (for uploaded models and results).

    The message names neither the dataset nor anything under it: `key` came from a user's file.
    """
    if not session_may_use(key):
        raise DataError(
            f"{what} was made with images that are not available to this session (a dataset of your own "
            "that this session has not uploaded, or a folder on another computer), so it cannot be opened. "
            "If you have those images as a .zip, upload it on the Data page first, then try again."
        )


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

    jobs.warm_up()  # workers are ready by the time the user presses Train
    values = state.settings()
    messages = state.url_messages()
    # An own dataset is accepted only if this session uploaded it: a link must never let anyone
    # open a folder of the server or another user's upload.
    if not session_may_use(values["dataset"]):
        messages.insert(
            0,
            f"Unknown dataset '{values['dataset'][:60]}' (your own images are not shared by links: upload them "
            "again); showing PneumoniaMNIST instead.",
        )
        values["dataset"] = "pneumoniamnist"
    if messages:  # one box: a link with many bad values must not push the page below the fold
        listed = "\n".join(f"- {md(message, 200)}" for message in messages)
        st.warning(f"Some settings in the link could not be used:\n{listed}", icon="⚠️")
    with st.sidebar:
        st.header("Set-up")
        state.bind(
            st.selectbox,
            "dataset",
            options=[*DATASETS, *user_datasets()],
            format_func=_dataset_label,
            # What this list offers, rather than the field's words (which speak of folders on disk).
            help="MedMNIST collections (the offline ones ship with the app; others download once, tens of MB) "
            "and your own images, uploaded as a .zip on the Data page.",
        )
        state.bind(st.slider, "n_qubits", **state.slider_range("n_qubits"))
        state.fit_features(values)  # the qubit count may just have changed
        state.bind(st.slider, "depth", **state.slider_range("depth"))
        st.caption(
            f"Features into the circuit: {values['n_features']} · entangler: {values['entangler']} · "
            f"image {values['image_size']}×{values['image_size']} px"
        )
        st.divider()
        st.caption(DISCLAIMER)
    state.sync_url()
    return values
