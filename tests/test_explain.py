"""Attributions, predictions and the look inside the circuit, against independent references."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hqcnn.config import DataConfig, ModelConfig
from hqcnn.data import prepare_split
from hqcnn.errors import HQCNNError
from hqcnn.explain import (
    ATTRIBUTIONS,
    SplitImages,
    SplitPass,
    attribute,
    bloch_vectors,
    misclassified,
    normalise_map,
    occlusion_window,
    predict_one,
    probability_text,
    qubit_readouts,
)
from hqcnn.model import build_model
from hqcnn.train import predict_proba, run
from tests.conftest import quick_config

KINDS = ("hybrid", "classical", "backbone")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(quick_run):
    """One quickly trained PneumoniaMNIST model of every kind (this module's own copies)."""
    return {kind: quick_run(kind).result.model for kind in KINDS}


@pytest.fixture(scope="module")
def retina_model(small_retina):
    """A hybrid on RetinaMNIST: RGB input, five classes."""
    return run(quick_config(dataset="retinamnist"), data=small_retina).result.model


def _image(data, i: int = 0) -> torch.Tensor:
    return data.x_test[i : i + 1]


# --- the registry --------------------------------------------------------------------------------


def test_registry_names_labels_and_descriptions():
    assert set(ATTRIBUTIONS) == {"saliency", "integrated_gradients", "gradcam", "occlusion"}
    for name, spec in ATTRIBUTIONS.items():
        assert spec.name == name and spec.label and callable(spec.fn)
        assert spec.description.endswith(".") and spec.description.count(".") == 1  # one plain sentence


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", list(ATTRIBUTIONS))
def test_every_method_works_for_every_model_kind(method, kind, models, small_pneumonia):
    model = models[kind]
    model.train()  # attribute must switch to eval mode and then back
    x = _image(small_pneumonia)
    attr = attribute(model, x, target=1, method=method)
    assert model.training and all(m.training for m in model.modules())
    assert attr.shape == (28, 28) and attr.dtype == np.float64
    assert np.isfinite(attr).all() and (attr >= 0).all()
    # (C, H, W) works too and gives the same map; eval mode is kept as it was
    model.eval()
    again = attribute(model, x[0], target=1, method=method)
    assert not model.training
    np.testing.assert_allclose(again, attr, rtol=1e-5, atol=1e-7)
    overlay = normalise_map(attr)
    assert overlay.shape == attr.shape and 0 <= overlay.min() and overlay.max() <= 1


@pytest.mark.parametrize("method", list(ATTRIBUTIONS))
def test_rgb_multiclass_model(method, retina_model, small_retina):
    x = _image(small_retina)
    assert x.shape[1] == 3
    attr = attribute(retina_model, x, target=4, method=method)
    assert attr.shape == (28, 28) and np.isfinite(attr).all()
    raw = attribute(retina_model, x, target=4, method=method, raw=True)
    assert raw.shape == ((1, 28, 28) if method == "gradcam" else (3, 28, 28))
    np.testing.assert_allclose(np.abs(raw).sum(0), attr, rtol=1e-6, atol=1e-9)


def test_saliency_is_the_absolute_input_gradient(models, small_pneumonia, small_retina, retina_model):
    for model, x, target in (
        (models["hybrid"], _image(small_pneumonia, 3), 0),
        (retina_model, _image(small_retina), 2),
    ):
        model.eval()
        inputs = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(inputs)[0, target], inputs)
        reference = grad.abs().sum(dim=1)[0].double().numpy()
        np.testing.assert_allclose(attribute(model, x, target, "saliency"), reference, rtol=1e-5, atol=1e-8)
        assert reference.max() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_integrated_gradients_completeness(kind, models, small_pneumonia):
    model = models[kind].eval()
    target = 1
    x_all = small_pneumonia.x_test[:40]
    with torch.no_grad():
        deltas = model(x_all)[:, target] - model(torch.zeros_like(x_all[:1]))[0, target]
    i = int(deltas.abs().argmax())  # the clearest case: the quick models' logits move little
    delta = float(deltas[i])
    assert abs(delta) > 0.005  # well above the tolerance: the check is not vacuous
    raw = attribute(model, x_all[i], target, "integrated_gradients", raw=True, n_steps=300)
    # The sum of IG's attributions is F(x) − F(baseline) up to the integration error (ReLU kinks).
    assert raw.sum() == pytest.approx(delta, rel=0.03, abs=2e-4)


