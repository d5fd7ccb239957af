"""The Explain page under AppTest with real trained models: choices that survive every image source,
a per-model cache that never mixes models up, and the classical twin explored like the hybrid."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import plotly.io as pio
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from hqcnn import plots
from hqcnn.data import load_arrays, prepare_split
from hqcnn.explain import ATTRIBUTIONS, attribute, bloch_vectors, misclassified, predict_one, probability_text
from hqcnn.faithfulness import STEPS, faithfulness, randomised_middle, rank_correlation
from hqcnn.markdown import md
from hqcnn.train import run
from tests.conftest import quick_config
from ui.training import HYBRID, TWIN, TrainedModel

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "pages/4_Explain.py"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def hybrid(quick_run) -> TrainedModel:
    return TrainedModel.from_outcome(quick_run())


@pytest.fixture(scope="module")
def twin(quick_run) -> TrainedModel:
    return TrainedModel.from_outcome(quick_run("classical"))


def open_explain(models: dict[str, TrainedModel]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["models"] = models
    at.run()
    at.switch_page(PAGE).run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]


def attribution_title(at: AppTest) -> str:
    labels = tuple(spec.label for spec in ATTRIBUTIONS.values())
    (title,) = [t for t in chart_titles(at) if t.startswith(labels)]
    return title


def png_of_test_image(index: int) -> bytes:
    """Test image `index` of PneumoniaMNIST as the PNG a user could upload (lossless: the same pixels)."""
    buffer = io.BytesIO()
    Image.fromarray(load_arrays("pneumoniamnist")["test"][0][index]).save(buffer, format="PNG")
    return buffer.getvalue()


def image_caption(at: AppTest) -> str:
    return at.get("image")[0].captions[0]


def prediction_caption(at: AppTest) -> str:
    (caption,) = [c.value for c in at.caption if c.value.startswith("Predicted")]
    return caption


BLOCH = "Bloch vector of each qubit"
BLOCH_PANEL = "Each qubit's Bloch sphere (3-D)"


def open_bloch_spheres(at: AppTest) -> None:
    """What a click on the closed Bloch sphere panel stores (AppTest cannot click an expander)."""
    at.session_state["explain_choices"]["bloch"] = True
    at.run()
    assert_clean(at)


def browser_shows(widget) -> object:
    """What a browser draws in `widget` (a select box, radio or number input).

    AppTest reads a widget's value from the session; a browser that draws the widget anew (after a
    run without it) shows the value the server sends with it, or else the widget's default.
    """
    proto = widget.proto
    if widget.type == "number_input":
        return proto.value if proto.set_value else proto.default
    return proto.raw_value if proto.set_value else proto.options[proto.default]


def assert_shows_method(at: AppTest, method: str) -> None:
    spec = ATTRIBUTIONS[method]
    menu = at.selectbox(key="explain_method")
    assert menu.value == method and browser_shows(menu) == spec.label
    assert attribution_title(at).startswith(spec.label)
    assert spec.description in [c.value for c in at.caption]


def test_method_and_class_survive_switching_to_upload_and_back(hybrid):
    at = open_explain({HYBRID: hybrid})
    at.number_input(key="explain_index").set_value(3).run()
    at.selectbox(key="explain_method").set_value("occlusion").run()
    at.selectbox(key="explain_target").set_value(1).run()
    assert_shows_method(at, "occlusion")
    by_index = prediction_caption(at)

    at.radio(key="explain_mode").set_value("upload my own image").run()
    assert_clean(at)
    assert any("Upload an image" in i.value for i in at.info)
    at.file_uploader(key="explain_upload").set_value(("test 3.png", png_of_test_image(3), "image/png")).run()
    assert_clean(at)
    assert_shows_method(at, "occlusion")
    # The same pixels uploaded give the same prediction as the test image itself.
    assert (
        prediction_caption(at)
        == by_index.split(" (true:")[0] + ". Probabilities from a small research model: not a diagnosis."
    )
    assert image_caption(at) == f"Model input · your image '{md('test 3.png')}'"

    at.radio(key="explain_mode").set_value("test image by index").run()
    assert_clean(at)
    assert_shows_method(at, "occlusion")
    assert at.number_input(key="explain_index").value == 3 and browser_shows(at.number_input(key="explain_index")) == 3
    target = at.selectbox(key="explain_target")
    assert target.value == 1 and browser_shows(target) == hybrid.meta.label_names[1]
    assert attribution_title(at) == f"Occlusion for '{hybrid.meta.label_names[1]}'"
    at.number_input(key="explain_index").set_value(4).run()  # a class chosen by hand stays chosen
    assert at.selectbox(key="explain_target").value == 1
    assert_shows_method(at, "occlusion")


def test_the_explained_class_follows_the_prediction_by_default(hybrid):
    at = open_explain({HYBRID: hybrid})
    for index in (0, 4, 7):
        at.number_input(key="explain_index").set_value(index).run()
        predicted = predict_one(hybrid.model, _test_x(hybrid)[index : index + 1]).label_index
        assert at.selectbox(key="explain_target").value == "predicted"
        assert attribution_title(at) == f"Saliency for '{hybrid.meta.label_names[predicted]}'"


def test_choices_survive_a_visit_to_another_page(hybrid):
    at = open_explain({HYBRID: hybrid})
    at.radio(key="explain_mode").set_value("test image by class").run()
    at.selectbox(key="explain_class").set_value(1).run()
    at.slider(key="explain_member").set_value(2).run()
    at.selectbox(key="explain_method").set_value("gradcam").run()
    at.switch_page("pages/2_Circuit.py").run()
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert at.radio(key="explain_mode").value == "test image by class"
    assert browser_shows(at.radio(key="explain_mode")) == "test image by class"
    assert at.selectbox(key="explain_class").value == 1
    assert browser_shows(at.selectbox(key="explain_class")) == hybrid.meta.label_names[1]
    assert at.slider(key="explain_member").value == 2
    assert_shows_method(at, "gradcam")
    y = hybrid_labels(hybrid)
    assert image_caption(at).endswith(md(hybrid.meta.label_names[y[np.flatnonzero(y == 1)[2]]]))


def test_uploaded_file_names_are_escaped(hybrid):
    at = open_explain({HYBRID: hybrid})
    at.radio(key="explain_mode").set_value("upload my own image").run()
    name = "[click](https://example.com) **x**.png"
    at.file_uploader(key="explain_upload").set_value((name, png_of_test_image(0), "image/png")).run()
    assert_clean(at)
    caption = image_caption(at)
    assert md(name) in caption and "[click](https" not in caption


def own_prediction(trained: TrainedModel, index: int) -> str:
    """The start of the page's prediction caption for test image `index`, computed without the page."""
    p = predict_one(trained.model, _test_x(trained)[index : index + 1])
    label = trained.meta.label_names[p.label_index]
    return f"Predicted: **{md(label)}** with probability {md(probability_text(p.probabilities[p.label_index]))}"


