"""Explain: one image's prediction, which pixels drove it, and what each qubit measured."""

import streamlit as st

from hqcnn.markdown import md
from ui.common import dataset_title, ensure_dataset, user_errors
from ui.sidebar import render as render_sidebar
from ui.sidebar import session_may_use

st.set_page_config(page_title="Explain · HQCNN Explorer", page_icon="🔍", layout="wide")
st.title("Explain a prediction")
render_sidebar()

models = st.session_state.get("models") or {}
if not models:
    st.info("There is no model yet. Train one (about a minute) or load a saved one on the Train page.")
    st.page_link("pages/3_Train.py", label="Go to Train", icon="➡️")
    st.stop()

from collections import OrderedDict  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402

from hqcnn import explain, plots  # noqa: E402
from hqcnn.config import DataConfig  # noqa: E402
from hqcnn.decode_worker import UploadCache  # noqa: E402
from hqcnn.faithfulness import Faithfulness, faithfulness, randomised_middle, rank_correlation  # noqa: E402
from hqcnn.imageio import MAX_UPLOAD_BYTES  # noqa: E402
from hqcnn.posthoc import PostHoc  # noqa: E402
from hqcnn.posthoc import answer as read_answer  # noqa: E402
from ui.training import HYBRID, TWIN  # noqa: E402
from ui.uploads import file_uploader  # noqa: E402

BY_INDEX, BY_CLASS, WRONG, UPLOAD = (
    "test image by index",
    "test image by class",
    "misclassified test images",
    "upload my own image",
)
PREDICTED = "predicted"
CHOICES_KEY = "explain_choices"
CACHE_KEY = "_explain_cache"
ITEMS_KEY = "_explain_items"
MODELS_CACHED = 4  # models whose test-set pass and per-model figures a session keeps
ITEMS_CACHED = 40  # per-image results (figures, predictions) kept, for going back and forth
UPLOADS_KEY = "_explain_uploads"  # an UploadCache: the last few uploads' model inputs
BURNED_IN = (
    "This DICOM file says text is burned into its pixels: the image below may show the patient's name or "
    "other details. Check it before showing this page to others."
)
BURNED_IN_UNKNOWN = (
    "The file does not say whether text (such as the patient's name) is burned into its pixels: "
    "look before showing this page to others."
)
# Input values (images × channels × pixels) of a test split that the page runs the model on without
# being asked: well under a second here. PneumoniaMNIST is 0.5 M at 28 px, 10 M at 128 px.
PASS_WITHOUT_ASKING = 4_000_000
DEFAULTS: dict[str, Any] = {
    "model": None,
    "mode": BY_INDEX,
    "index": 0,
    "class": 0,
    "member": 0,
    "wrong": 0,
    "method": "saliency",
    "target": PREDICTED,  # or a class number: a fixed class stays fixed from image to image
    "bloch": False,  # the Bloch spheres' expander is open
    "randomised": False,  # the map of the model with its middle layer re-randomised is shown
    "signed": True,  # a signed method's map shows evidence for and against (else its magnitude)
    "compare": False,  # the hybrid's and the twin's maps side by side
}
# Fixed seeds: a rerun (a click elsewhere) shows the same random order and the same random layer.
RANDOM_ORDER_SEED = 0
RANDOMISED_SEED = 0
QUOTED_SHARE = 0.2  # the point of the deletion curve the text quotes: the top fifth of the pixels
# Faithfulness this far (points of probability) above or below the random order's counts as clearly
# better or worse: on one image smaller gaps come and go with the random order drawn.
CLEAR_MARGIN = 0.05
MIDDLE = {  # the layer a model kind has in the middle, and what re-randomising it replaces
    "hybrid": ("the circuit", "circuit's trained rotation angles"),
    "classical": ("the twin layer", "twin layer's trained weights"),
}


def _choices() -> dict[str, Any]:
    """The page's choices, kept apart from the widgets (whose state Streamlit drops in a run that does not draw them)."""
    return st.session_state.setdefault(CHOICES_KEY, dict(DEFAULTS))


