"""Circuit: choose the quantum circuit's shape and see it drawn, sized and exported."""

import io
from dataclasses import replace

import streamlit as st

from ui import state
from ui.sidebar import render as render_sidebar

st.set_page_config(page_title="Circuit · HQCNN Explorer", page_icon="⚛️", layout="wide")
st.title("Quantum circuit")
values = render_sidebar()

# Imported after the sidebar so that the page frame appears before torch and PennyLane load.
from hqcnn import plots  # noqa: E402
from hqcnn.circuit import ENCODING_DESCRIPTIONS, ENTANGLER_DESCRIPTIONS  # noqa: E402
from hqcnn.config import ENCODINGS, ENTANGLERS  # noqa: E402
from hqcnn.data import get_info  # noqa: E402
from hqcnn.model import build_model, parameter_counts  # noqa: E402
from hqcnn.references import RESNET18_PARAMS  # noqa: E402

n = values["n_qubits"]
c1, c2, c3 = st.columns(3)
with c1:
    state.bind(
        st.slider,
        "n_features",
        "Features from the backbone",
        min_value=n,
        max_value=3 * n,
        help=f"With {n} qubits each qubit takes 1 to 3 features, one rotation axis each.",
    )
with c2:
    state.bind(
        st.selectbox,
        "entangler",
        "Entangler",
        options=list(ENTANGLERS),
        help="; ".join(f"{k}: {v}" for k, v in ENTANGLER_DESCRIPTIONS.items()),
    )
    st.caption(ENTANGLER_DESCRIPTIONS[values["entangler"]].capitalize() + ".")
with c3:
    state.bind(
        st.selectbox,
        "encoding",
        "Encoding",
        options=list(ENCODINGS),
        help="; ".join(f"{k}: {v}" for k, v in ENCODING_DESCRIPTIONS.items()),
    )
    st.caption(ENCODING_DESCRIPTIONS[values["encoding"]].capitalize() + ".")

config = state.run_config().model


@st.cache_data(show_spinner="Drawing the circuit…", max_entries=32)
def circuit_drawings(n_qubits: int, depth: int, n_features: int, entangler: str, encoding: str) -> dict:
    """Text, PNG, SVG and OpenQASM of the circuit (cached per shape)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hqcnn.circuit import CircuitSpec, draw_figure, draw_text, to_openqasm

    spec = CircuitSpec(n_qubits, depth, n_features, entangler, encoding)
    fig = draw_figure(spec)
    out = {"text": draw_text(spec), "qasm": to_openqasm(spec)}
    for fmt in ("png", "svg"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=110, bbox_inches="tight")
        out[fmt] = buffer.getvalue()
    plt.close(fig)
    return out


drawings = circuit_drawings(config.n_qubits, config.depth, config.n_features, config.entangler, config.encoding)
st.image(
    drawings["png"],
    caption=(
        f"{config.n_qubits} qubits, depth {config.depth}: angle encoding of {config.n_features} features, then "
        f"{config.depth} layer(s) of trainable RY and RZ rotations and {config.entangler} CNOTs; ⟨Z⟩ measured on every qubit."
    ),
)
d1, d2, d3 = st.columns(3)
d1.download_button("Diagram (PNG)", drawings["png"], "circuit.png", "image/png", key="dl_png")
d2.download_button("Diagram (SVG)", drawings["svg"], "circuit.svg", "image/svg+xml", key="dl_svg")
d3.download_button("Circuit (OpenQASM 2.0)", drawings["qasm"], "circuit.qasm", "text/plain", key="dl_qasm")
with st.expander("Text form of the circuit"):
    st.code(drawings["text"], language=None)

st.subheader("What each stage does")
st.markdown(
    f"""
- **Encoding**: each of the {config.n_features} features (squashed into an angle between −π and π) rotates one qubit, so the
  image summary becomes a quantum state.
- **Variational layers** ({config.depth}): trainable RY and RZ angles on each qubit, learned like any other weight.
- **Entangler** ({config.entangler}): {ENTANGLER_DESCRIPTIONS[config.entangler]}; this lets the qubits share information.
- **Measurement**: the expectation value ⟨Z⟩ of each qubit, a number between −1 and +1, goes to the classifier head.
"""
)

st.subheader("Size of the model")
STAGE_NAMES = {
    "backbone": "backbone",
    "quantum": "quantum circuit",
    "classical_middle": "classical stand-in",
    "head": "head",
    "total": "total",
}

info = get_info(values["dataset"])
in_channels = 1 if values["grayscale"] else info.n_channels
counts = {
    "hybrid": parameter_counts(build_model(config, in_channels, info.n_classes, backend="pennylane")).to_dict(),
    "classical twin": parameter_counts(
        build_model(replace(config, kind="classical"), in_channels, info.n_classes)
    ).to_dict(),
}

left, right = st.columns([3, 2])
left.plotly_chart(plots.parameter_counts(counts), key="param_counts")
right.dataframe(
    {name: {STAGE_NAMES[k]: f"{v:,}" for k, v in c.items()} for name, c in counts.items()},
    width="stretch",
)
right.caption(
    f"The classical twin swaps the circuit's {counts['hybrid']['quantum']} angles for a classical layer with "
    f"{counts['classical twin']['classical_middle']} weights, the nearest size such a layer can have. "
    f"For scale: a MedMNIST ResNet-18 has about {RESNET18_PARAMS / 1e6:.0f} million parameters."
)
st.page_link("pages/3_Train.py", label="Next: train it", icon="➡️")