def _test_x(trained: TrainedModel):
    return prepare_split(trained.config.data, "test", trained.meta.mean, trained.meta.std)[0]


def hybrid_labels(trained: TrainedModel) -> np.ndarray:
    return load_arrays(trained.config.data.dataset)["test"][1]


def shown_wrong_count(at: AppTest) -> int:
    """N of the misclassified-image slider's label "Misclassified image (N of M)"."""
    return int(at.slider(key="explain_wrong").label.split("(")[1].split(" of")[0])


def test_each_model_gets_its_own_misclassified_list(hybrid, small_pneumonia):
    other = TrainedModel.from_outcome(run(quick_config(epochs=1, seed=7), data=small_pneumonia))
    y = hybrid_labels(hybrid)
    expected = {m.key: misclassified(m.model, _test_x(m), y) for m in (hybrid, other)}
    assert not np.array_equal(*expected.values())  # the two models really differ

    at = open_explain({HYBRID: hybrid})
    at.radio(key="explain_mode").set_value("misclassified test images").run()
    for trained in (hybrid, other, hybrid):
        at.session_state["models"] = {HYBRID: trained}
        at.run()
        assert_clean(at)
        assert shown_wrong_count(at) == len(expected[trained.key])
        cache = at.session_state["_explain_cache"]
        assert trained.key in cache and set(cache) <= set(expected)
        np.testing.assert_array_equal(cache[trained.key]["pass"].misclassified, expected[trained.key])
        at.slider(key="explain_wrong").set_value(1).run()
        shown = image_caption(at)
        assert shown.endswith(md(trained.meta.label_names[y[expected[trained.key][1]]]))