def _bind(widget: Callable[..., Any], name: str, label: str, **kwargs: Any) -> Any:
    """Show `widget` for choice `name`, seeded from the stored choice and writing changes back to it.

    The widget is seeded on every run, not only when its state is missing: after a run that did
    not draw it (another image source, an upload) the browser draws it anew at its default while
    still reporting the old value, so only a value set from here keeps the menu, the map and its
    caption in agreement.
    """
    choices, key = _choices(), f"explain_{name}"
    st.session_state[key] = choices[name]

    def _store() -> None:
        choices[name] = st.session_state[key]

    return widget(label, key=key, on_change=_store, **kwargs)


def _clamp(name: str, count: int) -> None:
    """Keep a stored position inside 0..count-1 (another model's test set may be smaller)."""
    choices = _choices()
    choices[name] = min(max(int(choices[name]), 0), count - 1)


def _model_cache(key: str) -> dict[str, Any]:
    """This model's share of the session cache, by TrainedModel.key: unlike id(), it is never reused."""
    cache = st.session_state.setdefault(CACHE_KEY, OrderedDict())
    entry = cache.pop(key, None) or {}
    cache[key] = entry  # the most recently used model last; the oldest goes first
    while len(cache) > MODELS_CACHED:
        cache.popitem(last=False)
    return entry


def _memo(key: tuple, compute: Callable[[], Any]) -> Any:
    """compute(), kept for the session's last ITEMS_CACHED results (a figure is about 200 KB)."""
    items = st.session_state.setdefault(ITEMS_KEY, OrderedDict())
    if key in items:
        items.move_to_end(key)
    else:
        items[key] = compute()
        while len(items) > ITEMS_CACHED:
            items.popitem(last=False)
    return items[key]


@st.cache_resource(show_spinner="Preparing the test images…", max_entries=4)
def _test_split(cfg: DataConfig, mean: tuple[float, ...], std: tuple[float, ...]) -> explain.SplitImages:
    # Shared read-only by every session and model with this data: it holds the dataset's arrays
    # (already in memory) and, only when noise is added, the prepared split.
    return explain.SplitImages(cfg, mean, std)


def _test_pass(entry: dict[str, Any]) -> explain.SplitPass:
    """The model's pass over the whole test split, once per model, with a progress bar while it runs."""
    if "pass" not in entry:
        entry["pass"] = explain.SplitPass(model, split)
    run = entry["pass"]
    if not run.complete:
        text = f"Running the model on the {len(split)} test images (once per model)…"
        bar = st.progress(run.fraction, text=text)
        while not run.advance():  # a click stops this run between chunks; the next run carries on
            bar.progress(run.fraction, text=text)
        bar.empty()
    return run


def _pick(indices: np.ndarray, name: str, label: str) -> int:
    """One of `indices` (test images), by a slider over their positions."""
    if len(indices) == 1:
        st.caption(f"{label}: there is only one.")
        return int(indices[0])
    _clamp(name, len(indices))
    return int(indices[_bind(st.slider, name, label, min_value=0, max_value=len(indices) - 1)])


@st.cache_data(show_spinner=False, max_entries=8)
def _bloch_base(n_qubits: int) -> dict[str, Any]:
    """The Bloch figure of `n_qubits` as a dict: the same for every model and image but its arrows and titles."""
    return plots.bloch_spheres(np.zeros((n_qubits, 3))).to_dict()


def _bloch_figure(entry: dict[str, Any], vectors: np.ndarray) -> Any:
    """plots.bloch_spheres(vectors), in milliseconds instead of about half a second.

    Only the arrows and the spheres' titles depend on the image, so each model's figure is made
    once from the shared base and those are set on it (the chart is serialised when it is drawn).
    """
    if "bloch" not in entry:
        entry["bloch"] = go.Figure(_bloch_base(len(vectors)))
    figure = entry["bloch"]
    arrows = [trace for trace in figure.data if trace.name.endswith(" Bloch vector")]
    with figure.batch_update():
        for i, (arrow, (bx, by, bz)) in enumerate(zip(arrows, vectors.tolist(), strict=True)):
            length = float(np.linalg.norm(vectors[i]))
            arrow.update(
                x=[0, bx],
                y=[0, by],
                z=[0, bz],
                hovertemplate=f"q{i}<br>⟨X⟩ {bx:.3f}, ⟨Y⟩ {by:.3f}, ⟨Z⟩ {bz:.3f}<br>length {length:.3f}<extra></extra>",
            )
            note = "entangled" if length < 0.99 else "not entangled"
            figure.layout.annotations[i].text = f"q{i}: length {length:.2f}<br>{note}"
    return figure


