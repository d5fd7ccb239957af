"""Data: pick a dataset, see its classes and balance, and choose how images are prepared."""

import streamlit as st

from hqcnn.markdown import md
from ui import jobs, state
from ui.common import class_counts, ensure_dataset, user_errors
from ui.sidebar import add_user_dataset
from ui.sidebar import render as render_sidebar
from ui.uploads import file_uploader

st.set_page_config(page_title="Data · HQCNN Explorer", page_icon="🩻", layout="wide")
st.title("Data")
values = render_sidebar()

from dataclasses import replace  # noqa: E402

import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402

from hqcnn import folder_data, plots  # noqa: E402  (after the sidebar so the page frame appears first)
from hqcnn.config import DataConfig  # noqa: E402
from hqcnn.data import dataset_status, get_info, load_arrays, low_data_indices  # noqa: E402
from hqcnn.preprocessing import preprocess, split_seed, to_unit_range  # noqa: E402

_STEP_VALUES = 2**24  # float32 values per step (64 MB): a bundled set in one, a large upload in a few hundred images


# Figures are cached as shared resources, not copied per call: st.plotly_chart only reads them
# (it serialises a copy), and unpickling the 30-image grid on every rerun costs more than the
# rest of the page.
@st.cache_resource(show_spinner=False, max_entries=16)
def _samples_figure(dataset: str) -> go.Figure:
    """The grid of example training images (built once per dataset, shared by all sessions)."""
    images, labels = load_arrays(dataset, 28)["train"]
    return plots.sample_grid(images, labels, list(get_info(dataset).label_names), per_class=6)


@st.cache_resource(show_spinner=False, max_entries=16)
def _balance_figure(dataset: str) -> go.Figure:
    """Images per class in each split."""
    return plots.class_balance(class_counts(dataset), list(get_info(dataset).label_names))


def _resize_matrix(side: int, size: int) -> np.ndarray:
    """(size, side) matrix R such that preprocessing resizes each channel X to R X Rᵀ.

    Read off that very resize applied to images with one white row each: bilinear resizing is
    linear and separable, and when enlarging, each output pixel's weights sum to 1.
    """
    rows = np.repeat(np.eye(side, dtype=np.uint8)[:, :, None] * 255, side, axis=2)  # image i: row i white
    return to_unit_range(rows, False, size)[:, 0, :, 0].T.double().numpy()