def test_the_cache_keeps_a_few_models_only(hybrid):
    at = open_explain({HYBRID: hybrid})
    for _ in range(6):
        # A new TrainedModel (as after a new training or an upload) is a new cache entry, even for the same net.
        at.session_state["models"] = {HYBRID: TrainedModel.from_checkpoint(_saved(hybrid), source="uploaded")}
        at.run()
        assert_clean(at)
    assert len(at.session_state["_explain_cache"]) <= 4


def _saved(trained: TrainedModel):
    from hqcnn.checkpoint import from_zip

    return from_zip(trained.zip_bytes())


def test_the_twin_is_explored_like_the_hybrid(hybrid, twin):
    at = open_explain({HYBRID: hybrid, TWIN: twin})
    assert at.radio(key="explain_model").options == [HYBRID, TWIN]
    open_bloch_spheres(at)
    assert BLOCH in chart_titles(at)
    at.radio(key="explain_model").set_value(TWIN).run()
    assert_clean(at)
    assert prediction_caption(at).startswith(own_prediction(twin, 0))  # its own answer, not the hybrid's
    assert any("no qubits" in c.value for c in at.caption)
    assert any("no qubits" in i.value and "Choose the hybrid model" in i.value for i in at.info)
    for method in ATTRIBUTIONS:  # Grad-CAM too: the twin has the same convolutional backbone
        at.selectbox(key="explain_method").set_value(method).run()
        assert_clean(at)
        assert_shows_method(at, method)
        titles = " ".join(chart_titles(at))
        assert "Bloch" not in titles and "⟨Z⟩" not in titles  # nothing about qubits for a model without any
        assert BLOCH_PANEL not in [e.label for e in at.expander]
    at.radio(key="explain_model").set_value(HYBRID).run()
    assert_clean(at)
    assert_shows_method(at, "occlusion")
    assert prediction_caption(at).startswith(own_prediction(hybrid, 0))
    assert BLOCH in chart_titles(at)  # still open


@pytest.mark.slow
def test_a_large_test_set_is_run_through_the_model_when_asked():
    cfg = quick_config(epochs=1)
    large = TrainedModel.from_outcome(run(replace(cfg, data=replace(cfg.data, image_size=128))))
    at = open_explain({HYBRID: large})
    distributions = "Each qubit's ⟨Z⟩ per class<br>(test set)"
    assert "Per-qubit ⟨Z⟩ for this image" in chart_titles(at) and distributions not in chart_titles(at)
    at.button(key="explain_run_pass").click().run()
    assert_clean(at)
    assert distributions in chart_titles(at)
    at.number_input(key="explain_index").set_value(1).run()  # kept for the next image
    assert distributions in chart_titles(at)


def test_images_this_session_may_not_read_are_never_opened(hybrid):
    # A model made with another session's upload (or a folder on another computer): only an image of
    # the user's own can be explained, and no file of that dataset is looked for.
    dataset = "upload:0123456789abcdef"
    foreign = replace(
        hybrid,
        config=replace(hybrid.config, data=replace(hybrid.config.data, dataset=dataset)),
        meta=replace(hybrid.meta, dataset=dataset),
        key="foreign",
    )
    at = open_explain({HYBRID: foreign})
    assert at.radio(key="explain_mode").options == ["upload my own image"]
    assert any("not available here" in c.value for c in at.caption)
    at.file_uploader(key="explain_upload").set_value(("mine.png", png_of_test_image(0), "image/png")).run()
    assert_clean(at)
    assert any("not available here" in i.value for i in at.info)  # no read-outs per class
    open_bloch_spheres(at)
    assert BLOCH in chart_titles(at)