choices = _choices()
if choices["model"] not in models:
    choices["model"] = next(iter(models))
name = _bind(st.radio, "model", "Model", options=list(models), horizontal=True) if len(models) > 1 else choices["model"]
trained = models[name]
meta, config, model = trained.meta, trained.config, trained.model
labels = list(meta.label_names)
# What reads the model's answers (calibration, threshold, unusual-image detector). A model made
# without one (in a test) reads as a file saved before it existed: T = 1, the 0.5 threshold, no check.
posthoc = trained.posthoc or PostHoc.neutral(meta.dataset, len(labels))
kind = config.model.kind
n_qubits = config.model.n_qubits
if kind == "hybrid":
    shape = f"{n_qubits} qubits, depth {config.model.depth}"
elif kind == "classical":
    shape = f"no qubits: a classical layer of {n_qubits} outputs stands in for the {n_qubits}-qubit circuit"
else:
    shape = "no middle stage: the backbone's features go straight to the classifier"
st.caption(
    f"{md(name)} model ({md(trained.source)}) for {md(dataset_title(meta.dataset))}: {shape}, "
    f"{meta.image_size}×{meta.image_size} px input."
)
entry = _model_cache(trained.key)

split = None
# A model may name images this session has no right to read (another session's upload): then only
# an image of the user's own is explained.
if session_may_use(config.data.dataset) and ensure_dataset(config.data.dataset, config.data.source_size):
    with user_errors(stop=False):
        split = _test_split(config.data, meta.mean, meta.std)
modes = [BY_INDEX, BY_CLASS, WRONG, UPLOAD] if split is not None and len(split) else [UPLOAD]
if choices["mode"] not in modes:
    choices["mode"] = modes[0]

st.subheader("Choose an image")
mode = _bind(st.radio, "mode", "Pick from", options=modes, horizontal=True)
if modes == [UPLOAD]:
    st.caption("This model's test images are not available here: explain an image of your own.")
index, true_label = None, None
if mode == BY_INDEX:
    _clamp("index", len(split))
    index = _bind(
        st.number_input, "index", f"Test image index (0–{len(split) - 1})", min_value=0, max_value=len(split) - 1
    )
elif mode == BY_CLASS:
    _clamp("class", len(labels))
    cls = _bind(st.selectbox, "class", "Class", options=range(len(labels)), format_func=lambda i: labels[i])
    members = np.flatnonzero(split.labels == cls)
    if len(members) == 0:
        st.info(f"The test split has no image of class {md(labels[cls])}.")
        st.stop()
    index = _pick(members, "member", f"Which one ({len(members)} test images of this class)")
elif mode == WRONG:
    with user_errors():
        wrong = _test_pass(entry).misclassified_under(posthoc)  # the class called, by the threshold in use
    if len(wrong) == 0:
        st.success("The model classifies every test image correctly.")
        st.stop()
    index = _pick(wrong, "wrong", f"Misclassified image ({len(wrong)} of {len(split)})")
else:
    upload = file_uploader(
        "PNG, JPEG or DICOM image",
        type=["png", "jpg", "jpeg", "dcm", "dicom"],
        key="explain_upload",
        max_mb=MAX_UPLOAD_BYTES // 2**20,  # refused by the browser before it is sent, and by the server
    )
    if upload is None:
        st.info(
            "Upload an image (PNG, JPEG, or a DICOM file: its first frame, as a viewer shows it) to classify it. "
            "It is converted to the model's input size and colour mode."
        )
        st.stop()
    uploads = st.session_state.setdefault(UPLOADS_KEY, UploadCache())
    with user_errors():
        # Decoded once per file, in a worker process under memory and time limits; a rerun finds it here.
        digest, x, facts = uploads.model_input(upload.getvalue(), meta, config.data)
    image_id = ("upload", digest)
    about = f"your image '{md(upload.name)}'"
    if facts is not None:
        window = " · its display window applied" if facts["windowed"] else ""
        st.caption(
            f"DICOM · modality {md(facts['modality'] or 'not given')} · {facts['rows']} × {facts['columns']} "
            f"pixels (rows × columns) · {facts['bits_stored']}-bit{window}. {md(facts['note'])}".rstrip()
        )
        st.caption("The file stays in this browser session; its patient details are never shown or stored.")
        if facts["burned_in"] == "yes":
            # Still shown: the picture is the user's own file, at the model's small size, and the maps
            # below are drawn on it; the warning says what to check before showing it to others.
            st.warning(BURNED_IN, icon="⚠️")
        elif facts["burned_in"] == "unknown":
            st.caption(BURNED_IN_UNKNOWN)