@st.cache_data(show_spinner=False, max_entries=64)
def _training_set(
    dataset: str, source_size: int, grayscale: bool, image_size: int, per_class: int | None, seed: int
) -> tuple[int, int, tuple[float, ...], tuple[float, ...]]:
    """Count, first image (a row of the stored train split) and per-channel mean and standard
    deviation (0..1 units, before noise) of the training images `prepare` keeps for these settings.

    The statistics `prepare` computes, without building the enlarged tensors it trains on (at
    128 px hundreds of MB and seconds of work): enlarging is the linear map X -> R X Rᵀ, so with
    a = Rᵀ1 and K = RᵀR the sums over the enlarged pixels follow from the stored images:
    Σ R X Rᵀ = aᵀ X a and Σ (R X Rᵀ)² = Σ (K X K) ⊙ X.
    """
    images, labels = load_arrays(dataset, source_size)["train"]
    keep = np.arange(len(labels)) if per_class is None else low_data_indices(labels, per_class, seed)
    side = images.shape[1]
    enlarge = image_size > side
    if enlarge:
        resize = _resize_matrix(side, image_size)
        a, k = resize.sum(axis=0), resize.T @ resize
    step = max(1, _STEP_VALUES // images[0].size)  # images per step, counted at the stored size (the larger)
    total = squares = 0.0
    for start in range(0, len(keep), step):
        # numpy, not torch, for the sums: torch's threads make such small steps erratic on a busy server.
        x = to_unit_range(images[keep[start : start + step]], grayscale, side if enlarge else image_size).numpy()
        x = x.astype(np.float64)  # (B, C, s, s): millions of terms are summed
        if enlarge:
            total = total + np.einsum("i,bcij,j->c", a, x, a)
            squares = squares + np.einsum("bcij,bcij->c", k @ x @ k, x)
        else:
            total = total + x.sum(axis=(0, 2, 3))
            squares = squares + np.einsum("bcij,bcij->c", x, x)
    n = len(keep) * image_size**2
    mean = total / n
    std = np.maximum(np.sqrt(np.maximum(squares / n - mean**2, 0.0)), 1e-6)  # the floor `prepare` applies
    return len(keep), int(keep[0]), tuple(mean.tolist()), tuple(std.tolist())


@st.cache_resource(show_spinner=False, max_entries=64)
def _preview_figure(cfg: DataConfig, index: int) -> go.Figure:
    """Stored training image `index` beside the model input made from it under `cfg` (without
    normalisation, which leaves the picture as it is: an image is shown in 0..1 units).

    For the first kept image this is exactly the first row of the training tensors, noise
    included: that row's noise is the first draws from the split's seed, however many rows follow.
    """
    image = load_arrays(cfg.dataset, cfg.source_size)["train"][0][index]
    shown = preprocess(image[None], cfg, (), (), noise_seed=split_seed(cfg.seed, "train"))  # (1, C, H, W)
    return plots.before_after(image, shown[0].numpy())


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
        "Zip a folder that holds **one sub-folder per class**, named after the class, with PNG, JPEG or DICOM images "
        "of any size (for example `xrays/normal/…` and `xrays/pneumonia/…`). Optional `train/`, `val/` and "
        "`test/` folders (each with the class folders) fix the split; otherwise each class is split 80/10/10 "
        "with a fixed seed. Images are made square (centre crop), stored at up to 128 px, and cached. "
        "Only the pictures are kept on the server (no DICOM header, no file names), for this session or at most "
        f"{folder_data.upload_store.lifetime_seconds() / 3600:g} hours unused. Other files are skipped and counted."
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
    naming = st.radio(
        "Class names",
        options=list(folder_data.NAMINGS),
        format_func={
            folder_data.FILTERED: "Folder names, unless one looks like personal data (then 'class 1', …)",
            folder_data.NUMBERED: "Always 'class 1', 'class 2', … (folder names are never shown)",
        }.get,
        key="upload_class_naming",
        help=(
            "Folder names are often patients' names, IDs or dates. A name with digits of an ID or date, a '^' or "
            "',', more than three words or two capitalised words that are not medical terms is replaced by "
            "'class N'; file names are never shown or stored."
        ),
    )
    upload = file_uploader("Zip of class folders", type=["zip"], key="upload_folder_zip", max_mb=zip_mb)
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
                naming=naming,
            )
        bar.empty()
        if added:
            # Removed from the server once this session (and any other that uploaded it) has ended.
            folder_data.claim_upload(added, jobs.current_owner().session_id or "", jobs.session_connected)
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
    samples, balance = _samples_figure(info.key), _balance_figure(info.key)

left, right = st.columns([3, 2])
with left:
    st.plotly_chart(samples, key="samples")
with right:
    st.plotly_chart(balance, key="balance")
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
        options=list(state.SETTINGS["image_size"].choices),
        help=(
            f"Your images are stored at {report.stored_size}×{report.stored_size} and resized to this size; "
            "larger sizes train more slowly."
            if own
            else "The bundled files are 28×28; larger sizes are upsampled and train more slowly."
        ),
    )
    state.bind(st.checkbox, "grayscale", disabled=info.n_channels == 1)
    state.bind(st.checkbox, "normalize")
with c2:
    state.bind(st.slider, "train_per_class", step=5, **state.slider_range("train_per_class"))
    state.bind(st.slider, "noise_std", step=0.01, **state.slider_range("noise_std"))

config = state.run_config().data
with user_errors():
    n_train, first, mean, std = _training_set(
        config.dataset, config.source_size, config.grayscale, config.image_size, config.train_per_class, config.seed
    )
    # Not keyed on normalisation, so ticking Normalise reuses the figure.
    preview = _preview_figure(replace(config, normalize=False), first)
with c3:
    st.plotly_chart(preview, key="preview")
st.caption(
    f"Training on {n_train:,} images ({'all' if not config.train_per_class else f'{config.train_per_class} per class'}), "
    f"validating on {sum(counts['val']):,}, testing on {sum(counts['test']):,}. Channel mean "
    f"{', '.join(f'{m:.3f}' for m in mean)}, standard deviation {', '.join(f'{s:.3f}' for s in std)} "
    "of the training images before noise (pixel units 0–1)."
)
st.page_link("pages/2_Circuit.py", label="Next: the quantum circuit", icon="➡️")