def test_the_twin_lists_its_own_misclassified_images(hybrid, twin):
    at = open_explain({HYBRID: hybrid, TWIN: twin})
    at.radio(key="explain_model").set_value(TWIN).run()
    at.radio(key="explain_mode").set_value("misclassified test images").run()
    assert_clean(at)
    expected = misclassified(twin.model, _test_x(twin), hybrid_labels(twin))
    if len(expected) > 1:
        assert shown_wrong_count(at) == len(expected)


def chart_spec(at: AppTest, title: str) -> dict:
    (spec,) = [
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if json.loads(c.proto.spec)["layout"]["title"]["text"] == title
    ]
    return spec


def test_the_bloch_spheres_are_drawn_only_when_asked_for(hybrid):
    at = open_explain({HYBRID: hybrid})
    assert BLOCH_PANEL in [e.label for e in at.expander] and BLOCH not in chart_titles(at)
    open_bloch_spheres(at)
    x = _test_x(hybrid)
    for index in (0, 5, 2):  # the model's figure is made once, then updated image by image
        at.number_input(key="explain_index").set_value(index).run()
        expected = plots.bloch_spheres(bloch_vectors(hybrid.model, x[index : index + 1]))
        assert chart_spec(at, BLOCH) == json.loads(pio.to_json(expected.to_dict(), validate=False))
    at.radio(key="explain_mode").set_value("upload my own image").run()
    at.radio(key="explain_mode").set_value("test image by index").run()
    assert BLOCH in chart_titles(at)  # the panel stays open


def test_the_prediction_caption_is_the_models_own_and_honest(hybrid):
    at = open_explain({HYBRID: hybrid})
    caption = prediction_caption(at)
    assert caption.startswith(own_prediction(hybrid, 0)) and caption.endswith("not a diagnosis.")
    assert "100" not in caption


# --- how faithful each map is, and the map of the re-randomised middle layer ---------------------

FAITHFUL = "**How faithful is this map for this image?**"
CURVES = "Pixels deleted or inserted<br>in this map's order"


def faithfulness_text(at: AppTest) -> str:
    (text,) = [m.value for m in at.markdown if m.value.startswith(FAITHFUL)]
    return text