if index is not None:
    with user_errors():
        x = split.image(index)
    true_label = int(split.labels[index])
    image_id = (meta.dataset, "test", index)
    about = f"true class: {md(labels[true_label])}"


def _display() -> np.ndarray:
    """The model input as an image again: (H, W) or (H, W, 3) in 0..1."""
    shown = x[0].permute(1, 2, 0).numpy()
    if config.data.normalize:
        shown = shown * np.array(meta.std) + np.array(meta.mean)
    shown = np.clip(shown, 0, 1)
    return shown[..., 0] if shown.shape[-1] == 1 else shown


def _reading(p: PostHoc) -> tuple:
    """What of a PostHoc changes an answer, for cache keys: the Train page moves the threshold in place."""
    return (p.temperature, p.positive, p.threshold, p.ood.threshold if p.ood else None)


def _probabilities_figure(probs: np.ndarray, called: int, p: PostHoc) -> go.Figure:
    """The bars of the probabilities shown, saying whether they are calibrated."""
    if explain.is_calibrated(p):
        return plots.class_probabilities(
            probs,
            labels,
            called,
            "Calibrated probability of each class",
            f"calibrated probability (T = {p.temperature:.2f})",
        )
    return plots.class_probabilities(
        probs, labels, called, "Probability of each class (not calibrated)", "probability (not calibrated)"
    )


reading = _reading(posthoc)
with user_errors():
    display = _memo((trained.key, "display", image_id), _display)
    prediction = _memo((trained.key, "prediction", image_id), lambda: explain.predict_one(model, x))
    # Calibrated probabilities, the class called (by the threshold, for a binary task), unusualness.
    said = _memo((trained.key, "answer", image_id, reading), lambda: read_answer(model, posthoc, x))
    predicted = int(said.predicted[0])
    probabilities = _memo(
        (trained.key, "probabilities", image_id, reading),
        lambda: _probabilities_figure(said.probabilities[0], predicted, posthoc),
    )
# Is the image like the training images? Said before the prediction, which may mean nothing if not.
if posthoc.ood is None:
    st.info(explain.NO_OOD_CHECK, icon="ℹ️")
else:
    if said.unusual[0]:
        image = "This test image" if index is not None else "This image"
        st.warning(explain.ood_warning(meta.dataset, dataset_title(meta.dataset), posthoc.ood, image), icon="⚠️")
    st.caption(explain.ood_caption(float(said.ood_score[0]), posthoc.ood))
left, right = st.columns([1, 2])
left.image(display, caption=f"Model input · {about}", clamp=True, width="stretch")
right.plotly_chart(probabilities, key="probabilities")
right.caption(
    f"Predicted: **{md(labels[predicted])}** with {'calibrated ' if explain.is_calibrated(posthoc) else ''}probability "
    f"{md(explain.probability_text(said.probabilities[0][predicted]))}"
    + (f" (true: {md(labels[true_label])})" if true_label is not None else "")
    + ". Probabilities from a small research model: not a diagnosis."
)
right.caption(f"Probabilities: {explain.calibration_text(posthoc)}. {explain.decision_text(posthoc, labels)}")


