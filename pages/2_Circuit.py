"""Circuit: choose the quantum circuit's shape and see it drawn, sized and exported."""

from dataclasses import replace

import streamlit as st

from hqcnn.config import DEPTH_RANGE, ENCODINGS, ENTANGLERS, READOUTS, ModelConfig
from ui import state
from ui.common import user_errors
from ui.sidebar import render as render_sidebar

st.set_page_config(page_title="Circuit · HQCNN Explorer", page_icon="⚛️", layout="wide")
st.title("Quantum circuit")
values = render_sidebar()


# Everything that depends only on the circuit's shape is computed once per shape for all
# sessions; PennyLane and torch are imported here only when a shape is new.
@st.cache_data(show_spinner="Drawing the circuit…", max_entries=64)
def circuit_view(n_qubits: int, depth: int, n_features: int, entangler: str, encoding: str, readout: str) -> dict:
    """Words, diagram, text drawing and placeholder OpenQASM of one circuit shape and read-out."""
    from hqcnn import circuit
    from hqcnn.plots.quantum import circuit_diagram

    spec = circuit.CircuitSpec(n_qubits, depth, n_features, entangler, encoding)
    title = f"{n_qubits} qubits · depth {depth} · {n_features} features · {entangler} · {encoding}"
    header = [
        f"HQCNN Explorer: the circuit designed on the Circuit page ({n_qubits} qubits, depth {depth}, "
        f"{n_features} features, entangler {entangler}, encoding {encoding}).",
        "Placeholder angles: every encoding angle and every trainable angle is 0 here. With a trained hybrid "
        "model the Circuit page also exports that model's circuit with its learned angles and one image's input.",
        "Qubit i of the model is q[i]; <Z> of qubit i = P(measure 0) - P(measure 1) is what the head reads.",
    ]
    return {
        "words": circuit.describe(spec, readout),
        "readout_width": circuit.readout_width(n_qubits, readout),
        "entanglers": dict(circuit.ENTANGLER_DESCRIPTIONS),
        "encodings": dict(circuit.ENCODING_DESCRIPTIONS),
        "diagram": circuit_diagram(n_qubits, circuit.circuit_gates(spec), title),
        "text": circuit.draw_text(spec),
        "qasm": circuit.to_openqasm(spec, comments=header),
    }


@st.cache_data(show_spinner=False, max_entries=256)
def parameter_rows(config: ModelConfig, in_channels: int, n_classes: int) -> dict[str, dict[str, int]]:
    """Trainable parameters per stage of the hybrid model and its classical twin (no model is built)."""
    from hqcnn.model import count_parameters

    return {
        "hybrid": count_parameters(config, in_channels, n_classes).to_dict(),
        "classical twin": count_parameters(replace(config, kind="classical"), in_channels, n_classes).to_dict(),
    }


# Keyed by the circuit's shape, like circuit_view: the estimate depends on nothing else.
@st.cache_data(show_spinner=False, max_entries=512)
def circuit_measures(n_qubits: int, depth: int, n_features: int, entangler: str, encoding: str) -> dict:
    """Expressibility and entangling capability of one circuit shape, with their references."""
    from hqcnn import expressibility
    from hqcnn.circuit import CircuitSpec

    p = expressibility.properties(CircuitSpec(n_qubits, depth, n_features, entangler, encoding))
    return {
        "expressibility": p.expressibility,
        "idle": p.idle_expressibility,
        "q": p.entangling_capability,
        "haar_q": p.haar_entangling_capability,
        "samples": p.samples,
        "pairs": p.samples * expressibility.NEIGHBOURS,
    }


def expressibility_text(value: float) -> str:
    """An expressibility estimate as shown: below 0.001 the samples cannot tell it from Haar-random (0)."""
    return f"{value:.3f}" if value >= 0.0005 else "< 0.001"


