"""Home page: what a hybrid quantum–classical CNN is, how to use the app, disclaimer, attribution.

This page imports no heavy library so that it appears at once.
"""

from pathlib import Path

import streamlit as st

from hqcnn.markdown import md
from ui import jobs, state
from ui.sidebar import DISCLAIMER

ASSETS = Path(__file__).resolve().parent.parent / "assets"

st.title("HQCNN Explorer")
st.markdown(
    "Train a **hybrid quantum–classical convolutional neural network** on real medical images, "
    "live, and look inside it."
)
st.warning(DISCLAIMER, icon="⚠️")

st.subheader("What is a hybrid quantum–classical CNN?")
st.image(
    str(ASSETS / "hqcnn_diagram.svg"),
    caption="The three stages: a classical backbone, a (simulated) quantum circuit, a classifier head.",
    width="stretch",
)
col1, col2, col3 = st.columns(3)
col1.markdown(
    "**1 · Classical backbone.** Two small convolution layers find edges and textures in the image "
    "and summarise it as 8–16 numbers (features)."
)
col2.markdown(
    "**2–3 · Quantum circuit.** Each feature sets the rotation angle of a qubit (angle encoding). "
    "Trainable rotations and a ring of CNOT gates mix the qubits; measuring each qubit gives a "
    "number between −1 and +1 (its ⟨Z⟩ expectation value)."
)
col3.markdown(
    "**Classifier head.** A small fully connected network turns the qubit read-outs into class "
    "probabilities, e.g. *normal* vs *pneumonia*."
)
st.caption(
    "The circuit is simulated exactly on this computer; no quantum hardware is used. The design follows "
    "the paper “Hybrid Quantum–Classical Convolutional Neural Network for Medical Image Classification”."
)

st.subheader("A guided path (about ten minutes)")
st.markdown(
    """
1. **Data**: pick a dataset, look at sample images of each class and at how balanced the classes are.
2. **Circuit**: choose qubits and depth and see the quantum circuit that results, with its size.
3. **Train**: train the model live (under a minute on the offline datasets) and compare it with
   a classical network of the same size, a trivial baseline and a published ResNet-18.
4. **Explain**: see which pixels drove a prediction and what each qubit measured.
5. **Experiments**: test the paper's expected benefits (little data, noise, size) against the
   classical twin over several seeds, with confidence intervals and a significance test.
"""
)
st.page_link("pages/1_Data.py", label="Start with the data", icon="➡️")

values = state.settings()
with st.sidebar:
    st.header("Current set-up")
    st.caption(
        f"Dataset: {md(values['dataset'], 60)} · {values['n_qubits']} qubits · depth {values['depth']} · "
        + ("the recommended training recipe" if values["recipe"] else f"{values['epochs']} epochs")
        + ". Change it on the other pages."
    )
    st.divider()
    st.caption(DISCLAIMER)

st.subheader("Data and credits")
st.markdown(
    "The offline datasets are official **MedMNIST v2** files (PneumoniaMNIST, BreastMNIST, RetinaMNIST; "
    "CC BY 4.0), bundled with the app. Other MedMNIST datasets download on first use. "
    "Yang et al., *MedMNIST v2*, Scientific Data 10:41 (2023). Details: `assets/ATTRIBUTION.md`."
)

# Start the training workers' fork server now (it imports torch once, in its own process), so that
# the first Train of this server starts at once.
jobs.warm_up()