def _number(value: float) -> str:
    """A score to two decimals with a true minus sign, and never "−0.00"."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text.replace("-", "−")


def _faithfulness_text(f: Faithfulness, class_name: str, calibrated: bool = False) -> str:
    """One map's faithfulness for this image, in words, with the random order beside every number.

    The measures use the model's softmax as it is (as the interpretability study does): for a
    calibrated model the text says so, since the probability above it is the calibrated one.
    """
    k = min(range(len(f.fractions)), key=lambda i: abs(f.fractions[i] - QUOTED_SHARE))
    share, name, p = f"{100 * f.fractions[k]:.0f} %", md(class_name), explain.probability_text
    margin = f.faithfulness - f.random_faithfulness
    verdict = (
        "better than a random order" if margin > CLEAR_MARGIN
        else "worse than a random order" if margin < -CLEAR_MARGIN
        else "about as well as a random order"
    )  # fmt: skip
    return (
        f"**How faithful is this map for this image?** It ranks the pixels {verdict}. "
        f"Deleting the {share} of pixels this map ranks highest (setting them to the average training image) "
        f"takes the {'uncalibrated ' if calibrated else ''}probability of '{name}' "
        f"from {md(p(f.deletion_curve[0]))} to {md(p(f.deletion_curve[k]))}; "
        f"deleting a random {share}: to {md(p(f.random_deletion_curve[k]))}. "
        f"Deleting all the pixels step by step in the map's order, the probability averages {_number(f.deletion)} "
        f"(area under the deletion curve; random order: {_number(f.random_deletion)}; lower is better). "
        f"Adding them back to the average image in the map's order, it averages {_number(f.insertion)} "
        f"(insertion area; random order: {_number(f.random_insertion)}; higher is better). "
        f"**Faithfulness** (insertion − deletion area): **{_number(f.faithfulness)}**, against "
        f"{_number(f.random_faithfulness)} for a random order; higher is more faithful."
        + (
            " These measures read the model's probabilities before temperature scaling (as the interpretability "
            "study does), so they start from another number than the calibrated probability above."
            if calibrated
            else ""
        )
    )


def _curves_figure(f: Faithfulness, class_name: str, calibrated: bool = False) -> go.Figure:
    """The deletion and insertion curves behind the faithfulness figure, each beside its random order."""
    share = [100 * v for v in f.fractions]
    fig = go.Figure()
    for label, curve, colour, dash, symbol in (
        ("deleted, this map's order", f.deletion_curve, plots.OKABE_ITO[3], "solid", "circle"),
        ("deleted, random order", f.random_deletion_curve, plots.OKABE_ITO[3], "dash", "circle-open"),
        ("inserted, this map's order", f.insertion_curve, plots.OKABE_ITO[0], "solid", "triangle-up"),
        ("inserted, random order", f.random_insertion_curve, plots.OKABE_ITO[0], "dash", "triangle-up-open"),
    ):
        fig.add_trace(
            go.Scatter(
                x=share,
                y=list(curve),
                name=label,
                mode="lines+markers",
                line={"color": colour, "dash": dash},  # dashes and markers, not colour alone, tell them apart
                marker={"symbol": symbol, "size": 7},
                hovertemplate=f"{label}<br>%{{x:.0f}} % of pixels: probability %{{y:.3f}}<extra></extra>",
            )
        )
    fig.update_yaxes(range=[0, 1.02])
    fig.update_layout(
        height=500,
        legend={"orientation": "h", "xref": "container", "x": 0, "yref": "container", "y": 0, "yanchor": "bottom"},
    )
    plots.apply_style(
        fig,
        "Pixels deleted or inserted<br>in this map's order",
        "share of pixels deleted or inserted (%)",
        f"{'uncalibrated ' if calibrated else ''}probability of '{plots.plain([class_name])[0]}'",
    )
    fig.update_layout(margin={"b": 130})  # room for the legend under the axis title
    return fig


def _randomised_text(rho: float) -> str:
    """What the map of the re-randomised copy says, in words."""
    layer, weights = MIDDLE[kind]
    if np.isnan(rho):
        number = (
            "The rank correlation between the two maps cannot be computed: one of them is the same value "
            "everywhere (nothing stands out)."
        )
    else:
        number = (
            f"Spearman rank correlation between the two maps: **{_number(rho)}** (1: the same pixels in the same "
            "order of importance; 0: unrelated; −1: the opposite order)."
        )
    return (
        f"**Does the map depend on {layer}?** The map in the middle is the same method's, for a copy of this "
        f"model whose {weights} were replaced by random values; everything else is kept (a fixed seed, so it "
        "stays the same from run to run). "
        f"{number} If the two maps look alike (a correlation near 1), the map does not depend on {layer}: "
        f"it would look the same whatever {layer} had learned."
    )


def _randomised_model() -> Any:
    """This model with its middle layer re-randomised, made once per model."""
    if "randomised" not in entry:
        entry["randomised"] = randomised_middle(model, RANDOMISED_SEED)
    return entry["randomised"]


def _maps(m: Any, x: Any, image_id: tuple, method: str, target: int) -> dict[str, np.ndarray]:
    """Model `m`'s attribution of `method` for class `target`: its magnitude (H, W) and signed sum (H, W)."""

    def compute() -> dict[str, np.ndarray]:
        raw = explain.attribute(m.model, x, target, method, raw=True)
        return {"magnitude": explain.magnitude(raw), "evidence": explain.evidence(raw)}

    return _memo((m.key, "maps", image_id, method, target), compute)


