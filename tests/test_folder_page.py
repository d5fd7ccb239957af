"""The app with your own images under AppTest: a zip uploaded on the Data page, then Train and Explain."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from hqcnn import folder_data as fd
from hqcnn.markdown import md
from tests.test_folder_data import make_folder, zip_bytes, zip_of
from tests.test_pages import APP, assert_clean, open_page, wait_for_training
from ui.sidebar import USER_DATASETS_KEY

pytestmark = pytest.mark.usefixtures("folder_cache")


@pytest.fixture
def xray_zip(tmp_path: Path) -> bytes:
    """A zipped folder 'xrays' with two classes of 15 images and one stray text file."""
    folder = make_folder(tmp_path / "xrays", {"normal": 15, "pneumonia": 15})
    (folder / "normal" / "notes.txt").write_text("not an image")
    return zip_bytes(zip_of(folder, "xrays/"))


def upload(at: AppTest, name: str, blob: bytes) -> AppTest:
    at.file_uploader(key="upload_folder_zip").set_value((name, blob, "application/zip")).run()
    return at


def test_uploading_a_zip_makes_it_the_current_dataset(xray_zip):
    at = open_page("pages/1_Data.py")
    assert_clean(at)
    upload(at, "xrays.zip", xray_zip)
    assert_clean(at)
    key = at.session_state["settings"]["dataset"]
    assert fd.is_upload_key(key) and fd.title(key) == "xrays"  # a short id, never a server path
    assert at.session_state[USER_DATASETS_KEY] == [key]
    dataset = at.sidebar.selectbox(key="w_dataset")
    assert dataset.value == key and "xrays (your images)" in dataset.options
    assert any(m.value.startswith("**xrays** · task: binary-class · 2 classes · 1 channel(s)") for m in at.markdown)
    assert any("22 training, 4 validation and 4 test images" in i.value for i in at.info)
    # A skipped file of an upload is named by its extension alone (its name may be a patient's).
    assert any("1 file was skipped" in w.value and md("a file ending in .txt") in w.value for w in at.warning)
    assert not any("notes" in w.value for w in at.warning)
    assert len(at.get("plotly_chart")) == 3  # samples, class balance, before/after
    assert any("Training on 22 images" in c.value for c in at.caption)

    # Back to a MedMNIST set and again to the upload, through the sidebar.
    at.sidebar.selectbox(key="w_dataset").set_value("breastmnist").run()
    assert_clean(at)
    assert any(m.value.startswith("**BreastMNIST**") for m in at.markdown)
    at.sidebar.selectbox(key="w_dataset").set_value(key).run()
    assert_clean(at)
    assert at.session_state["settings"]["dataset"] == key


def test_a_bad_zip_shows_its_message_and_keeps_the_dataset(tmp_path):
    members = zip_of(make_folder(tmp_path / "set", {"a": 3, "b": 3}))
    members["../escape.png"] = b"payload"
    at = upload(open_page("pages/1_Data.py"), "evil.zip", zip_bytes(members))
    assert not at.exception
    assert any("climbs out of its folder" in e.value for e in at.error)
    assert at.session_state["settings"]["dataset"] == "pneumoniamnist"
    assert not at.session_state[USER_DATASETS_KEY]

    one_class = zip_bytes(zip_of(make_folder(tmp_path / "one", {"normal": 5})))
    at = upload(open_page("pages/1_Data.py"), "one.zip", one_class)
    assert any("only one class" in e.value for e in at.error)
    assert at.session_state["settings"]["dataset"] == "pneumoniamnist"


def test_a_folder_path_in_a_link_is_refused(tmp_path):
    folder = make_folder(tmp_path / "set", {"a": 3, "b": 3})
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["dataset"] = str(folder)
    at.run()
    at.switch_page("pages/1_Data.py").run()
    assert not at.exception
    assert at.session_state["settings"]["dataset"] == "pneumoniamnist"
    assert any("Unknown dataset" in w.value and "in the link" in w.value for w in at.warning)


@pytest.mark.slow
def test_train_and_explain_pages_work_on_an_uploaded_folder(xray_zip):
    key = fd.extract_zip(xray_zip, "xrays.zip")
    at = open_page("pages/3_Train.py", dataset=key, epochs=1, batch_size=16, n_qubits=2, depth=1, n_features=4)
    at.session_state[USER_DATASETS_KEY] = [key]
    at.run()
    assert_clean(at)
    at.button(key="train_button").click().run()
    wait_for_training(at)
    assert_clean(at)
    assert [m.label for m in at.metric][:2] == ["Accuracy", "ROC-AUC"]
    assert at.session_state["models"]["hybrid"].meta.label_names == ("normal", "pneumonia")
    at.switch_page("pages/4_Explain.py").run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) >= 4