def test_integrated_gradients_default_steps(models, small_pneumonia):
    x = _image(small_pneumonia, 2)
    default = attribute(models["hybrid"], x, 0, "integrated_gradients")
    np.testing.assert_allclose(default, attribute(models["hybrid"], x, 0, "integrated_gradients", n_steps=32))
    assert not np.allclose(default, attribute(models["hybrid"], x, 0, "integrated_gradients", n_steps=8))


def _gradcam_by_hand(model, x: torch.Tensor, target: int) -> np.ndarray:
    """Grad-CAM from its definition: ReLU(Σ_k mean(∂y/∂A_k)·A_k) on conv2, bilinearly upsampled."""
    store = {}

    def keep(module, inputs, output):
        store["A"] = output
        output.register_hook(lambda grad: store.__setitem__("dA", grad))

    handle = model.backbone.conv2.register_forward_hook(keep)
    try:
        model.eval()
        model(x.clone())[0, target].backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    weights = store["dA"].mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * store["A"]).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return cam[0, 0].double().numpy()


@pytest.mark.parametrize("kind", KINDS)
def test_gradcam_matches_hand_computed(kind, models, small_pneumonia):
    model = models[kind]
    for i, target in ((0, 0), (7, 1)):
        x = _image(small_pneumonia, i)
        attr = attribute(model, x, target, "gradcam")
        assert attr.shape == (28, 28) and (attr >= 0).all()
        np.testing.assert_allclose(attr, _gradcam_by_hand(model, x, target), rtol=1e-4, atol=1e-7)


def test_occlusion_window_sizes():
    assert occlusion_window(28) == (5, 2)
    assert occlusion_window(32) == (5, 2)
    assert occlusion_window(64) == (9, 4)
    assert occlusion_window(128) == (19, 9)
    for size in (3, 5, 28, 32, 64, 128, 224):
        window, stride = occlusion_window(size)
        assert window % 2 == 1 and 3 <= window <= size and 1 <= stride <= window


def test_occlusion_shape_and_single_window_reference(models, small_pneumonia):
    model = models["hybrid"].eval()
    x = _image(small_pneumonia, 1)
    assert attribute(model, x, 1, "occlusion").shape == (28, 28)
    # One window over the whole image: every pixel's attribution is F(x) − F(baseline).
    raw = attribute(model, x, 1, "occlusion", raw=True, window=28, stride=1)
    with torch.no_grad():
        delta = float(model(x)[0, 1] - model(torch.zeros_like(x))[0, 1])
    np.testing.assert_allclose(raw, delta, rtol=1e-5, atol=1e-6)


def test_unknown_method_and_bad_inputs(models, small_pneumonia):
    model, x = models["hybrid"], _image(small_pneumonia)
    with pytest.raises(HQCNNError, match="saliency, integrated_gradients, gradcam, occlusion"):
        attribute(model, x, 0, "lime")
    with pytest.raises(HQCNNError, match="does not exist"):
        attribute(model, x, 2, "saliency")
    with pytest.raises(HQCNNError, match="one image"):
        attribute(model, small_pneumonia.x_test[:2], 0, "saliency")
    with pytest.raises(HQCNNError, match="channel"):
        attribute(model, x.repeat(1, 3, 1, 1), 0, "saliency")
    with pytest.raises(HQCNNError, match="steps"):
        attribute(model, x, 0, "integrated_gradients", n_steps=0)


def test_attribute_works_under_no_grad(models, small_pneumonia):
    with torch.no_grad():
        attr = attribute(models["hybrid"], _image(small_pneumonia), 1, "saliency")
    assert attr.max() > 0


# --- normalise_map -------------------------------------------------------------------------------