def _view_text(spec: explain.AttributionMethod, signed: bool, class_name: str) -> str:
    """How to read the map's colours."""
    if signed:
        return (
            f"Red: these pixels raise the score of '{md(class_name)}' (evidence for it); blue: they lower it "
            "(evidence against it); clear: neither. ±1 is the map's 99th percentile of strength."
        )
    if spec.signed:
        return "How much each pixel mattered, for or against the class alike (switch on the signed view to tell them apart)."
    return f"{md(spec.label)} has no direction here: bright pixels mattered, for or against the class alike."


def _twin_pair() -> tuple[Any, Any] | str | None:
    """(hybrid, twin) of this session when the model shown is one of them and one image suits both;
    a sentence saying why not when they cannot be compared; None without the pair."""
    if name not in (HYBRID, TWIN) or not {HYBRID, TWIN} <= set(models):
        return None
    hybrid, twin = models[HYBRID], models[TWIN]
    same_input = (
        hybrid.config.data == twin.config.data
        and hybrid.meta.image_size == twin.meta.image_size
        and hybrid.meta.in_channels == twin.meta.in_channels
        and tuple(hybrid.meta.mean) == tuple(twin.meta.mean)
        and tuple(hybrid.meta.std) == tuple(twin.meta.std)
        and tuple(hybrid.meta.label_names) == tuple(twin.meta.label_names)
    )
    if not same_input:
        return (
            "The hybrid and the classical twin of this session were trained on different data or image sizes, "
            "so they cannot be shown the same image side by side."
        )
    return hybrid, twin


def _side_by_side(
    pair: tuple[Any, Any], x: Any, image_id: tuple, method: str, target: int, signed: bool, overlay: Callable
) -> None:
    """The hybrid's and the twin's maps of one image, on one colour scale, each with its own answer."""
    spec, class_name = explain.ATTRIBUTIONS[method], labels[target]
    found = [_maps(m, x, image_id, method, target) for m in pair]
    part = "evidence" if signed else "magnitude"
    # One scale for both: the larger of the two maps' 99th percentiles (the scores' own units, the
    # same for both models), so the weaker map looks weaker instead of being stretched to full colour.
    scale = max(explain.map_scale(f[part]) for f in found)
    st.markdown(
        f"**The hybrid and its classical twin, side by side:** {md(spec.label)} for '{md(class_name)}' on the "
        "same image, on one colour scale (the stronger map's 99th percentile is full colour), so the two "
        "can be compared."
    )
    columns = st.columns(2)
    keys = tuple(m.key for m in pair)
    for column, which, m, maps in zip(columns, (HYBRID, TWIN), pair, found, strict=True):
        heading = f"{which.capitalize()}:<br>{spec.label} for '{plots.plain([class_name])[0]}'"
        column.plotly_chart(
            _memo(
                (*keys, "compare", which, image_id, method, target, signed),
                lambda maps=maps, heading=heading: overlay(maps, heading, scale),
            ),
            key=f"compare_{'hybrid' if which == HYBRID else 'twin'}",
        )
        reader = m.posthoc or PostHoc.neutral(m.meta.dataset, len(labels))
        said = _memo(
            (m.key, "answer", image_id, _reading(reader)), lambda m=m, reader=reader: read_answer(m.model, reader, x)
        )
        called = int(said.predicted[0])
        word = "calibrated probability" if explain.is_calibrated(reader) else "probability (not calibrated)"
        column.caption(
            f"{which.capitalize()}: {word} of '{md(class_name)}' "
            f"{md(explain.probability_text(said.probabilities[0][target]))}; it calls this image "
            f"**{md(labels[called])}**."
            + (
                " This image is unusual for this model (its unusual-image check flags it)."
                if said.unusual is not None and said.unusual[0]
                else ""
            )
        )


