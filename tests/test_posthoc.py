"""What is fitted after training (temperature, threshold, out-of-distribution detector), each
checked against an independent computation, on a real trained model, and through the checkpoint."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import optimize, stats
from scipy.spatial.distance import mahalanobis
from sklearn.covariance import LedoitWolf
from sklearn.metrics import confusion_matrix, roc_auc_score

from hqcnn import checkpoint, metrics, posthoc
from hqcnn.calibration import fit_temperature
from hqcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from hqcnn.data import prepare
from hqcnn.datasets_base import ModelMeta
from hqcnn.errors import CheckpointError
from hqcnn.markdown import md
from hqcnn.model_card import FILE_NAME, model_card
from hqcnn.train import run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- Against independent computations ----------------------------------------------------------


def test_temperature_minimises_the_validation_nll_as_scipy_finds_it():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3)) + 4.0 * np.eye(3)[labels]  # confident and often right: T > 1 helps
    logits[:60] = rng.normal(size=(60, 3)) * 4  # some confident mistakes

    def nll(t: float) -> float:
        z = logits / t
        return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(400), labels]))

    best = optimize.minimize_scalar(nll, bounds=(0.05, 20), method="bounded", options={"xatol": 1e-8}).x
    fitted = fit_temperature(torch.as_tensor(logits), torch.as_tensor(labels))
    assert fitted == pytest.approx(best, rel=1e-4)
    assert nll(fitted) <= nll(1.0)


def test_mahalanobis_scores_equal_scipy_and_the_threshold_gives_the_rate():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4))
    labels = rng.integers(0, 2, 300)
    train[labels == 1] += 3.0
    val = rng.normal(size=(200, 4)) @ rng.normal(size=(4, 4))
    detector = posthoc.fit_ood(train, labels, val, rate=0.1)
    means = np.stack([train[labels == k].mean(0) for k in (0, 1)])
    precision = LedoitWolf().fit(train - means[labels]).precision_
    np.testing.assert_allclose(detector.precision, precision)
    point = rng.normal(size=4)
    expected = min(mahalanobis(point, means[k], precision) ** 2 for k in (0, 1))
    assert detector.scores(point[None])[0] == pytest.approx(expected)
    assert detector.val_rate <= 0.1 and detector.val_rate >= 0.1 - 1 / 200
    assert np.mean(detector.scores(val) > detector.threshold) == detector.val_rate


def test_youden_threshold_is_the_best_of_every_threshold():
    rng = np.random.default_rng(2)
    y = rng.random(300) < 0.4
    p = np.clip(0.3 * y + rng.random(300) * 0.7, 0, 1)
    best = max(np.unique(p), key=lambda t: np.mean(p[y] >= t) - np.mean(p[~y] >= t))
    chosen = posthoc.youden_threshold(p, y)
    j = lambda t: np.mean(p[y] >= t) - np.mean(p[~y] >= t)  # noqa: E731
    assert j(chosen) == pytest.approx(j(best))
    assert posthoc.youden_threshold(p, np.ones(300, bool)) is None


def test_operating_point_equals_sklearn_confusion_matrix():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p1 = rng.random(200)
    probs = np.stack([1 - p1, p1], axis=1)
    for positive, threshold in ((1, 0.5), (1, 0.2), (0, 0.7)):
        called = np.where(probs[:, positive] >= threshold, positive, 1 - positive)
        tn, fp, fn, tp = confusion_matrix(y == positive, called == positive).ravel()
        point = metrics.operating_point(y, probs, positive, threshold)
        assert (point["tp"], point["fp"], point["tn"], point["fn"]) == (tp, fp, tn, fn)
        assert point["sensitivity"] == tp / (tp + fn) and point["specificity"] == tn / (tn + fp)
        assert point["ppv"] == tp / (tp + fp) and point["npv"] == tn / (tn + fn)


def test_fast_auc_equals_sklearn_with_ties_and_many_classes():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 150)
    probs = rng.dirichlet(np.ones(4), 150).round(2)  # rounding makes ties
    probs /= probs.sum(1, keepdims=True)
    expected = np.mean([roc_auc_score(y == c, probs[:, c]) for c in range(4)])
    assert metrics._auc(y, probs) == pytest.approx(expected)
    binary = np.stack([1 - probs[:, 0], probs[:, 0]], 1)
    assert metrics._auc(y % 2, binary) == pytest.approx(roc_auc_score(y % 2 == 1, binary[:, 1]))


def test_bootstrap_interval_matches_scipy():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 300)
    p1 = np.clip(0.35 * y + rng.random(300) * 0.65, 0, 1)
    probs = np.stack([1 - p1, p1], axis=1)
    ours = metrics.bootstrap_interval(y, probs, metrics._accuracy, n_boot=2000, seed=0)
    theirs = stats.bootstrap(
        (y, p1), lambda a, b: np.mean((b >= 0.5) == a), paired=True, n_resamples=2000, method="percentile",
        random_state=0,
    ).confidence_interval  # fmt: skip
    assert ours[0] == pytest.approx(theirs.low, abs=0.01) and ours[1] == pytest.approx(theirs.high, abs=0.01)
    accuracy = metrics._accuracy(y, probs)
    assert ours[0] < accuracy < ours[1]


# --- On a real trained model -------------------------------------------------------------------


@pytest.fixture(scope="module")
def outcome():
    data = prepare(DataConfig(dataset="pneumoniamnist", train_per_class=300))
    config = RunConfig(data=data.config, model=ModelConfig(), train=TrainConfig(epochs=4, batch_size=32, seed=3))
    return run(config, data=data, posthoc=True)


def test_fitted_on_validation_and_reported(outcome):
    fitted, data = outcome.posthoc, outcome.data
    assert fitted.positive == 1 and fitted.threshold == posthoc.DEFAULT_THRESHOLD and 0 < fitted.youden < 1
    # The temperature is the validation NLL minimum, and lowers the validation NLL.
    logits = outcome.result.model.eval()(data.x_val).detach().double()
    nll = lambda t: torch.nn.functional.cross_entropy(logits / t, data.y_val.long().reshape(-1)).item()  # noqa: E731
    assert nll(fitted.temperature) <= nll(1.0) and nll(fitted.temperature) <= nll(fitted.temperature * 1.05)
    cal = outcome.calibration
    assert cal["temperature"] == fitted.temperature
    assert cal["as_trained"]["ece_ci"][0] <= cal["as_trained"]["ece"] <= cal["as_trained"]["ece_ci"][1]
    assert sum(cal["scaled"]["reliability"]["count"]) == len(data.y_test)
    assert outcome.test_ci["auc"][0] < outcome.test["auc"] < outcome.test_ci["auc"][1]
    json.dumps(outcome.metrics_json(), allow_nan=False)


def test_unusual_images_are_flagged_and_test_images_at_about_the_stated_rate(outcome):
    model, fitted, data = outcome.result.model, outcome.posthoc, outcome.data
    flagged = posthoc.answer(model, fitted, data.x_test).unusual
    # Test images come from the same distribution: the share flagged is the rate, within a binomial 99% band.
    low, high = stats.binom.ppf([0.005, 0.995], len(flagged), fitted.ood.rate) / len(flagged)
    assert low - 0.03 <= flagged.mean() <= high + 0.03, flagged.mean()
    # Images that are nothing like a chest X-ray: an ellipse, noise, a blank frame, breast ultrasound.
    yy, xx = np.mgrid[:28, :28]
    ellipse = (((xx - 14) / 9) ** 2 + ((yy - 14) / 6) ** 2 < 1).astype(np.float32)
    rng = np.random.default_rng(0)
    pixels = np.concatenate([ellipse[None], rng.random((20, 28, 28)), np.zeros((1, 28, 28))]).astype(np.float32)
    breast = np.load("assets/medmnist/breastmnist.npz")["test_images"][:100].astype(np.float32) / 255
    for name, images in (("synthetic", pixels), ("breast ultrasound", breast)):
        x = (torch.as_tensor(images)[:, None] - data.mean[0]) / data.std[0]
        shown = posthoc.answer(model, fitted, x)
        assert shown.unusual.mean() >= 0.9, (name, shown.unusual.mean())


def test_answer_is_calibrated_softmax_and_the_threshold_decides(outcome):
    model, fitted, x = outcome.result.model, outcome.posthoc, outcome.data.x_test[:200]
    logits = model.eval()(x).detach().double()
    shown = posthoc.answer(model, fitted, x)
    np.testing.assert_allclose(shown.probabilities, torch.softmax(logits / fitted.temperature, 1).numpy(), atol=1e-6)
    np.testing.assert_array_equal(shown.predicted, (shown.probabilities[:, 1] >= 0.5).astype(int))
    strict = posthoc.answer(model, fitted.with_threshold(0.95), x)
    assert (strict.predicted == 1).sum() < (shown.predicted == 1).sum()


# --- Saved with the model, read back strictly ---------------------------------------------------


def test_checkpoint_round_trip_and_old_files(outcome, tmp_path):
    model, config, meta = outcome.result.model, outcome.config, ModelMeta.from_data(outcome.data)
    chosen = outcome.posthoc.with_threshold(0.3)
    loaded = checkpoint.from_zip(checkpoint.to_zip(model, config, meta, outcome.metrics_json(), chosen))
    assert loaded.posthoc.threshold == 0.3 and loaded.posthoc.temperature == chosen.temperature
    np.testing.assert_array_equal(loaded.posthoc.ood.precision, chosen.ood.precision)
    saved = checkpoint.load(checkpoint.save(tmp_path / "run", model, config, meta, posthoc=chosen))
    assert saved.posthoc == loaded.posthoc == chosen
    old = checkpoint.from_zip(checkpoint.to_zip(model, config, meta))  # saved without one
    assert old.posthoc == posthoc.PostHoc.neutral("pneumoniamnist", 2)
    assert old.posthoc.temperature == 1.0 and old.posthoc.threshold == 0.5 and old.posthoc.ood is None


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda p: {**p, "temperature": "hot"}, "temperature"),
        (lambda p: {**p, "temperature": 0}, "temperature"),
        (lambda p: {**p, "threshold": 7}, "threshold"),
        (lambda p: {**p, "positive": 2}, "positive"),
        (lambda p: {**p, "extra": 1}, "expected form"),
        (lambda p: {**p, "ood": {**p["ood"], "precision": [[1.0]]}}, "sizes"),
        (lambda p: {**p, "ood": {**p["ood"], "class_means": [[1e400] * 8] * 2}}, "not finite"),
        (lambda p: {**p, "ood": {**p["ood"], "class_means": [["a"] * 8] * 2}}, "table of numbers"),
        (lambda p: {**p, "ood": {**p["ood"], "class_means": [[0.0] * 16] * 3}}, "classes"),
        (lambda p: {**p, "ood": {**p["ood"], "class_means": [[0.0] * 16] * 300}}, "table of numbers"),
    ],
)
def test_a_crafted_posthoc_section_is_refused_in_words(outcome, change, message):
    model, config, meta = outcome.result.model, outcome.config, ModelMeta.from_data(outcome.data)
    files = checkpoint.to_bytes(model, config, meta, posthoc=outcome.posthoc)
    header = json.loads(files["config.json"])
    header["posthoc"] = change(header["posthoc"])
    with pytest.raises(CheckpointError, match=message):
        checkpoint.from_bytes(files["model.safetensors"], json.dumps(header).encode())


def test_a_detector_for_other_features_is_refused(outcome):
    meta = ModelMeta.from_data(outcome.data)
    other = replace(outcome.config, model=replace(outcome.config.model, channels=(4, 8)))
    from hqcnn.model import build_model

    files = checkpoint.to_bytes(build_model(other.model, 1, 2), other, meta, posthoc=outcome.posthoc)
    with pytest.raises(CheckpointError, match="feature maps"):
        checkpoint.from_bytes(files["model.safetensors"], files["config.json"])


# --- The model card ------------------------------------------------------------------------------


def test_model_card_states_use_data_results_calibration_and_limits(outcome):
    data, fitted = outcome.data, outcome.posthoc
    meta = ModelMeta.from_data(data)
    probs = posthoc.answer(outcome.result.model, fitted, data.x_test).probabilities
    y = data.y_test.numpy().reshape(-1)
    card = model_card(outcome.config, meta, outcome.metrics_json(), fitted, "PneumoniaMNIST", probs, y)
    assert "research and teaching only" in card and "not a medical device" in card
    assert f"| accuracy | {outcome.test['accuracy']:.3f} |" in card
    lo, hi = outcome.test_ci["auc"]
    assert f"{lo:.3f}–{hi:.3f}" in card and "0.854" in card and "0.944" in card  # ResNet-18's figures
    assert f"{outcome.test['majority_accuracy']:.3f}" in card
    point = metrics.operating_point(y, probs, 1, 0.5)
    assert f"| Sensitivity | {point['sensitivity']:.3f} |" in card
    assert f"T = {fitted.temperature:.2f}" in card and "Known limitations" in card
    assert json.loads(card.split("```json\n")[1].split("\n```")[0])["config"] == outcome.config.to_dict()


def test_model_card_escapes_names_from_files(outcome):
    meta = replace(ModelMeta.from_data(outcome.data), label_names=("[x](https://evil.example)", "<b>bold</b>"))
    card = model_card(outcome.config, meta, outcome.metrics_json(), outcome.posthoc, "**title**")
    assert "[x](https" not in card and "<b>" not in card and "**title**" not in card
    # The compute record of an uploaded model is text from a file too.
    hostile = {**outcome.metrics_json(), "compute": {**outcome.compute, "torch": "[x](https://evil.example)"}}
    card = model_card(outcome.config, meta, hostile, outcome.posthoc, "title")
    assert "Trained with torch" in card and "[x](https" not in card


def test_model_card_says_how_the_weights_were_computed(outcome):
    card = model_card(outcome.config, ModelMeta.from_data(outcome.data), outcome.metrics_json(), outcome.posthoc, "t")
    said = md(f"torch {outcome.compute['torch']}, {outcome.compute['threads']} thread(s)")
    assert "Trained with " + said in card
    without = {k: v for k, v in outcome.metrics_json().items() if k != "compute"}
    card = model_card(outcome.config, ModelMeta.from_data(outcome.data), without, outcome.posthoc, "t")
    assert "Trained before runs recorded their torch threads and CPU kernels." in card


def test_the_zip_carries_the_card_and_loading_ignores_it(outcome):
    from ui.training import TrainedModel

    trained = TrainedModel.from_outcome(outcome)
    blob = trained.zip_bytes("# card")
    assert zipfile.ZipFile(io.BytesIO(blob)).read(FILE_NAME) == b"# card"
    assert checkpoint.from_zip(blob).posthoc == outcome.posthoc
