"""Faithfulness (deletion / insertion) and the re-randomised middle layer, against hand computations."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from hqcnn.config import ModelConfig
from hqcnn.errors import HQCNNError
from hqcnn.explain import attribute, predict_one
from hqcnn.faithfulness import (
    STEPS,
    Faithfulness,
    curve_areas,
    curves,
    faithfulness,
    map_order,
    randomised_middle,
    rank_correlation,
)
from hqcnn.model import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Linear(nn.Module):
    """Two classes; the logit of class 1 is Σ w·x over every channel and pixel, class 0's is 0.

    So p(class 1) = σ(Σ w·x), and with pixels set to 0 it is σ of the sum over the others.
    """

    def __init__(self, weights: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("w", torch.as_tensor(weights, dtype=torch.float32))
        self.in_channels, self.n_classes = self.w.shape[0], 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x * self.w).sum(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(z), z], dim=1)


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def by_hand(weights: np.ndarray, x: np.ndarray, order: list[int], counts: list[int]) -> tuple[list, list]:
    """p(class 1) after deleting / keeping only the first counts[k] pixels of `order` (all channels of each)."""
    contribution = (weights * x).sum(axis=0).ravel()  # one number per pixel
    deletion = [sigmoid(contribution.sum() - contribution[order[:n]].sum()) for n in counts]
    insertion = [sigmoid(contribution[order[:n]].sum()) for n in counts]
    return deletion, insertion


def trapezoid(values: list[float], fractions: list[float]) -> float:
    return sum((fractions[i + 1] - fractions[i]) * (values[i] + values[i + 1]) / 2 for i in range(len(values) - 1))


# A 2 × 2 image: pixels (reading order) 0..3. Contributions w·x: 2, −1, 0.5, 3.
ONE_CHANNEL = (np.array([[[1.0, -0.5], [0.25, 1.5]]]), np.array([[[2.0, 2.0], [2.0, 2.0]]]))
# Three channels whose contributions per pixel add up to 2, −1, 0.5, 3 too (deleted together).
THREE_CHANNELS = (
    np.array([[[1.0, 0.5], [0.5, 1.0]], [[0.5, -1.0], [-0.5, 1.0]], [[0.0, -0.5], [1.0, 1.0]]]),
    np.array([[[1.0, 1.0], [1.0, 1.0]], [[2.0, 1.0], [1.0, 1.0]], [[1.0, 1.0], [0.5, 1.0]]]),
)


@pytest.mark.parametrize(("weights", "x"), [ONE_CHANNEL, THREE_CHANNELS], ids=["gray", "rgb"])
@pytest.mark.parametrize(
    ("steps", "counts"),
    [(4, [0, 1, 2, 3, 4]), (3, [0, 2, 3, 4])],  # 3 steps of 4 pixels: ⌈4/3⌉ = 2, ⌈8/3⌉ = 3, 4
)
def test_faithfulness_matches_a_hand_computation(weights, x, steps, counts):
    model, image = Linear(weights), torch.as_tensor(x, dtype=torch.float32)
    contribution = (weights * x).sum(axis=0)
    np.testing.assert_allclose(contribution.ravel(), [2, -1, 0.5, 3])
    attribution = np.abs(contribution)  # ranks the pixels 3, 0, 1, 2
    assert map_order(attribution).tolist() == [3, 0, 1, 2]

    f = faithfulness(model, image, attribution, target=1, seed=7, steps=steps)

    fractions = [n / 4 for n in counts]
    deletion, insertion = by_hand(weights, x, [3, 0, 1, 2], counts)
    random_order = np.random.default_rng(7).permutation(4).tolist()  # the seed's one random order
    random_deletion, random_insertion = by_hand(weights, x, random_order, counts)
    assert f.target == 1
    np.testing.assert_allclose(f.fractions, fractions)
    np.testing.assert_allclose(f.deletion_curve, deletion, rtol=1e-6)
    np.testing.assert_allclose(f.insertion_curve, insertion, rtol=1e-6)
    np.testing.assert_allclose(f.random_deletion_curve, random_deletion, rtol=1e-6)
    np.testing.assert_allclose(f.random_insertion_curve, random_insertion, rtol=1e-6)
    assert f.deletion == pytest.approx(trapezoid(deletion, fractions), rel=1e-6)
    assert f.insertion == pytest.approx(trapezoid(insertion, fractions), rel=1e-6)
    assert f.random_deletion == pytest.approx(trapezoid(random_deletion, fractions), rel=1e-6)
    assert f.random_insertion == pytest.approx(trapezoid(random_insertion, fractions), rel=1e-6)
    assert f.faithfulness == pytest.approx(f.insertion - f.deletion)
    assert f.random_faithfulness == pytest.approx(f.random_insertion - f.random_deletion)
    # The map ranks the evidence for class 1 first, so it beats the reverse order at both ends.
    worst = list(reversed([3, 0, 1, 2]))
    assert curve_areas(model, image, np.array(worst), 1, steps)[0] > f.deletion
    assert f.faithfulness > faithfulness(model, image, -attribution, 1, 7, steps).faithfulness


def test_the_four_steps_by_hand_written_out():
    # Deleting pixels 3, 0, 1, 2 (contributions 3, 2, −1, 0.5 of a total 4.5): σ(4.5), σ(1.5), σ(−0.5), σ(0.5), σ(0).
    weights, x = ONE_CHANNEL
    f = faithfulness(Linear(weights), torch.as_tensor(x, dtype=torch.float32), np.array([[2, 1], [0.5, 3]]), 1, 0, 4)
    expected = [sigmoid(v) for v in (4.5, 1.5, -0.5, 0.5, 0.0)]
    np.testing.assert_allclose(f.deletion_curve, expected, rtol=1e-6)
    assert f.deletion == pytest.approx(0.25 * (expected[0] / 2 + sum(expected[1:4]) + expected[4] / 2), rel=1e-6)
    # Inserting them in that order: σ(0), σ(3), σ(5), σ(4), σ(4.5).
    np.testing.assert_allclose(f.insertion_curve, [sigmoid(v) for v in (0, 3, 5, 4, 4.5)], rtol=1e-6)


def test_the_result_is_a_small_frozen_record_and_the_seed_fixes_the_random_order():
    weights, x = ONE_CHANNEL
    model, image, attribution = Linear(weights), torch.as_tensor(x, dtype=torch.float32), np.arange(4.0).reshape(2, 2)
    f = faithfulness(model, image, attribution, 1, seed=3)
    assert isinstance(f, Faithfulness) and len(f.fractions) == STEPS + 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.deletion = 0.0  # type: ignore[misc]
    assert faithfulness(model, image[None], attribution, 1, seed=3) == f  # (1, C, H, W) too, same numbers
    # A generator is drawn from as it is (the study draws image after image from one).
    assert faithfulness(model, image, attribution, 1, seed=np.random.default_rng(3)) == f


def test_bad_inputs_are_plain_errors():
    weights, x = ONE_CHANNEL
    model, image = Linear(weights), torch.as_tensor(x, dtype=torch.float32)
    with pytest.raises(HQCNNError, match="must match"):
        faithfulness(model, image, np.zeros((3, 3)), 1)
    with pytest.raises(HQCNNError, match="step"):
        faithfulness(model, image, np.zeros((2, 2)), 1, steps=0)
    with pytest.raises(HQCNNError, match="does not exist"):
        faithfulness(model, image, np.zeros((2, 2)), 2)
    with pytest.raises(HQCNNError, match="each of the image's 4 pixels once"):
        curves(model, image, np.array([0, 0, 1, 2]), 1)
    with pytest.raises(HQCNNError, match="2-D"):
        map_order(np.zeros(4))


# --- real models ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(quick_run):
    return {kind: quick_run(kind).result.model for kind in ("hybrid", "classical")}


@pytest.mark.parametrize("kind", ["hybrid", "classical"])
def test_the_curves_of_a_trained_model_start_and_end_where_they_must(kind, trained, small_pneumonia):
    model = trained[kind]
    x = small_pneumonia.x_test[3:4]
    prediction = predict_one(model, x)
    target = prediction.label_index
    f = faithfulness(model, x, attribute(model, x, target, "saliency"), target)
    p_mean_image = predict_one(model, torch.zeros_like(x)).probabilities[target]
    for deletion, insertion in (
        (f.deletion_curve, f.insertion_curve),
        (f.random_deletion_curve, f.random_insertion_curve),
    ):
        # Nothing deleted / everything inserted: the image itself; everything deleted / nothing inserted: the mean image.
        assert deletion[0] == pytest.approx(prediction.probabilities[target], abs=1e-6)
        assert insertion[-1] == pytest.approx(prediction.probabilities[target], abs=1e-6)
        assert deletion[-1] == pytest.approx(p_mean_image, abs=1e-6)
        assert insertion[0] == pytest.approx(p_mean_image, abs=1e-6)
    assert 0 <= f.deletion <= 1 and 0 <= f.insertion <= 1


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


@pytest.mark.parametrize("kind", ["hybrid", "classical"])
def test_a_randomised_copy_differs_in_the_middle_layer_only(kind, trained):
    model = trained[kind]
    model.train()  # the copy is in evaluation mode; the original keeps its own mode
    before, rng_state = _state(model), torch.get_rng_state()
    other = randomised_middle(model, seed=3)
    assert torch.equal(torch.get_rng_state(), rng_state)  # the global random state is left alone
    after = _state(model)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert model.training and not other.training and not any(m.training for m in other.modules())
    copied = other.state_dict()
    changed = {name for name in before if not torch.equal(before[name], copied[name])}
    assert changed and all(name.startswith("middle.") for name in changed)  # buffers (BatchNorm) are kept too
    middle = [name for name, _ in model.named_parameters() if name.startswith("middle.")]
    assert set(middle) == changed  # every parameter of the middle layer is new
    if kind == "hybrid":
        angles = other.middle.weights.detach()
        assert angles.min() >= 0 and angles.max() < 2 * math.pi
    again = randomised_middle(model, seed=3)
    assert all(torch.equal(copied[k], again.state_dict()[k]) for k in copied)  # same seed, same copy
    different = randomised_middle(model, seed=4).state_dict()
    assert any(not torch.equal(copied[k], different[k]) for k in changed)
    model.eval()


def test_a_model_without_a_middle_layer_cannot_be_randomised():
    with pytest.raises(HQCNNError, match="no quantum"):
        randomised_middle(build_model(ModelConfig(kind="backbone"), 1, 2), seed=0)


def test_rank_correlation():
    a = np.array([[0.1, 0.5], [0.3, 0.9]])
    assert rank_correlation(a, a) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    b = np.array([[0.2, 0.1], [0.8, 0.9]])  # ranks 2, 1, 3, 4 against a's 1, 3, 2, 4
    d = np.array([2, 1, 3, 4]) - np.array([1, 3, 2, 4])
    assert rank_correlation(a, b) == pytest.approx(1 - 6 * (d**2).sum() / (4 * (4**2 - 1)))
    assert math.isnan(rank_correlation(a, np.ones((2, 2))))  # a map of nothing has no ranking
    with pytest.raises(HQCNNError, match="cannot be compared"):
        rank_correlation(a, np.ones(3))


def test_the_study_uses_these_functions():
    from hqcnn.experiments.studies import interpretability

    assert interpretability.curve_areas is curve_areas and interpretability.randomised_middle is randomised_middle
    assert interpretability.STEPS == STEPS
