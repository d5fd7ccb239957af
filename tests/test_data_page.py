"""The Data page under AppTest: it renders on every bundled dataset, and the counts, statistics and
preview it shows are those of the real preparation (`hqcnn.data.prepare`) for the same settings."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from hqcnn import folder_data
from hqcnn.config import DataConfig
from hqcnn.data import BUNDLED, prepare
from ui.sidebar import USER_DATASETS_KEY
from ui.state import SETTINGS, run_config_of

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "pages/1_Data.py"
CAPTION = re.compile(
    r"Training on (?P<train>[\d,]+) images .*, validating on (?P<val>[\d,]+), testing on (?P<test>[\d,]+)\. "
    r"Channel mean (?P<mean>[\d., ]+), standard deviation (?P<std>[\d., ]+) of the training images"
)

# Settings that exercise every path of the page's statistics: as stored, enlarged (28 -> 64 and
# 128 px), a low-data subset larger than BreastMNIST's smaller class (147 malignant images, so
# 147 + 200 are kept, not 400), grayscale RetinaMNIST, and noise (which the statistics exclude).
CASES = [
    ("pneumoniamnist", {}),
    ("pneumoniamnist", {"image_size": 128, "train_per_class": 50, "noise_std": 0.1}),
    ("breastmnist", {"image_size": 64, "train_per_class": 200}),
    ("retinamnist", {}),
    ("retinamnist", {"image_size": 32, "grayscale": True, "train_per_class": 10, "noise_std": 0.2}),
]


def open_data_page(uploads: tuple[str, ...] = (), **settings) -> AppTest:
    """The app, with `settings` seeded (and `uploads` as this session's own datasets), on the Data page."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["settings"] = {name: spec.default for name, spec in SETTINGS.items()} | settings
    at.session_state[USER_DATASETS_KEY] = list(uploads)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def data_config(at: AppTest) -> DataConfig:
    """The DataConfig training would use for the session's settings."""
    return run_config_of(at.session_state["settings"]).data


def shown_summary(at: AppTest) -> dict:
    """Counts and statistics as the page's caption states them."""
    found = [m for c in at.caption if (m := CAPTION.search(c.value))]
    assert len(found) == 1, [c.value for c in at.caption]
    m = found[0]
    return {
        "counts": tuple(int(m[split].replace(",", "")) for split in ("train", "val", "test")),
        "mean": m["mean"].strip(", ").split(", "),
        "std": m["std"].strip(", ").split(", "),
    }


def figures(at: AppTest) -> dict[str, dict]:
    """The page's plotly figures as sent to the browser, by title."""
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {spec["layout"]["title"]["text"]: spec for spec in specs}


def pixels(z: dict | list) -> np.ndarray:
    """A trace's `z` as an array (plotly sends numpy arrays as base64 typed arrays)."""
    if isinstance(z, list):
        return np.asarray(z)
    shape = [int(n) for n in str(z["shape"]).split(",")]
    return np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"])).reshape(shape)


def assert_matches_preparation(at: AppTest) -> None:
    """What the page says about the training data equals what `prepare` makes of it."""
    data = prepare(data_config(at))
    shown = shown_summary(at)
    assert shown["counts"] == (len(data.y_train), len(data.y_val), len(data.y_test))
    assert shown["mean"] == [f"{m:.3f}" for m in data.mean]
    assert shown["std"] == [f"{s:.3f}" for s in data.std]
    # The preview's model input is the first row of the training tensors, noise included.
    preview = figures(at)["Original vs Model input"]["data"][1]
    expected = np.round(data.to_display(data.x_train[:1])[0] * 255)  # (H, W, C)
    expected = expected[..., 0] if data.in_channels == 1 else expected
    assert np.abs(pixels(preview["z"]).astype(float) - expected).max() <= 1


@pytest.mark.parametrize(
    ("dataset", "settings"),
    CASES,
    ids=[f"{d}-{'-'.join(f'{k}={v}' for k, v in s.items()) or 'defaults'}" for d, s in CASES],
)
def test_the_page_shows_what_training_uses(dataset: str, settings: dict) -> None:
    at = open_data_page(dataset=dataset, **settings)
    assert {"Sample images per class", "Images per class in each split", "Original vs Model input"} <= set(figures(at))
    assert any(m.value.startswith("**") and "task:" in m.value for m in at.markdown)
    assert_matches_preparation(at)


def test_every_bundled_dataset_is_covered() -> None:
    assert {dataset for dataset, _ in CASES} == set(BUNDLED)


def test_a_widget_change_updates_the_numbers_and_only_the_figures_it_affects() -> None:
    at = open_data_page(dataset="breastmnist")
    before = figures(at)
    at.selectbox(key="w_image_size").set_value(64).run()
    at.slider(key="w_train_per_class").set_value(200).run()
    at.slider(key="w_noise_std").set_value(0.3).run()
    assert not at.exception and not at.error
    assert_matches_preparation(at)
    after = figures(at)
    for title in ("Sample images per class", "Images per class in each split"):
        assert after[title] == before[title]
    assert after["Original vs Model input"] != before["Original vs Model input"]


@pytest.fixture
def colour_upload(folder_cache: Path) -> str:
    """An uploaded .zip of 40 px RGB images in three classes (stored at 40 px: neither 28 nor 128)."""
    rng = np.random.default_rng(7)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("a", "b", "c"):
            for i in range(12):
                png = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(png, format="PNG")
                archive.writestr(f"set/{label}/{i}.png", png.getvalue())
    return folder_data.extract_zip(buffer.getvalue(), "set.zip")


@pytest.mark.parametrize("settings", [{"image_size": 28}, {"image_size": 64, "grayscale": True, "train_per_class": 5}])
def test_an_upload_shrunk_or_enlarged_shows_what_training_uses(colour_upload: str, settings: dict) -> None:
    at = open_data_page(uploads=(colour_upload,), dataset=colour_upload, **settings)
    assert any("stored at 40×40 px" in i.value for i in at.info)
    assert_matches_preparation(at)