def test_normalise_map():
    assert not normalise_map(np.zeros((4, 4))).any()
    assert not normalise_map(np.full((4, 4), 3.0)).any()  # nothing stands out
    values = np.arange(1.0, 10001.0).reshape(100, 100)
    values[0, 0] = 0.0
    values[-1, -1] = 1e9  # one extreme pixel must not wash the rest out
    out = normalise_map(values)
    assert out[0, 0] == 0 and out.min() == 0 and out.max() == 1
    assert out[50, 50] == pytest.approx(values[50, 50] / np.percentile(values, 99))
    signed = normalise_map(np.array([[-2.0, 0.0], [1.0, np.nan]]))
    assert signed[0, 1] == 0 and signed[1, 1] == 0 and 0 <= signed.min() and signed.max() <= 1


# --- predictions and the middle stage ------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_predict_one(kind, models, small_pneumonia):
    model = models[kind]
    x = _image(small_pneumonia, 4)
    pred = predict_one(model, x)
    expected = predict_proba(model, x)[0]
    np.testing.assert_allclose(pred.probabilities, expected, rtol=1e-5)
    assert pred.probabilities.sum() == pytest.approx(1.0)
    assert pred.label_index == int(np.argmax(expected))
    if kind == "backbone":
        assert pred.readout is None and pred.angles is None
    else:
        assert pred.readout.shape == (4,) and np.abs(pred.readout).max() <= 1
    if kind == "hybrid":
        assert pred.angles.shape == (8,) and np.abs(pred.angles).max() < np.pi
    elif kind == "classical":
        assert pred.angles is None


@pytest.mark.parametrize("kind", ["hybrid", "classical"])
def test_qubit_readouts(kind, models, small_pneumonia):
    model = models[kind]
    x = small_pneumonia.x_test[:50]
    model.train()
    readouts = qubit_readouts(model, x, batch_size=16)
    assert model.training
    assert readouts.shape == (50, 4) and np.abs(readouts).max() <= 1
    with torch.no_grad():
        expected = model.eval().forward_with_readout(x)[1].double().numpy()
    np.testing.assert_allclose(readouts, expected, rtol=1e-5, atol=1e-6)
    assert qubit_readouts(model, x[:0]).shape == (0, 4)


def test_qubit_readouts_need_a_middle_stage(models, small_pneumonia):
    with pytest.raises(HQCNNError, match="no quantum"):
        qubit_readouts(models["backbone"], small_pneumonia.x_test[:4])


def test_bloch_vectors_of_the_trained_hybrid(models, small_pneumonia):
    model = models["hybrid"]
    for i in range(5):
        x = _image(small_pneumonia, i)
        vectors = bloch_vectors(model, x)
        assert vectors.shape == (4, 3)
        np.testing.assert_allclose(vectors[:, 2], predict_one(model, x).readout, atol=1e-5)
        assert (np.linalg.norm(vectors, axis=1) <= 1 + 1e-9).all()
    # the ring entangler leaves at least one qubit mixed (shorter than 1)
    assert np.linalg.norm(vectors, axis=1).min() < 0.999


@pytest.mark.parametrize("backend", ["fast", "pennylane"])
def test_bloch_vectors_without_entangler_are_pure(backend, small_pneumonia):
    torch.manual_seed(0)
    model = build_model(ModelConfig(entangler="none"), 1, 2, backend=backend)
    x = small_pneumonia.x_test[:3]
    with torch.no_grad():
        readout = model.eval().forward_with_readout(x)[1]
    for i in range(3):
        vectors = bloch_vectors(model, x[i])
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-9)  # product state
        np.testing.assert_allclose(vectors[:, 2], readout[i].double().numpy(), atol=1e-5)


def test_bloch_vectors_need_a_circuit(models, small_pneumonia):
    for kind in ("classical", "backbone"):
        with pytest.raises(HQCNNError, match="hybrid"):
            bloch_vectors(models[kind], _image(small_pneumonia))


@pytest.mark.parametrize("kind", KINDS)
def test_misclassified_agrees_with_predictions(kind, models, small_pneumonia):
    model = models[kind]
    x, y = small_pneumonia.x_test[:200], small_pneumonia.y_test[:200]
    wrong = misclassified(model, x, y, batch_size=64)
    predicted = predict_proba(model, x).argmax(axis=1)
    np.testing.assert_array_equal(wrong, np.flatnonzero(predicted != y.numpy()))
    assert wrong.dtype == np.int64
    np.testing.assert_array_equal(misclassified(model, x, y.numpy()), wrong)
    with pytest.raises(HQCNNError, match="labels"):
        misclassified(model, x, y[:10])
    with pytest.raises(HQCNNError, match="chunk"):
        SplitPass(model, SplitImages(small_pneumonia.config, small_pneumonia.mean, small_pneumonia.std), chunk=0)


