"""Data: pick a dataset, see its classes and balance, and choose how images are prepared."""

import streamlit as st

from ui import state
from ui.common import class_counts, ensure_dataset, prepared_data, user_errors
from ui.sidebar import render as render_sidebar

st.set_page_config(page_title="Data · HQCNN Explorer", page_icon="🩻", layout="wide")
st.title("Data")
values = render_sidebar()

from hqcnn import plots  # noqa: E402  (after the sidebar so the page frame appears first)
from hqcnn.data import get_info, load_arrays  # noqa: E402

with user_errors():
    info = get_info(values["dataset"])
st.markdown(f"**{info.title}** · task: {info.task} · {info.n_classes} classes · {info.n_channels} channel(s)")
st.caption(info.description)
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
        help="The bundled files are 28×28; larger sizes are upsampled and train more slowly.",
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
