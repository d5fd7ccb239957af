"""The Explain page read by a clinician: a warning for images unlike the training data before the
prediction, calibrated probabilities labelled as such, the decision threshold in use, signed maps
(evidence for / against), the hybrid and its twin side by side, and an old model file said to be
neither calibrated nor checked.

The models are trained on 200 PneumoniaMNIST images per class for 8 epochs (a few seconds): the
2-epoch models of the other page tests have learned too little for their temperature and their
out-of-distribution detector to mean much (the temperature hits its upper bound of 20).
"""

from __future__ import annotations

import base64
import io
import json
import re
import secrets
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from scipy import stats
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Warning

from hqcnn import explain
from hqcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from hqcnn.data import load_arrays, prepare, prepare_split
from hqcnn.faithfulness import faithfulness
from hqcnn.imageio import image_to_model_input
from hqcnn.markdown import md
from hqcnn.posthoc import FALSE_ALARM_RATE, PostHoc, answer
from hqcnn.train import run
from tests.test_explain_page import assert_clean, open_explain
from ui.training import HYBRID, TWIN, TrainedModel

UNUSUAL = "does not look like the images the model was trained on"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(kind: str) -> RunConfig:
    return RunConfig(
        data=DataConfig(dataset="pneumoniamnist", train_per_class=200),
        model=ModelConfig(kind=kind),
        train=TrainConfig(epochs=8, batch_size=32, seed=0),
    )


@pytest.fixture(scope="module")
def data():
    return prepare(_config("hybrid").data)


@pytest.fixture(scope="module")
def hybrid(data) -> TrainedModel:
    return TrainedModel.from_outcome(run(_config("hybrid"), data=data, posthoc=True))


@pytest.fixture(scope="module")
def twin(data) -> TrainedModel:
    return TrainedModel.from_outcome(run(_config("classical"), data=data, posthoc=True))


def copy_of(trained: TrainedModel, **changes) -> TrainedModel:
    """A TrainedModel of its own (own cache key), so a test may change its posthoc freely."""
    return replace(trained, key=secrets.token_hex(8), **changes)


@pytest.fixture(scope="module")
def test_x(hybrid) -> torch.Tensor:
    return prepare_split(hybrid.config.data, "test", hybrid.meta.mean, hybrid.meta.std)[0]


@pytest.fixture(scope="module")
def test_answer(hybrid, test_x):
    return answer(hybrid.model, hybrid.posthoc, test_x)


# --- helpers -------------------------------------------------------------------------------------


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def ellipse_png(size: int = 64) -> bytes:
    """A white ellipse on black: nothing like a chest X-ray."""
    image = Image.new("L", (size, size), 0)
    ImageDraw.Draw(image).ellipse((0.2 * size, 0.3 * size, 0.8 * size, 0.7 * size), fill=255)
    return png(np.asarray(image))


def upload(at: AppTest, name: str, blob: bytes) -> None:
    at.radio(key="explain_mode").set_value("upload my own image").run()
    at.file_uploader(key="explain_upload").set_value((name, blob, "image/png")).run()
    assert_clean(at)


