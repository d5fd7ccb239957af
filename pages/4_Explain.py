"""Explain: one image's prediction, which pixels drove it, and what each qubit measured."""

import streamlit as st

from ui.common import dataset_title, user_errors
from ui.sidebar import render as render_sidebar
from ui.text import md

st.set_page_config(page_title="Explain · HQCNN Explorer", page_icon="🔍", layout="wide")
st.title("Explain a prediction")
render_sidebar()

models = st.session_state.get("models") or {}
if not models:
    st.info("There is no model yet. Train one (about a minute) or load a saved one on the Train page.")
    st.page_link("pages/3_Train.py", label="Go to Train", icon="➡️")
    st.stop()

import numpy as np  # noqa: E402

from hqcnn import explain, plots  # noqa: E402
from hqcnn.data import load_arrays, prepare_split  # noqa: E402
from hqcnn.imageio import MAX_UPLOAD_BYTES, image_to_model_input  # noqa: E402

name = st.radio("Model", list(models), horizontal=True, key="explain_model") if len(models) > 1 else next(iter(models))
trained = models[name]
meta, config, model = trained.meta, trained.config, trained.model
labels = list(meta.label_names)
is_hybrid = config.model.kind == "hybrid"
st.caption(
    f"{name} model ({trained.source}) for {md(dataset_title(meta.dataset))}: {config.model.n_qubits} qubits, depth {config.model.depth}, "
    f"{meta.image_size}×{meta.image_size} px input."
)


def _cached(key: str, compute):
    """Per-session cache tied to this model object (models never go into the shared caches)."""
    store = st.session_state.setdefault("_explain_cache", {})
    full_key = (id(model), key)
    if full_key not in store:
        if len(store) > 8:  # bounded: old models' entries go
            store.clear()
        store[full_key] = compute()
    return store[full_key]


with user_errors():
    x_test, y_test = _cached("test", lambda: prepare_split(config.data, "test", meta.mean, meta.std))
    raw_test = load_arrays(config.data.dataset, config.data.source_size)["test"][0]
    wrong = _cached("wrong", lambda: explain.misclassified(model, x_test, y_test))

st.subheader("Choose an image")
mode = st.radio(
    "Pick from",
    ["test image by index", "test image by class", "misclassified test images", "upload my own image"],
    horizontal=True,
    key="explain_mode",
)
x, shown, true_label = None, None, None
if mode == "test image by index":
    index = st.number_input(f"Test image index (0–{len(y_test) - 1})", 0, len(y_test) - 1, 0, key="explain_index")
elif mode == "test image by class":
    cls = st.selectbox("Class", range(len(labels)), format_func=lambda i: labels[i], key="explain_class")
    members = np.flatnonzero(y_test.numpy() == cls)
    index = int(members[st.slider("Which one", 0, max(len(members) - 1, 1), 0, key="explain_member") % len(members)])
elif mode == "misclassified test images":
    if len(wrong) == 0:
        st.success("The model classifies every test image correctly.")
        st.stop()
    pick = st.slider(
        f"Misclassified image ({len(wrong)} of {len(y_test)})", 0, max(len(wrong) - 1, 1), 0, key="explain_wrong"
    )
    index = int(wrong[pick % len(wrong)])
else:
    index = None
    upload = st.file_uploader(
        "PNG or JPEG image",
        type=["png", "jpg", "jpeg"],
        key="explain_upload",
        max_upload_size=MAX_UPLOAD_BYTES // 2**20,  # refused by the browser before it is sent
    )
    if upload is None:
        st.info("Upload an image to classify it. It is converted to the model's input size and colour mode.")
        st.stop()
    with user_errors():
        x = image_to_model_input(upload.getvalue(), meta, config.data)

if index is not None:
    x = x_test[index : index + 1]
    true_label = int(y_test[index])
display = x[0].permute(1, 2, 0).numpy()  # (H, W, C) as the model sees it
if config.data.normalize:  # back to pixel values 0..1 for showing
    display = display * np.array(meta.std) + np.array(meta.mean)
display = np.clip(display, 0, 1)
display = display[..., 0] if display.shape[-1] == 1 else display

with user_errors():
    prediction = explain.predict_one(model, x)
left, right = st.columns([1, 2])
left.image(
    display,
    caption="Model input" + (f" · true class: {md(labels[true_label])}" if true_label is not None else ""),
    clamp=True,
    width="stretch",
)
right.plotly_chart(plots.class_probabilities(prediction.probabilities, labels), key="probabilities")
right.caption(
    f"Predicted: **{md(labels[prediction.label_index])}**"
    + (f" (true: {md(labels[true_label])})" if true_label is not None else "")
    + ". Probabilities from a small research model: not a diagnosis."
)


@st.fragment
def saliency_panel() -> None:
    """Reruns on its own when the method changes, without recomputing the rest of the page."""
    method = st.selectbox(
        "Attribution method",
        list(explain.ATTRIBUTIONS),
        format_func=lambda k: explain.ATTRIBUTIONS[k].label,
        key="explain_method",
    )
    target = st.selectbox(
        "Explain the score of class",
        range(len(labels)),
        index=prediction.label_index,
        format_func=lambda i: labels[i],
        key="explain_target",
    )
    with user_errors(stop=False), st.spinner("Computing the attribution…"):
        attribution = explain.attribute(model, x, int(target), method)
        st.plotly_chart(
            plots.saliency_overlay(
                display,
                explain.normalise_map(attribution),
                f"{explain.ATTRIBUTIONS[method].label} for '{plots.plain([labels[int(target)]])[0]}'",
            ),
            key="saliency",
        )
    st.caption(explain.ATTRIBUTIONS[method].description)


st.subheader("Which pixels mattered?")
saliency_panel()

if is_hybrid:
    st.subheader("What the qubits measured")
    q1, q2 = st.columns(2)
    q1.plotly_chart(plots.qubit_bars(prediction.readout), key="qubit_bars")
    q1.caption("⟨Z⟩ = +1: the qubit is surely |0⟩ when measured; −1: surely |1⟩; 0: either, equally likely.")
    readouts = _cached("readouts", lambda: explain.qubit_readouts(model, x_test))
    q2.plotly_chart(plots.qubit_distributions(readouts, y_test.numpy(), labels), key="qubit_distributions")
    q2.caption("Qubits whose boxes separate the classes are the ones the classifier head relies on.")
    with user_errors(stop=False):
        vectors = explain.bloch_vectors(model, x)
        st.plotly_chart(plots.bloch_spheres(vectors), key="bloch")
    st.caption(
        "Each arrow is one qubit's state. An arrow shorter than the sphere's radius means the qubit is entangled "
        "with the others: its state cannot be described on its own."
    )
else:
    st.info(
        "Per-qubit read-outs exist only for the hybrid model; this model replaces the circuit with a classical layer."
    )