def measures_chart(sweep: dict[str, list[dict]], depths: list[int], chosen: int, n_qubits: int):
    """Expressibility and Q of each depth, this entangler beside none, with the Haar and idle references."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from hqcnn.plots.style import OKABE_ITO, apply_style

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.16)
    styles = {0: ("solid", "circle"), 1: ("dash", "square")}
    for i, (entangler, rows) in enumerate(sweep.items()):
        dash, symbol = styles[i]
        name = f"entangler {entangler}" + (" (this circuit)" if i == 0 else "")
        for col, key in ((1, "expressibility"), (2, "q")):
            fig.add_trace(
                go.Scatter(
                    x=depths,
                    # The log axis cannot show 0: an estimate at the floor is drawn at 1e-5.
                    y=[max(r[key], 1e-5) if col == 1 else r[key] for r in rows],
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    mode="lines+markers",
                    line={"color": OKABE_ITO[i], "dash": dash},
                    marker={"symbol": symbol, "size": 8},
                ),
                row=1,
                col=col,
            )
    first = next(iter(sweep.values()))
    references = (
        (1, f"idle circuit: {first[0]['idle']:,.0f}", first[0]["idle"]),
        (2, f"Haar-random: {first[0]['haar_q']:.3f}", first[0]["haar_q"]),
    )
    for col, label, value in references:
        fig.add_hline(
            y=value,
            row=1,
            col=col,
            line={"color": "#666666", "dash": "dot"},
            annotation_text=label,
            annotation_position="bottom right" if col == 1 else "top left",
        )
    for col in (1, 2):
        fig.add_vline(x=chosen, row=1, col=col, line={"color": "#BBBBBB", "width": 1})
    apply_style(fig, f"Across depths, {n_qubits} qubits (grey line: the chosen depth)", None, None)
    fig.update_xaxes(title_text="Circuit depth (layers)", dtick=1)
    fig.update_yaxes(title_text="Expressibility (KL, log scale)", type="log", exponentformat="power", row=1, col=1)
    fig.update_yaxes(title_text="Entangling capability Q", range=[-0.02, 1.02], row=1, col=2)
    fig.update_layout(
        height=420,
        legend={"orientation": "h", "xref": "container", "x": 0.0, "yref": "container", "y": 0.0, "yanchor": "bottom"},
        margin={"b": 110},
    )
    return fig


def sentence(text: str) -> str:
    """`text` with its first letter capitalised (str.capitalize would turn "CNOT" into "Cnot")."""
    return text[:1].upper() + text[1:]


def model_test_split(trained) -> tuple:
    """The trained model's own test images and labels, kept for this session's current model only."""
    kept = st.session_state.get("_circuit_test_split")
    if kept is None or kept[0] != trained.key:
        from hqcnn.data import prepare_split
        from ui.sidebar import require_session_dataset

        require_session_dataset(trained.meta.dataset, "This model")
        kept = (trained.key, *prepare_split(trained.config.data, "test", trained.meta.mean, trained.meta.std))
        st.session_state["_circuit_test_split"] = kept
    return kept[1], kept[2]


@st.fragment
def trained_export(trained, designed: ModelConfig) -> None:
    """OpenQASM of the trained hybrid's own circuit: its learned angles and one test image's input."""
    import torch

    from hqcnn.circuit import CircuitSpec, to_openqasm
    from hqcnn.markdown import md
    from ui.common import dataset_title

    st.subheader("OpenQASM of your trained model")
    cfg, meta = trained.config.model, trained.meta
    shape = f"{cfg.n_qubits} qubits, depth {cfg.depth}, {cfg.n_features} features, {cfg.entangler}, {cfg.encoding}"
    same = CircuitSpec.from_model_config(cfg) == CircuitSpec.from_model_config(designed)
    source = "trained in this session" if trained.source == "trained" else "uploaded"
    title = dataset_title(meta.dataset)
    st.caption(
        f"The hybrid model {source} on {md(title)} ({shape}). "
        + (
            "Its circuit has the shape designed above."
            if same
            else "This is its own circuit, not the one designed above."
        )
        + " The export carries its trained angles and the encoded angles of one test image."
    )
    x_test = None
    with user_errors(stop=False):
        x_test, y_test = model_test_split(trained)
    if x_test is None:
        return
    index = st.number_input(
        f"Test image (0–{len(y_test) - 1})",
        0,
        len(y_test) - 1,
        0,
        key="circuit_qasm_index",
        help="Its index in the test split.",
    )
    label = int(y_test[index].reshape(-1)[0])
    with torch.no_grad():
        angles = trained.model.circuit_angles(x_test[index : index + 1])[0]
    header = [
        f"HQCNN Explorer: the circuit of the hybrid model {source}, with its trained angles.",
        f"Model: dataset {title} ({meta.dataset}); {shape}.",
        f"Input: test split, image {index}, true class {label} ({meta.label_names[label]}); feature i's angle is "
        "pi/2*(1 + tanh f_i) of the backbone's output f for this image.",
        "Qubit i of the model is q[i]; <Z> of qubit i = P(measure 0) - P(measure 1) is what the head reads.",
    ]
    qasm = to_openqasm(CircuitSpec.from_model_config(cfg), angles, trained.model.middle.weights, comments=header)
    st.markdown(f"Image {index} of the test split, true class: **{md(meta.label_names[label])}**.")
    st.download_button(
        "Trained circuit for this image (OpenQASM 2.0)",
        qasm,
        f"circuit_trained_test{index}.qasm",
        "text/plain",
        key="dl_qasm_trained",
        on_click="ignore",
    )
    with st.expander("Show this OpenQASM"):
        st.code(qasm, language=None)


config = state.run_config().model
view = circuit_view(
    config.n_qubits, config.depth, config.n_features, config.entangler, config.encoding, config.readout
)
words = view["words"]
c1, c2, c3, c4 = st.columns(4)
with c1:
    state.bind(
        st.slider,
        "n_features",
        "Features from the backbone",
        min_value=config.n_qubits,
        max_value=3 * config.n_qubits,
        help=words["features"],
    )
with c2:
    state.bind(
        st.selectbox,
        "entangler",
        "Entangler",
        options=list(ENTANGLERS),
        help="; ".join(f"{k}: {v}" for k, v in view["entanglers"].items()),
    )
    st.caption(sentence(view["entanglers"][config.entangler]) + ".")
with c3:
    state.bind(
        st.selectbox,
        "encoding",
        "Encoding",
        options=list(ENCODINGS),
        help="; ".join(f"{k}: {v}" for k, v in view["encodings"].items()),
    )
    st.caption(sentence(view["encodings"][config.encoding]) + ".")
with c4:
    state.bind(st.selectbox, "readout", "Read-out", options=list(READOUTS))
    st.caption(
        f"The head sees {view['readout_width']} numbers: "
        + ("each qubit's ⟨Z⟩ and each pair's ⟨Z_i Z_j⟩." if config.readout == "zz" else "each qubit's ⟨Z⟩.")
    )

trained_hybrid = (st.session_state.get("models") or {}).get("hybrid")
has_trained = trained_hybrid is not None and trained_hybrid.config.model.kind == "hybrid"
diagram = view["diagram"]
# The drawing is never wider than the column it was laid out for, so it is shown at its own size.
st.image(diagram.svg, caption=words["caption"])
d1, d2, d3 = st.columns(3)
# PNG on demand (rendering one takes longer than the rest of the page); no rerun after a download.
d1.download_button("Diagram (PNG)", diagram.png, "circuit.png", "image/png", key="dl_png", on_click="ignore")
d2.download_button("Diagram (SVG)", diagram.svg, "circuit.svg", "image/svg+xml", key="dl_svg", on_click="ignore")
d3.download_button(
    "Circuit (OpenQASM 2.0)",
    view["qasm"],
    "circuit.qasm",
    "text/plain",
    key="dl_qasm",
    on_click="ignore",
    help="This circuit with placeholder angles (all 0), as its header says.",
)
st.caption(
    "The OpenQASM file has placeholder angles (all 0), as its header says. "
    + (
        "Your trained model's own circuit, with its learned angles and one image's input, is exported at the "
        "foot of this page."
        if has_trained
        else "Once a hybrid model is trained (or loaded), this page also exports that model's own circuit with "
        "its learned angles and one image's input."
    )
)
with st.expander("Text form of the circuit (PennyLane's drawing)"):
    st.code(view["text"], language=None)

st.subheader("What each stage does")
st.markdown(
    "\n".join(
        f"- **{label}**: {sentence(words[key])}."
        for label, key in [
            ("Encoding", "encoding"),
            (f"Variational layers ({config.depth})", "variational"),
            (f"Entangler ({config.entangler})", "entangler"),
            ("Measurement", "measurement"),
        ]
    )
)


st.subheader("Expressibility and entangling capability")
DEPTHS = list(range(DEPTH_RANGE[0], DEPTH_RANGE[1] + 1))
with st.spinner("Estimating over random parameters…"):
    # This entangler first, then none (once, when it is this circuit's) for the comparison.
    sweep = {
        ent: [circuit_measures(config.n_qubits, d, config.n_features, ent, config.encoding) for d in DEPTHS]
        for ent in dict.fromkeys([config.entangler, "none"])
    }
here = sweep[config.entangler][DEPTHS.index(config.depth)]
bare = sweep["none"][DEPTHS.index(config.depth)]
n_states = 2**config.n_qubits
m1, m2 = st.columns(2)
m1.metric(
    "Expressibility (lower = more expressive)",
    expressibility_text(here["expressibility"]),
    help="Kullback–Leibler divergence between this circuit's distribution of state overlaps and that of "
    "Haar-random states: 0 for states spread as evenly as possible.",
)
m2.metric(
    "Entangling capability (Meyer–Wallach Q)",
    f"{here['q']:.3f}",
    help="The mean Meyer–Wallach measure of the circuit's states: 0 for product states, 1 for a GHZ state.",
)
if config.entangler == "none":
    bare_expr = "this circuit is already the one without entanglers"
    bare_q = "this circuit has none: its states are products of one-qubit states, so Q is 0"
else:
    bare_expr = f"the same circuit without entanglers (entangler none): {expressibility_text(bare['expressibility'])}"
    bare_q = f"without entanglers: {bare['q']:.3f} (product states have Q = 0)"
st.markdown(
    f"""