def specs(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def chart(at: AppTest, title: str) -> dict:
    (spec,) = [s for s in specs(at) if s["layout"]["title"]["text"] == title]
    return spec


def probabilities_chart(at: AppTest) -> dict:
    (spec,) = [s for s in specs(at) if "probability of each class" in s["layout"]["title"]["text"].lower()]
    return spec


def prediction_caption(at: AppTest) -> str:
    (caption,) = [c.value for c in at.caption if c.value.startswith("Predicted")]
    return caption


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def in_page_order(at: AppTest) -> list:
    """Every element of the page, top to bottom (columns left to right)."""
    out = []

    def walk(node) -> None:
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for key in sorted(children):
                walk(children[key])
        else:
            out.append(node)

    walk(at.main)
    return out


def decoded(values: list | dict) -> np.ndarray:
    """An array of a figure's JSON: a list, or plotly's packed form {"dtype", "bdata", "shape"}."""
    if not isinstance(values, dict):
        return np.asarray(values, dtype=float)
    flat = np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
    shape = [int(n) for n in str(values.get("shape", len(flat))).split(",")]
    return flat.reshape(shape).astype(float)


def bar_values(spec: dict) -> np.ndarray:
    """The plotted bar lengths of the probability chart."""
    return decoded(spec["data"][0]["x"])


def heat_values(trace: dict) -> np.ndarray:
    return decoded(trace["z"])


def heatmap(spec: dict) -> dict:
    """The attribution trace of an overlay (the image is the first trace)."""
    return spec["data"][1]


# --- the unusual-image warning -------------------------------------------------------------------


def test_an_ellipse_is_flagged_and_the_warning_comes_before_the_prediction(hybrid):
    x = image_to_model_input(ellipse_png(), hybrid.meta, hybrid.config.data)
    said = answer(hybrid.model, hybrid.posthoc, x)
    assert said.unusual[0], "the detector must flag a white ellipse on black"
    at = open_explain({HYBRID: hybrid})
    upload(at, "ellipse.png", ellipse_png())

    (warning,) = at.warning
    assert UNUSUAL in warning.value and "PneumoniaMNIST chest X-rays" in warning.value
    assert "farther from them than 95 % of the validation images" in warning.value
    assert "The prediction below may mean nothing." in warning.value
    detector = hybrid.posthoc.ood
    (caption,) = [c for c in captions(at) if c.startswith("Unusualness")]
    assert f"Unusualness {said.ood_score[0]:.1f}" in caption and f"images above {detector.threshold:.1f}" in caption
    assert "about 5 % of images like the training data are flagged by mistake" in caption

    # Before the probabilities: the warning, then the chart and the prediction's caption.
    order = in_page_order(at)
    values = [str(getattr(node, "value", "")) for node in order]
    first_warning = next(i for i, node in enumerate(order) if isinstance(node, Warning) and UNUSUAL in values[i])
    first_chart = next(i for i, node in enumerate(order) if node.type == "plotly_chart")
    first_prediction = next(i for i, value in enumerate(values) if value.startswith("Predicted"))
    assert first_warning < first_chart and first_warning < first_prediction


def test_a_real_test_image_uploaded_is_not_flagged(hybrid, test_answer):
    ordinary = np.flatnonzero(~test_answer.unusual)[:2]
    at = open_explain({HYBRID: hybrid})
    raw_test_images = load_arrays("pneumoniamnist")["test"][0]
    for index in ordinary:
        upload(at, f"test {index}.png", png(raw_test_images[index]))
        assert not at.warning
        (caption,) = [c for c in captions(at) if c.startswith("Unusualness")]
        assert caption.startswith(f"Unusualness {test_answer.ood_score[index]:.1f} (")


def test_test_images_are_checked_too(hybrid, test_answer):
    flagged, ordinary = np.flatnonzero(test_answer.unusual), np.flatnonzero(~test_answer.unusual)
    at = open_explain({HYBRID: hybrid})
    at.number_input(key="explain_index").set_value(int(ordinary[0])).run()
    assert not at.warning and any(c.startswith("Unusualness") for c in captions(at))
    at.number_input(key="explain_index").set_value(int(flagged[0])).run()
    (warning,) = at.warning
    assert warning.value.startswith(f"**This test image {UNUSUAL}")


def test_the_flagged_share_of_test_images_is_near_the_stated_rate(hybrid, test_answer):
    detector = hybrid.posthoc.ood
    assert detector.rate == FALSE_ALARM_RATE
    assert abs(detector.val_rate - detector.rate) < 0.01  # the threshold is the validation quantile
    # PneumoniaMNIST's test split is not its validation split: the rate holds only roughly there, so
    # the tolerance is a 99.9 % binomial interval for 300 images drawn at the stated rate.
    n = 300
    flagged = int(test_answer.unusual[:n].sum())
    low, high = stats.binom.interval(0.999, n, detector.rate)
    assert low <= flagged <= high, f"{flagged} of {n} test images flagged; expected {low:.0f}–{high:.0f}"


def test_the_detector_flags_other_kinds_of_images(hybrid):
    """BreastMNIST ultrasound images shown to the PneumoniaMNIST model: most are flagged."""
    images = load_arrays("breastmnist")["test"][0][:100]
    x = torch.cat([image_to_model_input(png(image), hybrid.meta, hybrid.config.data) for image in images])
    share = answer(hybrid.model, hybrid.posthoc, x).unusual.mean()
    assert share > 0.5, share


# --- calibrated probabilities and the threshold --------------------------------------------------


def test_the_probabilities_shown_are_the_calibrated_ones(hybrid, test_x, test_answer):
    posthoc = hybrid.posthoc
    assert posthoc.temperature != 1.0
    at = open_explain({HYBRID: hybrid})
    for index in (0, 3, 11):
        at.number_input(key="explain_index").set_value(index).run()
        assert_clean(at)
        calibrated = test_answer.probabilities[index]
        raw = explain.predict_one(hybrid.model, test_x[index : index + 1]).probabilities
        assert not np.allclose(raw, calibrated, atol=1e-3)  # calibration changes what is shown
        spec = probabilities_chart(at)
        np.testing.assert_allclose(bar_values(spec), calibrated, atol=1e-6)  # one image vs. a batch: float32 noise
        assert spec["layout"]["title"]["text"] == "Calibrated probability of each class"
        assert spec["layout"]["xaxis"]["title"]["text"] == f"calibrated probability (T = {posthoc.temperature:.2f})"
        called = int(test_answer.predicted[index])
        name = hybrid.meta.label_names[called]
        assert prediction_caption(at).startswith(
            f"Predicted: **{md(name)}** with calibrated probability {md(explain.probability_text(calibrated[called]))}"
        )
        assert any(
            f"calibrated probability (temperature T = {posthoc.temperature:.2f}, fitted on the validation split)" in c
            for c in captions(at)
        )
        # The faithfulness figures read the softmax before scaling, and say so.
        (faithful,) = [m.value for m in at.markdown if m.value.startswith("**How faithful")]
        assert "takes the uncalibrated probability of" in faithful and "before temperature scaling" in faithful
        positive = hybrid.meta.label_names[posthoc.positive]
        assert any(
            f"Called **{md(positive)}** when its calibrated probability is at least 0.50" in c
            and "set on the Train page" in c
            for c in captions(at)
        )


def test_the_threshold_decides_the_class_shown(hybrid, test_answer):
    posthoc = hybrid.posthoc
    positive, other = posthoc.positive, 1 - posthoc.positive
    p_positive = test_answer.probabilities[:, positive]
    # An image called positive at 0.5 that a threshold of 0.99 calls the other class.
    (candidates,) = np.nonzero((p_positive >= 0.5) & (p_positive < 0.99))
    index = int(candidates[0])
    names = hybrid.meta.label_names
    mine = copy_of(hybrid)
    at = open_explain({HYBRID: mine})
    at.number_input(key="explain_index").set_value(index).run()
    assert prediction_caption(at).startswith(f"Predicted: **{md(names[positive])}**")

    mine.posthoc = mine.posthoc.with_threshold(0.99)  # what the Train page's slider does
    at.run()
    assert_clean(at)
    assert prediction_caption(at).startswith(f"Predicted: **{md(names[other])}** with calibrated probability")
    assert any(
        f"Called **{md(names[positive])}** when its calibrated probability is at least 0.99" in c for c in captions(at)
    )
    bars = probabilities_chart(at)["data"][0]
    assert "(predicted)" in bars["text"][other] and "(predicted)" not in bars["text"][positive]
    # The map explains the class called, by default.
    assert any(s["layout"]["title"]["text"] == f"Saliency for '{names[other]}'" for s in specs(at))

    # The misclassified images are those the threshold calls wrongly.
    at.radio(key="explain_mode").set_value("misclassified test images").run()
    assert_clean(at)
    labels = load_arrays("pneumoniamnist")["test"][1].reshape(-1)
    expected = int((mine.posthoc.decide(test_answer.probabilities) != labels).sum())
    assert f"({expected} of {len(labels)})" in at.slider(key="explain_wrong").label


# --- signed maps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
def test_a_signed_map_shows_evidence_for_and_against(hybrid, test_x, test_answer, method):
    at = open_explain({HYBRID: hybrid})
    at.number_input(key="explain_index").set_value(2).run()
    at.selectbox(key="explain_method").set_value(method).run()
    assert_clean(at)
    target = int(test_answer.predicted[2])
    name = hybrid.meta.label_names[target]
    spec = explain.ATTRIBUTIONS[method]
    title = f"{spec.label} for '{name}'"
    trace = heatmap(chart(at, title))
    z = heat_values(trace)
    assert z.min() < 0 < z.max()
    assert trace["zmin"] == -1 and trace["zmax"] == 1 and trace["zmid"] == 0
    assert trace["colorbar"]["title"]["text"] == f"evidence for / against '{name}'"
    scale = trace["colorscale"]

    def rgb(stop: list) -> tuple[int, ...]:
        return tuple(int(v) for v in re.findall(r"[\d.]+", stop[1])[:3])

    (r0, _, b0), (r1, _, b1) = rgb(scale[0]), rgb(scale[-1])
    assert b0 > r0 and r1 > b1  # against = blue at the low end, for = red at the high end
    assert scale[len(scale) // 2][1].endswith(",0.00)")  # no evidence: transparent
    raw = explain.attribute(hybrid.model, test_x[2:3], target, method, raw=True)
    np.testing.assert_allclose(z, explain.normalise_signed(explain.evidence(raw)), atol=1e-5)
    faithful = [m.value for m in at.markdown if m.value.startswith("**How faithful")]

    # The unsigned view stays available, and faithfulness does not depend on the view.
    at.toggle(key="explain_signed").set_value(False).run()
    assert_clean(at)
    trace = heatmap(chart(at, title))
    assert trace["colorbar"]["title"]["text"] == "relevance (0–1)" and heat_values(trace).min() >= 0
    assert [m.value for m in at.markdown if m.value.startswith("**How faithful")] == faithful
    expected = faithfulness(
        hybrid.model, test_x[2:3], explain.attribute(hybrid.model, test_x[2:3], target, method), target, 0
    )
    assert f"**{expected.faithfulness:.2f}**".replace("-", "−") in faithful[0]


def test_unsigned_methods_have_no_signed_toggle(hybrid):
    at = open_explain({HYBRID: hybrid})
    for method in ("saliency", "gradcam"):
        at.selectbox(key="explain_method").set_value(method).run()
        assert_clean(at)
        assert "explain_signed" not in [t.key for t in at.toggle]
        assert any("has no direction here" in c for c in captions(at))


# --- the hybrid and its twin side by side --------------------------------------------------------


def test_the_hybrid_and_the_twin_side_by_side(hybrid, twin, test_x):
    at = open_explain({HYBRID: hybrid, TWIN: twin})
    at.number_input(key="explain_index").set_value(5).run()
    at.selectbox(key="explain_method").set_value("integrated_gradients").run()
    target = 1
    at.selectbox(key="explain_target").set_value(target).run()
    assert not any(s["layout"]["title"]["text"].startswith("Hybrid:") for s in specs(at))
    compare = at.toggle(key="explain_compare")
    assert compare.label.startswith("Compare with the classical twin")
    compare.set_value(True).run()
    assert_clean(at)

    name = hybrid.meta.label_names[target]
    left = heatmap(chart(at, f"Hybrid:<br>Integrated gradients for '{name}'"))
    right = heatmap(chart(at, f"Classical twin:<br>Integrated gradients for '{name}'"))
    assert (left["zmin"], left["zmax"]) == (right["zmin"], right["zmax"]) == (-1, 1)
    # One scale for both: each map divided by the larger of the two maps' scales.
    x = test_x[5:6]
    maps = [
        explain.evidence(explain.attribute(m.model, x, target, "integrated_gradients", raw=True))
        for m in (hybrid, twin)
    ]
    shared = max(explain.map_scale(m) for m in maps)
    for trace, found in zip((left, right), maps, strict=True):
        np.testing.assert_allclose(heat_values(trace), explain.normalise_signed(found, shared), atol=1e-5)
    # Each model with its own calibrated probability of the explained class.
    for which, trained in ((HYBRID, hybrid), (TWIN, twin)):
        p = answer(trained.model, trained.posthoc, x).probabilities[0, target]
        assert any(
            c.startswith(
                f"{which.capitalize()}: calibrated probability of '{md(name)}' {md(explain.probability_text(p))}"
            )
            for c in captions(at)
        ), which

    # Seen from the twin, the toggle offers the hybrid; both maps stay on one scale.
    at.radio(key="explain_model").set_value(TWIN).run()
    assert_clean(at)
    assert at.toggle(key="explain_compare").label.startswith("Compare with the hybrid")
    at.toggle(key="explain_signed").set_value(False).run()  # magnitudes: one scale too
    left = heatmap(chart(at, f"Hybrid:<br>Integrated gradients for '{name}'"))
    right = heatmap(chart(at, f"Classical twin:<br>Integrated gradients for '{name}'"))
    assert (left["zmin"], left["zmax"]) == (right["zmin"], right["zmax"]) == (0, 1)
    maps = [
        explain.magnitude(explain.attribute(m.model, x, target, "integrated_gradients", raw=True))
        for m in (hybrid, twin)
    ]
    shared = max(explain.map_scale(m) for m in maps)
    for trace, found in zip((left, right), maps, strict=True):
        np.testing.assert_allclose(heat_values(trace), explain.normalise_map(found, shared), atol=1e-5)


# --- an old model file ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "posthoc",
    [PostHoc.neutral("pneumoniamnist", 2), PostHoc(), None],
    ids=["saved before calibration", "neutral", "made in a test"],
)
def test_an_old_model_says_it_is_not_calibrated_and_not_checked(hybrid, test_x, posthoc):
    old = copy_of(hybrid, posthoc=posthoc)
    at = open_explain({HYBRID: old})
    upload(at, "ellipse.png", ellipse_png())
    assert not at.warning and not any(c.startswith("Unusualness") for c in captions(at))
    assert any(i.value == explain.NO_OOD_CHECK for i in at.info)
    assert "no unusual-image check is available" in explain.NO_OOD_CHECK.lower()
    assert any("Probabilities: not calibrated" in c for c in captions(at))
    assert probabilities_chart(at)["layout"]["title"]["text"] == "Probability of each class (not calibrated)"
    caption = prediction_caption(at)
    assert " with probability " in caption and "calibrated" not in caption
    (faithful,) = [m.value for m in at.markdown if m.value.startswith("**How faithful")]
    assert "takes the probability of" in faithful and "temperature" not in faithful
    x = image_to_model_input(ellipse_png(), hybrid.meta, hybrid.config.data)
    raw = explain.predict_one(hybrid.model, x).probabilities
    np.testing.assert_allclose(bar_values(probabilities_chart(at)), raw, atol=1e-9)  # the softmax as it is


# --- the qubits' bars ----------------------------------------------------------------------------


def test_the_qubit_bars_say_what_they_are(hybrid):
    at = open_explain({HYBRID: hybrid})
    bars = chart(at, "Per-qubit ⟨Z⟩ for this image")
    assert bars["layout"]["yaxis"]["title"]["text"] == "⟨Z⟩: what the classifier head reads"
    assert (
        "+1 (always 0)" in bars["layout"]["yaxis"]["ticktext"]
        and "−1 (always 1)" in bars["layout"]["yaxis"]["ticktext"]
    )
    assert any(
        c.startswith("⟨Z⟩ of each qubit: the numbers the classifier head reads")
        and "+1 = the qubit is always measured 0" in c
        for c in captions(at)
    )


# --- the maps behind the views ------------------------------------------------------------------


@pytest.mark.parametrize("method", list(explain.ATTRIBUTIONS))
def test_one_attribution_gives_both_views_and_the_magnitude_is_unchanged(method):
    """RGB, five classes: the magnitude of the raw map is what `attribute` returns, to the last bit
    (the faithfulness measures rank pixels by it); the signed map keeps the channels' signs."""
    from hqcnn.model import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="hybrid"), 3, 5)
    x = torch.randn(1, 3, 28, 28)
    raw = explain.attribute(model, x, 2, method, raw=True)
    np.testing.assert_array_equal(explain.magnitude(raw), explain.attribute(model, x, 2, method))
    np.testing.assert_allclose(explain.evidence(raw), raw.sum(axis=0))
    if explain.ATTRIBUTIONS[method].signed:
        assert explain.evidence(raw).min() < 0 < explain.evidence(raw).max()