def score(value: float) -> str:
    """A score as the page writes it: two decimals and a true minus sign."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text.replace("-", "−")


def test_every_map_shows_how_faithful_it_is_for_this_image(hybrid):
    at = open_explain({HYBRID: hybrid})
    at.number_input(key="explain_index").set_value(2).run()
    x = _test_x(hybrid)[2:3]
    target = predict_one(hybrid.model, x).label_index
    name = hybrid.meta.label_names[target]
    for method in ATTRIBUTIONS:
        at.selectbox(key="explain_method").set_value(method).run()
        assert_clean(at)
        expected = faithfulness(hybrid.model, x, attribute(hybrid.model, x, target, method), target, seed=0)
        text = faithfulness_text(at)
        quoted = round(0.2 * STEPS)  # the text quotes the top fifth of the pixels
        assert "Deleting the 20 % of pixels this map ranks highest" in text and f"'{md(name)}'" in text
        assert (
            f"from {md(probability_text(expected.deletion_curve[0]))} "
            f"to {md(probability_text(expected.deletion_curve[quoted]))}; "
            f"deleting a random 20 %: to {md(probability_text(expected.random_deletion_curve[quoted]))}"
        ) in text
        assert f"averages {score(expected.deletion)} (area under the deletion curve; random order: " in text
        assert f"random order: {score(expected.random_deletion)}; lower is better" in text
        assert f"it averages {score(expected.insertion)} (insertion area; random order: " in text
        assert (
            f"**{score(expected.faithfulness)}**, against {score(expected.random_faithfulness)} for a random order"
            in text
        )
        captions = [c.value for c in at.caption]
        assert any(c.startswith("A single-image figure") and "Experiments page" in c for c in captions)
        curves = chart_spec(at, CURVES)
        assert curves["layout"]["xaxis"]["title"]["text"] == "share of pixels deleted or inserted (%)"
        assert curves["layout"]["yaxis"]["title"]["text"] == f"probability of '{name}'"
        np.testing.assert_allclose(curves["data"][0]["y"], expected.deletion_curve)
        np.testing.assert_allclose(curves["data"][1]["y"], expected.random_deletion_curve)
        assert [trace["name"] for trace in curves["data"]] == [
            "deleted, this map's order",
            "deleted, random order",
            "inserted, this map's order",
            "inserted, random order",
        ]
    at.selectbox(key="explain_target").set_value(1 - target).run()  # the other class: its own figures
    expected = faithfulness(hybrid.model, x, attribute(hybrid.model, x, 1 - target, "occlusion"), 1 - target, seed=0)
    assert f"'{md(hybrid.meta.label_names[1 - target])}'" in faithfulness_text(at)
    assert f"**{score(expected.faithfulness)}**" in faithfulness_text(at)


def randomised_text(at: AppTest) -> str:
    (text,) = [m.value for m in at.markdown if m.value.startswith("**Does the map depend on")]
    return text


@pytest.mark.parametrize(("which", "layer"), [(HYBRID, "the circuit"), (TWIN, "the twin layer")])
def test_the_toggle_shows_the_map_after_re_randomising_the_middle_layer(which, layer, hybrid, twin):
    trained = {HYBRID: hybrid, TWIN: twin}[which]
    before = {k: v.clone() for k, v in trained.model.state_dict().items()}
    at = open_explain({which: trained})
    toggle = at.toggle(key="explain_randomised")
    assert toggle.label == f"Show the map after re-randomising {layer}" and not toggle.value
    assert not any(t.startswith("After re-randomising") for t in chart_titles(at))
    at.selectbox(key="explain_method").set_value("gradcam").run()
    toggle.set_value(True).run()
    assert_clean(at)

    x = _test_x(trained)[0:1]
    target = predict_one(trained.model, x).label_index
    name = trained.meta.label_names[target]
    assert f"After re-randomising {layer}:<br>Grad-CAM for '{name}'" in chart_titles(at)
    assert attribution_title(at) == f"Grad-CAM for '{name}'"  # the real map stays beside it
    real = attribute(trained.model, x, target, "gradcam")
    again = attribute(randomised_middle(trained.model, seed=0), x, target, "gradcam")
    rho = rank_correlation(real, again)
    text = randomised_text(at)
    assert text.startswith(f"**Does the map depend on {layer}?**")
    if np.isnan(rho):
        assert "cannot be computed" in text
    else:
        assert f"Spearman rank correlation between the two maps: **{score(rho)}**" in text
    assert f"If the two maps look alike (a correlation near 1), the map does not depend on {layer}" in text
    assert faithfulness_text(at)  # the real map's faithfulness is still shown

    # Stable: another image and back gives the same map and number; the model itself is untouched.
    shown = chart_spec(at, f"After re-randomising {layer}:<br>Grad-CAM for '{name}'")
    at.number_input(key="explain_index").set_value(1).run()
    at.number_input(key="explain_index").set_value(0).run()
    assert_clean(at)
    assert at.toggle(key="explain_randomised").value
    assert randomised_text(at) == text
    assert chart_spec(at, f"After re-randomising {layer}:<br>Grad-CAM for '{name}'") == shown
    assert all(torch.equal(before[k], v) for k, v in trained.model.state_dict().items())

    at.toggle(key="explain_randomised").set_value(False).run()
    assert_clean(at)
    assert not any(t.startswith("After re-randomising") for t in chart_titles(at))
    assert not [m for m in at.markdown if m.value.startswith("**Does the map depend on")]


def test_a_model_without_a_middle_layer_has_no_toggle(small_pneumonia):
    backbone = TrainedModel.from_outcome(run(quick_config(kind="backbone", epochs=1), data=small_pneumonia))
    at = open_explain({HYBRID: backbone})
    assert not at.toggle and faithfulness_text(at)