@pytest.mark.slow
def test_saliency_needs_no_captum():
    # captum takes about a second to import: the default method must not pay for it.
    code = (
        "import sys, torch\n"
        "from hqcnn import explain\n"
        "from hqcnn.config import ModelConfig\n"
        "from hqcnn.model import build_model\n"
        "assert 'captum' not in sys.modules\n"
        "model = build_model(ModelConfig(), 1, 2)\n"
        "explain.attribute(model, torch.zeros(1, 1, 28, 28), 0, 'saliency')\n"
        "assert 'captum' not in sys.modules\n"
        "explain.attribute(model, torch.zeros(1, 1, 28, 28), 0, 'gradcam')\n"
        "assert 'captum' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


# --- probabilities as text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.9996, "> 99.9 %"),
        (1.0, "> 99.9 %"),
        (0.999, "99.9 %"),
        (0.5, "50.0 %"),
        (0.0004, "< 0.1 %"),
        (0.0, "< 0.1 %"),
    ],
)
def test_probability_text_never_claims_certainty(p, text):
    assert probability_text(p) == text
    assert probability_text(np.float64(p)) == text


def test_probability_text_refuses_non_probabilities():
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(HQCNNError, match="between 0 and 1"):
            probability_text(bad)


# --- a split, a chunk at a time ------------------------------------------------------------------


@pytest.mark.parametrize(
    "cfg",
    [
        DataConfig(dataset="pneumoniamnist"),
        DataConfig(dataset="pneumoniamnist", image_size=64, normalize=False),
        DataConfig(dataset="pneumoniamnist", noise_std=0.1, seed=3),
        DataConfig(dataset="retinamnist", grayscale=True, image_size=32),
        DataConfig(dataset="retinamnist"),
    ],
    ids=["plain", "64px-raw", "noise", "retina-gray", "retina-rgb"],
)
def test_split_images_are_the_prepared_split(cfg):
    channels = 1 if cfg.grayscale or cfg.dataset == "pneumoniamnist" else 3
    mean, std = (0.4,) * channels, (0.2,) * channels
    reference_x, reference_y = prepare_split(cfg, "test", mean, std)
    split = SplitImages(cfg, mean, std)
    assert len(split) == len(reference_y) and split.chunk >= 16
    np.testing.assert_array_equal(split.labels, reference_y.numpy())
    for start, stop in ((0, 1), (5, 37), (len(split) - 3, len(split))):
        torch.testing.assert_close(split.images(start, stop), reference_x[start:stop], rtol=0, atol=1e-6)
    torch.testing.assert_close(split.image(9), reference_x[9:10], rtol=0, atol=1e-6)
    with pytest.raises(HQCNNError, match="do not exist"):
        split.images(len(split) - 1, len(split) + 1)


@pytest.mark.parametrize("kind", KINDS)
def test_split_pass_agrees_with_the_whole_split_functions(kind, models, small_pneumonia):
    model = models[kind]
    cfg = small_pneumonia.config
    split = SplitImages(cfg, small_pneumonia.mean, small_pneumonia.std)
    # Chunks of 100 (by default the whole split at 28 px is one): it resumes chunk by chunk.
    split_pass = SplitPass(model, split, chunk=100)
    assert not split_pass.complete and split_pass.fraction == 0
    with pytest.raises(HQCNNError, match="so far"):
        split_pass.predicted  # noqa: B018
    assert split_pass.advance() is False and split_pass.done == 100
    split_pass.run()
    assert split_pass.complete and split_pass.fraction == 1 and split_pass.advance() is True
    x, y = small_pneumonia.x_test, small_pneumonia.y_test
    np.testing.assert_array_equal(split_pass.predicted, predict_proba(model, x).argmax(axis=1))
    np.testing.assert_array_equal(split_pass.misclassified, misclassified(model, x, y))
    if kind == "backbone":
        assert split_pass.readouts is None
    else:
        np.testing.assert_allclose(split_pass.readouts, qubit_readouts(model, x), rtol=1e-5, atol=1e-6)