def test_signed_maps_are_scaled_with_their_signs_kept():
    evidence = np.array([[-4.0, -1.0], [0.0, 2.0]])
    out = explain.normalise_signed(evidence, scale=2.0)
    np.testing.assert_array_equal(out, [[-1.0, -0.5], [0.0, 1.0]])
    assert np.array_equal(np.sign(explain.normalise_signed(evidence)), np.sign(evidence))
    assert not explain.normalise_signed(np.full((3, 3), 5.0)).any()  # nothing stands out
    assert not explain.normalise_signed(np.array([[np.nan, 1.0]]), scale=0.0).any()
    # A shared scale: the weaker of two maps stays weaker.
    weak, strong = np.array([[0.5, 1.0]]), np.array([[2.0, 4.0]])
    shared = max(explain.map_scale(weak), explain.map_scale(strong))
    assert explain.normalise_map(weak, shared).max() < explain.normalise_map(strong, shared).max() == 1.0
    np.testing.assert_array_equal(
        explain.normalise_map(strong), explain.normalise_map(strong, explain.map_scale(strong))
    )


# --- the wording, escaped ------------------------------------------------------------------------


def test_names_in_the_wording_are_escaped(hybrid):
    hostile = "[click](https://example.com) *x*"
    warning = explain.ood_warning("upload:0123", hostile, hybrid.posthoc.ood)
    assert md(hostile) in warning and "[click](https" not in warning
    decision = explain.decision_text(replace(hybrid.posthoc, positive=1, threshold=0.5), ["normal", hostile])
    assert md(hostile) in decision and "[click](https" not in decision