@st.fragment
def attribution_panel(x: Any, display: np.ndarray, image_id: tuple, predicted: int) -> None:
    """Reruns on its own when the method or the class changes: the rest of the page stays as it is."""
    choices = _choices()
    if choices["method"] not in explain.ATTRIBUTIONS:
        choices["method"] = DEFAULTS["method"]
    method = _bind(
        st.selectbox,
        "method",
        "Attribution method",
        options=list(explain.ATTRIBUTIONS),
        format_func=lambda k: explain.ATTRIBUTIONS[k].label,
    )
    if choices["target"] != PREDICTED and choices["target"] not in range(len(labels)):
        choices["target"] = PREDICTED
    target = _bind(
        st.selectbox,
        "target",
        "Explain the score of class",
        options=[PREDICTED, *range(len(labels))],
        format_func=lambda k: f"the predicted class ({labels[predicted]})" if k == PREDICTED else labels[k],
    )
    target = predicted if target == PREDICTED else int(target)
    randomise = kind in MIDDLE and _bind(
        st.toggle,
        "randomised",
        f"Show the map after re-randomising {MIDDLE[kind][0]}",
        help="A sanity check: a map that does not change when this layer is random does not depend on it.",
    )
    spec = explain.ATTRIBUTIONS[method]
    signed = spec.signed and _bind(
        st.toggle,
        "signed",
        "Show evidence for and against the class (signed)",
        help="On: red where pixels raise the class's score (evidence for it), blue where they lower it "
        "(evidence against it). Off: how much each pixel mattered, either way.",
    )
    pair = _twin_pair()
    compare = isinstance(pair, tuple) and _bind(
        st.toggle,
        "compare",
        f"Compare with the {TWIN if name == HYBRID else HYBRID}: the same image and method side by side",
        help="Both maps on one colour scale, each model with its own calibrated probability.",
    )
    if isinstance(pair, str):
        st.caption(pair)
    class_name = labels[target]
    title = f"{spec.label} for '{plots.plain([class_name])[0]}'"
    calibrated = explain.is_calibrated(posthoc)

    def overlay(found: dict[str, np.ndarray], heading: str, scale: float | None = None) -> go.Figure:
        """The signed map (evidence for / against) or its magnitude, scaled by `scale` or its own."""
        if signed:
            return plots.evidence_overlay(
                display, explain.normalise_signed(found["evidence"], scale), heading, class_name
            )
        return plots.saliency_overlay(display, explain.normalise_map(found["magnitude"], scale), heading)

    def explained() -> dict[str, Any]:
        found = _maps(trained, x, image_id, method, target)
        # Faithfulness ranks pixels by the magnitude, whichever view is shown.
        measured = faithfulness(model, x, found["magnitude"], target, RANDOM_ORDER_SEED)
        return {"faithfulness": measured, "curves": _curves_figure(measured, class_name, calibrated)}

    def randomised() -> dict[str, Any]:
        again = explain.attribute(_randomised_model(), x, target, method, raw=True)
        real = _maps(trained, x, image_id, method, target)["magnitude"]
        found = {"magnitude": explain.magnitude(again), "evidence": explain.evidence(again)}
        return {**found, "rho": rank_correlation(real, found["magnitude"])}

    with user_errors(stop=False), st.spinner(f"Computing {spec.label}…"):
        found = _maps(trained, x, image_id, method, target)
        shown = _memo((trained.key, "attribution", image_id, method, target, calibrated), explained)
        columns = st.columns(3 if randomise else 2)
        columns[0].plotly_chart(
            _memo((trained.key, "overlay", image_id, method, target, signed), lambda: overlay(found, title)),
            key="saliency",
        )
        columns[0].caption(spec.description)
        columns[0].caption(_view_text(spec, signed, class_name))
        if randomise:
            with columns[1], user_errors(stop=False), st.spinner(f"Re-randomising {MIDDLE[kind][0]}…"):
                again = _memo((trained.key, "randomised", image_id, method, target), randomised)
                heading = f"After re-randomising {MIDDLE[kind][0]}:<br>{title}"
                st.plotly_chart(
                    _memo(
                        (trained.key, "randomised_overlay", image_id, method, target, signed),
                        lambda: overlay(again, heading),
                    ),
                    key="saliency_randomised",
                )
                st.markdown(_randomised_text(again["rho"]))
        columns[-1].plotly_chart(shown["curves"], key="faithfulness_curves")
        st.markdown(_faithfulness_text(shown["faithfulness"], class_name, calibrated))
        st.caption(
            "A single-image figure: one image and one random pixel order, so it can be off either way. "
            "The interpretability study on the Experiments page measures faithfulness (and the re-randomising "
            "check) over many test images and trainings."
        )
        st.page_link("pages/5_Experiments.py", label="Experiments: the interpretability study", icon="➡️")
    if compare:
        with user_errors(stop=False), st.spinner(f"Computing {spec.label} for both models…"):
            _side_by_side(pair, x, image_id, method, target, signed, overlay)


