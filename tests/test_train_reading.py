"""The Train page's reading of a trained model under AppTest: calibration, the decision threshold
(which goes with the downloaded model) and the model card."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from hqcnn import checkpoint
from hqcnn.data import prepare_split
from hqcnn.metrics import operating_point
from hqcnn.model_card import FILE_NAME
from hqcnn.posthoc import answer
from hqcnn.train import run
from tests.conftest import quick_config
from ui.training import HYBRID, TWIN, TrainedModel

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "pages/3_Train.py"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(small_pneumonia) -> dict[str, TrainedModel]:
    return {
        HYBRID: TrainedModel.from_outcome(run(quick_config(epochs=4), data=small_pneumonia, posthoc=True)),
        TWIN: TrainedModel.from_outcome(
            run(quick_config(kind="classical", epochs=4), data=small_pneumonia, posthoc=True)
        ),
    }


def open_train(models: dict[str, TrainedModel]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["models"] = dict(models)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def shown(at: AppTest, tab: int) -> dict[str, str]:
    """The operating-point metrics of one model's tab."""
    return {m.label: m.value for m in at.tabs[tab].get("metric")}


@pytest.mark.slow
def test_threshold_moves_the_operating_point_and_goes_with_the_model(models):
    hybrid = models[HYBRID]
    at = open_train(models)
    x, y = prepare_split(hybrid.config.data, "test", hybrid.meta.mean, hybrid.meta.std)
    probs = answer(hybrid.model, hybrid.posthoc, x).probabilities
    y = y.numpy().reshape(-1)
    for threshold in (0.5, 0.2, 0.8):
        if threshold != 0.5:
            at.slider(key=f"threshold_{hybrid.key}").set_value(threshold).run()
        expected = operating_point(y, probs, 1, threshold)
        metrics = shown(at, 0)
        assert metrics["Sensitivity"] == f"{expected['sensitivity']:.3f}"
        assert metrics["Specificity"] == f"{expected['specificity']:.3f}"
        titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.tabs[0].get("plotly_chart")]
        assert f"Confusion matrix at threshold {threshold:.2f} (test set)" in titles
    trained = at.session_state["models"][HYBRID]
    assert trained.posthoc.threshold == 0.8
    assert at.session_state["models"][TWIN].posthoc.threshold == 0.5  # each model has its own
    # The download carries the threshold and the card, and loads back with it.
    blob = trained.zip_bytes("card")
    assert checkpoint.from_zip(blob).posthoc.threshold == 0.8


def test_calibration_and_the_model_card_are_shown(models):
    at = open_train(models)
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert titles.count("Reliability diagram (test split)") == 2
    captions = " ".join(c.value for c in at.caption)
    cal = models[HYBRID].metrics["calibration"]
    assert f"{cal['as_trained']['ece']:.3f} as trained" in captions
    assert f"T = {models[HYBRID].posthoc.temperature:.2f}" in captions
    cards = [m.value for m in at.markdown if m.value.startswith("# Model card")]
    assert len(cards) == 2 and all("research and teaching only" in c for c in cards)
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels.count("Model card (Markdown)") == 2
    assert any("model card, zip" in label for label in labels)


def test_a_model_saved_before_calibration_existed_still_reads(models, small_pneumonia):
    hybrid = models[HYBRID]
    old = checkpoint.from_zip(
        checkpoint.to_zip(
            hybrid.model,
            hybrid.config,
            hybrid.meta,
            {"test": hybrid.metrics["test"], "params": hybrid.metrics["params"]},
        )
    )
    at = open_train({HYBRID: TrainedModel.from_checkpoint(old)})
    assert any("saved without calibration" in i.value for i in at.info)
    card = next(m.value for m in at.markdown if m.value.startswith("# Model card"))
    assert "Not measured for this model" in card and "None for this model." in card


def test_the_zip_holds_the_card_shown(models):
    at = open_train({HYBRID: models[HYBRID]})
    card = next(m.value for m in at.markdown if m.value.startswith("# Model card"))
    blob = at.session_state["models"][HYBRID].zip_bytes(card)
    assert zipfile.ZipFile(io.BytesIO(blob)).read(FILE_NAME).decode() == card
    assert np.isfinite(models[HYBRID].posthoc.temperature)