**Expressibility** asks how evenly the circuit's states cover all the states {config.n_qubits} qubits can hold.
Draw two sets of parameters at random, compute how much the two states overlap (their fidelity |⟨ψ|φ⟩|²), repeat
many times, and compare the histogram of overlaps (75 bins) with that of Haar-random states, which are spread
as evenly as possible, by the Kullback–Leibler divergence.
- This circuit: **{expressibility_text(here["expressibility"])}**; Haar-random states: 0; {bare_expr}; the idle circuit (every
  state the same, the largest value possible): {here["idle"]:.1f}, that is (N − 1)·ln 75 with N = 2ⁿ = {n_states}
  (n = {config.n_qubits} qubits).

**Entangling capability** is the mean Meyer–Wallach measure Q of the circuit's states, Q = 2(1 − the mean
purity Tr ρ² of one qubit's own state): 0 when every qubit is on its own (a product state), 1 for a GHZ state.
- This circuit: **{here["q"]:.3f}**; Haar-random states of {config.n_qubits} qubits:
  (N − 2)/(N + 1) = {here["haar_q"]:.3f} with N = {n_states}; {bare_q}.
"""
)
st.plotly_chart(measures_chart(sweep, DEPTHS, config.depth, config.n_qubits), key="measures_chart")
st.caption(
    f"Estimated from {here['samples']:,} random states ({here['pairs']:,} overlaps), drawn as the model can reach "
    "them: every encoded angle uniform in (0, π), the range the backbone's features are mapped to, every trainable "
    "angle uniform over a full turn, as at initialisation; values below about 0.001 are as close to Haar-random as this many samples can tell. "
    "These are properties of the circuit alone, not of your trained model, whose angles come from the images and "
    "from training; and a more expressive or more entangling circuit is not thereby more accurate (very expressive "
    "circuits are also harder to train: Holmes et al., PRX Quantum 3, 010313, 2022). References: Sim, Johnson & "
    "Aspuru-Guzik, Adv. Quantum Technol. 2, 1900070 (2019), arXiv:1905.10876; Meyer & Wallach, J. Math. Phys. 43, "
    "4273 (2002); Brennen, Quantum Inf. Comput. 3, 619 (2003)."
)

st.subheader("Size of the model")
STAGE_NAMES = {
    "backbone": "backbone",
    "quantum": "quantum circuit",
    "classical_middle": "classical stand-in",
    "head": "head",
    "total": "total",
}
with user_errors():
    from hqcnn.data import get_info

    info = get_info(values["dataset"])
in_channels = 1 if values["grayscale"] else info.n_channels
counts = parameter_rows(config, in_channels, info.n_classes)

from hqcnn import plots  # noqa: E402
from hqcnn.references import RESNET18_PARAMS  # noqa: E402

left, right = st.columns([3, 2])
left.plotly_chart(plots.parameter_counts(counts), key="param_counts")
# A static table: five rows need no interactive grid, whose code the browser would load first.
right.table({name: {STAGE_NAMES[k]: f"{v:,}" for k, v in c.items()} for name, c in counts.items()})
right.caption(
    f"The classical twin swaps the circuit's {counts['hybrid']['quantum']} angles for a classical layer with "
    f"{counts['classical twin']['classical_middle']} weights, the nearest size such a layer can have. "
    f"For scale: a MedMNIST ResNet-18 has about {RESNET18_PARAMS / 1e6:.0f} million parameters."
)
if has_trained:
    trained_export(trained_hybrid, config)
st.page_link("pages/3_Train.py", label="Next: train it", icon="➡️")
