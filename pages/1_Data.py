"""Data: pick a dataset, see its classes and balance, and choose how images are prepared."""

import streamlit as st

from ui import state
from ui.common import class_counts, ensure_dataset, prepared_data, user_errors
from ui.sidebar import add_user_dataset
from ui.sidebar import render as render_sidebar
from ui.text import md

st.set_page_config(page_title="Data · HQCNN Explorer", page_icon="🩻", layout="wide")
st.title("Data")
values = render_sidebar()

from hqcnn import folder_data, plots  # noqa: E402  (after the sidebar so the page frame appears first)
from hqcnn.data import dataset_status, get_info, load_arrays  # noqa: E402


def _read_folder(key: str) -> None:
    """Read a folder dataset (only the first time: then it is cached), with a progress bar."""
    if folder_data.is_cached(key):
        folder_data.load(key)
        return
    bar = st.progress(0.0, text="Reading your images (once; later runs start at once)…")
    try:
        folder_data.load(
            key, progress=lambda done, total: bar.progress(done / total, text=f"Read {done:,} of {total:,} images")
        )
    finally:
        bar.empty()


with st.expander("Use your own images (a .zip with one folder per class)", expanded=False):
    st.markdown(
        "Zip a folder that holds **one sub-folder per class**, named after the class, with PNG or JPEG images "
        "of any size (for example `xrays/normal/…` and `xrays/pneumonia/…`). Optional `train/`, `val/` and "
        "`test/` folders (each with the class folders) fix the split; otherwise each class is split 80/10/10 "
        "with a fixed seed. Images are made square (centre crop), stored at up to 128 px, and cached. "
        "Other files are skipped and listed."
    )
    # The server refuses any upload above server.maxUploadSize, whatever a widget allows.
    zip_mb = max(1, min(folder_data.MAX_ZIP_BYTES // 2**20, int(st.get_option("server.maxUploadSize"))))
    server_note = (
        f" This server accepts uploads of at most {zip_mb} MB (server.maxUploadSize)."
        if zip_mb < folder_data.MAX_ZIP_BYTES // 2**20
        else ""
    )
    st.caption(
        f"Limits: {folder_data.LIMITS}.{server_note} Use only de-identified images you may share with this computer."
    )
    upload = st.file_uploader("Zip of class folders", type=["zip"], key="upload_folder_zip", max_upload_size=zip_mb)
    if upload is not None and st.session_state.get("_folder_zip_id") != upload.file_id:
        st.session_state["_folder_zip_id"] = upload.file_id  # handled once, even if it fails
        added = None
        bar = st.progress(0.0, text="Reading your images (once; later runs start at once)…")
        with user_errors(stop=False):
            # Unpacked and read in one step: an archive that is no usable dataset leaves nothing on disk.
            added, _ = folder_data.add_upload(
                upload.getvalue(),
                upload.name,
                progress=lambda done, total: bar.progress(done / total, text=f"Read {done:,} of {total:,} images"),
            )
        bar.empty()
        if added:
            add_user_dataset(added)
            st.rerun()  # the sidebar now lists and selects it

own = dataset_status(values["dataset"]) == "folder"
with user_errors():
    if own:
        _read_folder(values["dataset"])
    info = get_info(values["dataset"])
st.markdown(f"**{md(info.title)}** · task: {info.task} · {info.n_classes} classes · {info.n_channels} channel(s)")
st.caption(md(info.description, limit=2000))
if own:
    report = folder_data.load(info.key).report
    st.caption(f"Licence: {info.license}. Source: {md(report.folder)}.")
    st.info(
        f"{report.split_rule}: {info.n_samples['train']:,} training, {info.n_samples['val']:,} validation and "
        f"{info.n_samples['test']:,} test images. Images are stored at {report.stored_size}×{report.stored_size} px."
    )
    if skipped := report.skipped_message():
        st.warning(md(skipped, limit=2000))
else:
    st.caption(f"Licence: {info.license}. Source: MedMNIST v2 (Yang et al., Scientific Data 2023).")

if not ensure_dataset(info.key):
    st.stop()

with user_errors():
    counts = class_counts(info.key)
    arrays = load_arrays(info.key, 28)

left, right = st.columns([3, 2])
with left:
    images, labels = arrays["train"]
    st.plotly_chart(plots.sample_grid(images, labels.ravel(), list(info.label_names), per_class=6), key="samples")
with right:
    st.plotly_chart(plots.class_balance(counts, list(info.label_names)), key="balance")
    majority = max(counts["test"]) / sum(counts["test"])
    st.caption(
        f"Always guessing the most common class would score {majority:.1%} accuracy on the test set: "
        "that is the baseline every model must beat."
    )

st.subheader("How the model sees the images")
c1, c2, c3 = st.columns([1, 1, 1.4])
with c1:
    state.bind(
        st.selectbox,
        "image_size",
        "Image size (pixels per side)",
        options=[28, 32, 64, 128],
        help=(
            f"Your images are stored at {report.stored_size}×{report.stored_size} and resized to this size; "
            "larger sizes train more slowly."
            if own
            else "The bundled files are 28×28; larger sizes are upsampled and train more slowly."
        ),
    )
    state.bind(
        st.checkbox,
        "grayscale",
        "Convert colour images to grayscale",
        disabled=info.n_channels == 1,
        help="Only for colour datasets such as RetinaMNIST.",
    )
    state.bind(
        st.checkbox,
        "normalize",
        "Normalise",
        help="Shift and scale each channel to mean 0 and standard deviation 1, using the training images.",
    )
with c2:
    state.bind(
        st.slider,
        "train_per_class",
        "Training images per class (0 = all)",
        min_value=0,
        max_value=500,
        step=5,
        help="Fewer images show how the model copes with little data (a claim of the paper).",
    )
    state.bind(
        st.slider,
        "noise_std",
        "Gaussian noise added to the images (σ, in units of full brightness)",
        min_value=0.0,
        max_value=0.5,
        step=0.01,
        help="Noise is added to training and test images alike, to test robustness.",
    )

config = state.run_config().data
with user_errors():
    data = prepared_data(config)
with c3:
    index = 0
    original = images[data.train_indices[index]] / 255.0
    st.plotly_chart(plots.before_after(original, data.to_display(data.x_train[index : index + 1])[0]), key="preview")
st.caption(
    f"Training on {len(data.y_train):,} images ({'all' if not config.train_per_class else f'{config.train_per_class} per class'}), "
    f"validating on {len(data.y_val):,}, testing on {len(data.y_test):,}. Channel mean "
    f"{', '.join(f'{m:.3f}' for m in data.mean)}, standard deviation {', '.join(f'{s:.3f}' for s in data.std)} "
    "(pixel units 0–1)."
)
st.page_link("pages/2_Circuit.py", label="Next: the quantum circuit", icon="➡️")