st.subheader("Which pixels mattered?")
attribution_panel(x, display, image_id, predicted)

if kind != "hybrid":
    hybrid_too = any(m.config.model.kind == "hybrid" for m in models.values())
    st.info(
        "This model has no qubits, so there are no ⟨Z⟩ read-outs, per-class read-outs or Bloch spheres to show"
        + (
            f": a classical layer of {n_qubits} outputs (tanh, from −1 to 1 like ⟨Z⟩) takes the circuit's place."
            if kind == "classical"
            else ": its backbone's features go straight to the classifier."
        )
        + " The pixel attributions above work the same way for every model."
        + (" Choose the hybrid model above to see its qubits." if hybrid_too else "")
    )
    st.stop()

st.subheader("What the qubits measured")
q1, q2 = st.columns(2)
with user_errors(stop=False):
    q1.plotly_chart(
        _memo((trained.key, "bars", image_id), lambda: plots.qubit_bars(prediction.readout)), key="qubit_bars"
    )
q1.caption(
    "⟨Z⟩ of each qubit: the numbers the classifier head reads to decide the class. "
    "+1 = the qubit is always measured 0 (|0⟩); −1 = always measured 1 (|1⟩); 0 = either, equally often."
    + (
        " This model's head also reads ⟨Z_i Z_j⟩ of every pair of qubits (read-out zz); those are not shown here."
        if model.cfg.readout == "zz"
        else ""
    )
)
distributions = q2.empty()  # filled last: the first time, it needs the whole test set
q2.caption("Qubits whose boxes separate the classes are the ones the classifier head relies on.")
# Closed until opened, and then drawn only while open: four 3-D scenes take a browser without
# graphics acceleration (a school laptop, a remote desktop) many seconds to draw at every image.
bloch = _bind(st.expander, "bloch", "Each qubit's Bloch sphere (3-D)")
with bloch:
    if bloch.open:
        with user_errors(stop=False):
            vectors = _memo((trained.key, "bloch", image_id), lambda: explain.bloch_vectors(model, x))
            st.plotly_chart(_bloch_figure(entry, vectors), key="bloch")
        st.caption(
            "Each arrow is one qubit's state. An arrow shorter than the sphere's radius means the qubit is "
            "entangled with the others: its state cannot be described on its own."
        )
if split is None or not len(split):
    distributions.info("The read-outs per class need the model's test images, which are not available here.")
else:
    with distributions.container(), user_errors(stop=False):
        started = "pass" in entry or entry.get("pass_wanted")
        if "distributions" not in entry and (started or len(split) * split.values_per_image <= PASS_WITHOUT_ASKING):
            entry["distributions"] = plots.qubit_distributions(_test_pass(entry).readouts, split.labels, labels)
        if "distributions" in entry:
            st.plotly_chart(entry["distributions"], key="qubit_distributions")
        else:  # large images: a pass over the whole test set takes seconds, so it waits to be asked for
            st.button(
                f"Show each qubit's ⟨Z⟩ per class over the {len(split)} test images",
                key="explain_run_pass",
                on_click=lambda: entry.update(pass_wanted=True),
            )
