"""Every page under streamlit.testing.v1.AppTest: renders, widgets by key, training, explanation."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from hqcnn import checkpoint
from hqcnn.config import ModelConfig, TrainConfig, field_option
from hqcnn.markdown import md
from hqcnn.recipes import recommended_train_config
from ui.state import RECIPE_SETTINGS, SETTINGS
from ui.training import HYBRID, TrainedModel

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ["pages/1_Data.py", "pages/2_Circuit.py", "pages/3_Train.py", "pages/4_Explain.py", "pages/5_Experiments.py"]


def open_page(page: str | None = None, models: dict | None = None, **settings) -> AppTest:
    """The app with `settings` (and trained `models`) seeded, switched to `page`.

    Pages are reached through the real entry point: page links need it.
    """
    at = AppTest.from_file(APP, default_timeout=120)
    if models is not None:
        at.session_state["models"] = models
    if settings:
        values = {name: spec.default for name, spec in SETTINGS.items()}
        if any(name in settings for name in RECIPE_SETTINGS):
            values["recipe"] = False  # as a link that sets them: these values, not the recipe's
        values.update(settings)
        at.session_state["settings"] = values
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_home_page_has_disclaimer_and_guide():
    at = open_page()
    assert_clean(at)
    assert at.title[0].value == "HQCNN Explorer"
    assert any("not a medical device" in w.value.lower() for w in at.warning)


# The Experiments page opens on the shipped results set: seconds of loading, so it goes with the slow tests.
@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.slow) if "Experiments" in p else p for p in PAGES])
def test_every_page_renders_without_exception(page):
    at = open_page(page)
    assert_clean(at)
    # The shared sidebar (a lookup by key raises when the widget is missing).
    assert at.sidebar.selectbox(key="w_dataset").value == "pneumoniamnist"
    assert at.sidebar.slider(key="w_n_qubits").value == 4
    assert at.sidebar.slider(key="w_depth").value == 2


def test_data_page_controls_and_charts():
    at = open_page("pages/1_Data.py")
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 3  # samples, balance, before/after
    at.slider(key="w_train_per_class").set_value(10).run()
    assert_clean(at)
    assert at.session_state["settings"]["train_per_class"] == 10
    assert any("Training on 20 images" in c.value for c in at.caption)


def test_retina_grayscale_preview():
    at = open_page("pages/1_Data.py", dataset="retinamnist")
    assert_clean(at)
    at.checkbox(key="w_grayscale").check().run()
    assert_clean(at)
    assert at.session_state["settings"]["grayscale"] is True


def test_circuit_page_draws_and_offers_downloads():
    at = open_page("pages/2_Circuit.py", n_qubits=3, depth=1, n_features=6)
    assert_clean(at)
    assert len(at.get("image")) == 1  # the PennyLane drawing
    assert "RY" in at.code[0].value and at.code[0].value.count("<Z>") + at.code[0].value.count("⟨Z⟩") == 3
    assert at.slider(key="w_n_features").value == 6
    at.selectbox(key="w_entangler").set_value("none").run()
    assert_clean(at)
    assert at.session_state["settings"]["entangler"] == "none"
    assert len(at.get("download_button")) == 3


@pytest.mark.slow
def test_settings_survive_page_switches():
    at = open_page("pages/2_Circuit.py")
    at.sidebar.slider(key="w_n_qubits").set_value(5).run()
    at.switch_page("pages/1_Data.py").run()
    at.switch_page("pages/3_Train.py").run()
    assert at.sidebar.slider(key="w_n_qubits").value == 5
    assert at.session_state["settings"]["n_qubits"] == 5


def test_controls_take_their_words_and_ranges_from_the_config_fields():
    at = open_page("pages/3_Train.py")
    assert_clean(at)
    for name, cls in (("n_qubits", ModelConfig), ("depth", ModelConfig)):
        opt, slider = field_option(cls, name), at.sidebar.slider(key=f"w_{name}")
        assert (slider.label, slider.help, slider.min, slider.max) == (opt.label, opt.help, *opt.bounds)
    epochs = at.slider(key="w_epochs")
    assert epochs.label == field_option(TrainConfig, "epochs").label
    assert (epochs.min, epochs.max) == SETTINGS["epochs"].bounds  # the slider's own, narrower range
    assert at.number_input(key="w_seed").proto.max == SETTINGS["seed"].bounds[1]
    # With the recipe left, the training settings' defaults are the library's.
    assert {name: SETTINGS[name].default for name in ("epochs", "lr", "batch_size")} == {
        "epochs": TrainConfig().epochs, "lr": TrainConfig().lr, "batch_size": TrainConfig().batch_size,
    }  # fmt: skip


def wait_for_training(at: AppTest, deadline_s: float = 240) -> None:
    started = time.monotonic()
    while at.session_state["job"] is not None:
        assert time.monotonic() - started < deadline_s, "training did not finish in time"
        time.sleep(0.5)
        at.run()


@pytest.mark.slow
def test_short_training_run_shows_metrics_and_charts():
    at = open_page("pages/3_Train.py", train_per_class=20, epochs=2, batch_size=32, twin=True)
    assert_clean(at)
    at.button(key="train_button").click().run()
    assert at.session_state["job"] is not None
    wait_for_training(at)
    assert_clean(at)
    labels = [m.label for m in at.metric]
    assert labels[:2] == ["Accuracy", "ROC-AUC"]
    assert len(at.get("plotly_chart")) >= 4  # live curves, comparison, confusion, ROC
    models = at.session_state["models"]
    assert set(models) == {"hybrid", "classical twin"}
    assert any("Majority-class baseline accuracy" in c.value for c in at.caption)
    downloads = [d.proto.label for d in at.get("download_button")]
    assert downloads.count("Model card (Markdown)") == 2  # one per model, as their zips
    assert {d for d in downloads if d.startswith("Download")} == {
        "Download the hybrid model (safetensors + JSON + model card, zip)",
        "Download the classical twin model (safetensors + JSON + model card, zip)",
    }
    # Trained through the worker process, each model came back with what was fitted after training.
    assert all(m.posthoc.ood is not None and m.metrics["calibration"] for m in models.values())


@pytest.mark.parametrize("dataset", ["pneumoniamnist", "breastmnist", "retinamnist"])
def test_the_training_controls_start_from_the_recipe_for_the_dataset(dataset):
    at = open_page("pages/3_Train.py", dataset=dataset)
    assert_clean(at)
    n_train = {"pneumoniamnist": 4708, "breastmnist": 546, "retinamnist": 1080}[dataset]
    recipe = recommended_train_config(n_train)
    assert at.checkbox(key="w_recipe").value is True
    assert at.slider(key="w_epochs").value == recipe.epochs
    assert at.select_slider(key="w_lr").value == recipe.lr
    assert at.select_slider(key="w_batch_size").value == recipe.batch_size
    assert at.checkbox(key="w_average").value is True
    # The page says how long the run takes here, from steps it timed.
    assert any(c.value.startswith("Training will take about") and " ms)" in c.value for c in at.caption)


def test_moving_a_training_control_leaves_the_recipe_and_ticking_it_returns():
    at = open_page("pages/3_Train.py", dataset="breastmnist")
    at.slider(key="w_epochs").set_value(3).run()
    assert_clean(at)
    assert at.checkbox(key="w_recipe").value is False
    assert at.session_state["settings"]["epochs"] == 3
    at.sidebar.selectbox(key="w_dataset").set_value("pneumoniamnist").run()
    assert at.slider(key="w_epochs").value == 3  # the user's value now, whatever the dataset
    at.checkbox(key="w_recipe").check().run()
    assert at.slider(key="w_epochs").value == recommended_train_config(4708).epochs


def test_the_recipe_keeps_an_average_and_the_result_says_what_was_kept():
    at = open_page("pages/3_Train.py", dataset="breastmnist", train_per_class=20)
    assert at.checkbox(key="w_average").value is True  # 40 images: the recipe's batches of 8
    assert at.select_slider(key="w_batch_size").value == 8
    at.slider(key="w_epochs").set_value(2).run()
    at.button(key="train_button").click().run()
    wait_for_training(at)
    assert_clean(at)
    assert any("kept epoch 2, the only epoch averaged" in c.value for c in at.caption)
    live = at.get("plotly_chart")[0].proto.spec
    assert "weights averaged into the kept model" in live  # the averaged stretch is shaded


@pytest.mark.parametrize("dataset", ["pneumoniamnist", "breastmnist", "retinamnist"])
@pytest.mark.slow
def test_the_default_settings_learn_more_than_the_majority_class(dataset):
    # Train pressed without changing anything, on the whole bundled set: the product's default.
    at = open_page("pages/3_Train.py", dataset=dataset)
    at.button(key="train_button").click().run()
    wait_for_training(at, deadline_s=400)
    assert_clean(at)
    test = at.session_state["models"][HYBRID].metrics["test"]
    assert test["accuracy"] > test["majority_accuracy"] + 0.03, test
    assert not [w.value for w in at.warning]  # no one-class or baseline warning


@pytest.fixture(scope="module")
def trained_model(quick_run) -> TrainedModel:
    return TrainedModel.from_outcome(quick_run())


def test_explain_page_without_model_says_so():
    at = open_page("pages/4_Explain.py")
    assert_clean(at)
    assert any("no model yet" in i.value for i in at.info)


@pytest.mark.parametrize("mode", ["test image by index", "test image by class", "misclassified test images"])
def test_explain_page_with_a_trained_model(trained_model, mode):
    at = open_page("pages/4_Explain.py", models={HYBRID: trained_model})
    at.radio(key="explain_mode").set_value(mode).run()
    assert_clean(at)
    charts = len(at.get("plotly_chart"))
    assert charts >= 4 or any("every test image correctly" in s.value for s in at.success)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "gradcam", "occlusion"])
def test_explain_every_attribution_method(trained_model, method):
    at = open_page("pages/4_Explain.py", models={HYBRID: trained_model})
    at.selectbox(key="explain_method").set_value(method).run()
    assert_clean(at)


def test_uploading_a_model_archive(trained_model):
    at = open_page("pages/3_Train.py")
    blob = trained_model.zip_bytes()
    # AppTest has no file-uploader element yet; load through the same library call the page uses.
    loaded = checkpoint.from_zip(blob)
    at.session_state["models"] = {HYBRID: TrainedModel.from_checkpoint(loaded)}
    at.run()
    assert_clean(at)
    assert [m.label for m in at.metric][:1] == ["Accuracy"]


def test_bad_link_values_are_clamped_with_one_message():
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["n_qubits"] = "99"
    at.query_params["depth"] = "abc"
    at.query_params["dataset"] = "nosuchmnist"
    at.query_params["lr"] = "7"
    at.run()
    at.switch_page("pages/3_Train.py").run()
    assert not at.exception
    values = at.session_state["settings"]
    assert values["n_qubits"] == 8 and values["depth"] == 2 and values["dataset"] == "pneumoniamnist"
    # The nearest learning rate the control offers: control, setting and URL agree.
    assert values["lr"] == 0.03 and values["recipe"] is False
    assert at.select_slider(key="w_lr").value == 0.03
    assert at.query_params["lr"] == "0.03"
    assert len(at.warning) == 1  # one box lists every value it changed
    warning = at.warning[0].value
    # The values are quoted as literal text (Markdown-escaped), never as Markdown.
    for quoted in ("n_qubits=99", "depth=abc", "lr=7"):
        assert md(quoted) in warning
    assert "nosuchmnist" in warning and "using 0\\.03" in warning


def test_a_failed_download_leaves_only_its_message(tmp_path, monkeypatch):
    import socket

    from hqcnn import data

    probe = socket.create_server(("127.0.0.1", 0))  # a port where nothing listens: refused at once
    url = f"http://127.0.0.1:{probe.getsockname()[1]}/dermamnist.npz"
    probe.close()
    monkeypatch.setenv("HQCNN_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(data, "_remote", lambda key, size: (url, "0" * 32))
    at = open_page("pages/3_Train.py", dataset="dermamnist")
    at.button(key="download_dermamnist_28").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "download" in at.error[0].value.lower()
    assert not at.get("progress")  # no "Connecting…" bar left above the message


def test_a_model_that_says_one_class_for_everything_is_called_out(trained_model, small_pneumonia):
    import copy

    import torch

    from hqcnn.train import evaluate

    model = copy.deepcopy(trained_model.model)
    with torch.no_grad():
        model.head[-1].bias[:] = torch.tensor([50.0, -50.0])  # every image: class 0, "normal"
    test = evaluate(model, small_pneumonia.x_test, small_pneumonia.y_test)
    broken = TrainedModel(model, trained_model.config, trained_model.meta, {**trained_model.metrics, "test": test}, "trained")
    at = open_page("pages/3_Train.py", models={HYBRID: broken})
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "says 'normal' for every test image" in warnings.replace("\\", "")
