"""Why did the model say that? Attribution maps and looks inside the trained network.

Everything here returns numpy arrays and draws nothing, so the app and the CLI can plot them as
they like. Attribution methods live in a name → spec registry (the way captum and timm expose
their methods), each with a label and a one-sentence description a clinician can read:

    ATTRIBUTIONS["gradcam"].label        → "Grad-CAM"
    attribute(model, x, target=1, method="gradcam")  → (H, W) map for class 1

Every function puts the model in evaluation mode while it works (BatchNorm must use its running
statistics, not the statistics of the one image being explained) and restores the previous mode.

captum is imported only by the methods that use it: importing it takes about a second, and the
default method (saliency) is plain autograd.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hqcnn.circuit import make_qnode
from hqcnn.config import DataConfig
from hqcnn.data import load_arrays, prepare_split, preprocess
from hqcnn.errors import HQCNNError
from hqcnn.markdown import md
from hqcnn.model import HybridNet, QuantumLayer
from hqcnn.posthoc import OODDetector, PostHoc

# fn(model, x (1, C, H, W) on the model's device, target, **options) → raw attribution (C', H, W),
# C' = C for the pixel methods and 1 for Grad-CAM.
AttributionFn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class AttributionMethod:
    """One attribution method of the registry."""

    name: str
    label: str  # short human name, for menus
    description: str  # one plain sentence for a clinician
    fn: AttributionFn
    # The map's sign means something: positive values are evidence for the explained class (they
    # raise its score), negative values evidence against it. Saliency is a magnitude (how much the
    # score would move) and Grad-CAM keeps only the positive part (its ReLU): both are unsigned.
    signed: bool = False


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Evaluation mode inside the block; every submodule's own previous mode afterwards."""
    previous = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in previous.items():
            module.training = training


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)  # a hand-made model in a test may have none
    return torch.device("cpu") if parameter is None else parameter.device


def _single_image(model: HybridNet, x: torch.Tensor) -> torch.Tensor:
    """(C, H, W) or (1, C, H, W) → a detached float (1, C, H, W) copy on the model's device."""
    if not isinstance(x, torch.Tensor):
        raise HQCNNError(f"Expected an image tensor, got {type(x).__name__}.")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1:
        raise HQCNNError(f"Expected one image shaped (C, H, W) or (1, C, H, W), got shape {tuple(x.shape)}.")
    in_channels = getattr(model, "in_channels", x.shape[1])
    if x.shape[1] != in_channels:
        raise HQCNNError(f"The model takes images with {in_channels} channel(s); this one has {x.shape[1]}.")
    return x.detach().to(_device(model), torch.float32).clone()


def _check_target(model: HybridNet, target: int) -> int:
    n_classes = getattr(model, "n_classes", None)
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise HQCNNError(f"The class to explain must be a class number, got {target!r}.")
    if n_classes is not None and not 0 <= target < n_classes:
        raise HQCNNError(f"Class {target} does not exist: the model has classes 0 to {n_classes - 1}.")
    return int(target)


# --- the four methods ----------------------------------------------------------------------------


def _saliency(model: HybridNet, x: torch.Tensor, target: int) -> torch.Tensor:
    # What captum's Saliency(abs=True) computes, without importing captum for the default method.
    x = x.requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x)[0, target], x)
    return grad.abs()[0]


def _integrated_gradients(
    model: HybridNet, x: torch.Tensor, target: int, n_steps: int = 32, internal_batch_size: int | None = None
) -> torch.Tensor:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 2:
        raise HQCNNError(f"Integrated gradients needs a whole number of at least 2 steps, got {n_steps!r}.")
    from captum.attr import IntegratedGradients

    # A zero input is the training split's mean image once normalised: a neutral, "average"
    # reference rather than a black image, which would be far outside the data for an X-ray.
    baseline = torch.zeros_like(x)
    attr = IntegratedGradients(model).attribute(
        x, baselines=baseline, target=target, n_steps=n_steps, internal_batch_size=internal_batch_size
    )
    return attr[0]


def _gradcam(model: HybridNet, x: torch.Tensor, target: int) -> torch.Tensor:
    from captum.attr import LayerAttribution, LayerGradCam

    # conv2 is the last convolution: its maps are the finest that still carry class information.
    cam = LayerGradCam(model, model.backbone.conv2).attribute(x, target=target, relu_attributions=True)
    # conv2 works at half resolution (after the first pooling); bring the map back to the image.
    return LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")[0]


def occlusion_window(image_size: int) -> tuple[int, int]:
    """(window, stride) of the occlusion patch: about a seventh of the image, odd and ≥ 3; stride half of it.

    28 px → (5, 2), 64 px → (9, 4), 128 px → (19, 9). An odd window has a centre pixel.
    """
    window = max(3, round(image_size / 7))
    if window % 2 == 0:
        window += 1
    window = min(window, image_size)
    return window, max(1, window // 2)


def _occlusion(
    model: HybridNet,
    x: torch.Tensor,
    target: int,
    window: int | None = None,
    stride: int | None = None,
    perturbations_per_eval: int = 64,
) -> torch.Tensor:
    if window is None:
        window, default_stride = occlusion_window(min(x.shape[-2:]))
    else:
        default_stride = max(1, window // 2)
    stride = default_stride if stride is None else stride
    if not 1 <= window <= min(x.shape[-2:]) or not 1 <= stride <= window:
        raise HQCNNError(f"Occlusion needs 1 ≤ stride ≤ window ≤ image size; got window {window}, stride {stride}.")
    from captum.attr import Occlusion

    channels = x.shape[1]
    # The patch spans all channels, so an RGB pixel is hidden as a whole. Baseline 0 = the mean image.
    return Occlusion(model).attribute(
        x,
        sliding_window_shapes=(channels, window, window),
        strides=(channels, stride, stride),
        baselines=0.0,
        target=target,
        perturbations_per_eval=perturbations_per_eval,
    )[0]


ATTRIBUTIONS: dict[str, AttributionMethod] = {
    method.name: method
    for method in (
        AttributionMethod(
            "saliency",
            "Saliency",
            "Shows the pixels where a tiny change would most change the model's score for this class.",
            _saliency,
        ),
        AttributionMethod(
            "integrated_gradients",
            "Integrated gradients",
            "Shows how much each pixel contributed to the score compared with an average image from the training set.",
            _integrated_gradients,
            signed=True,
        ),
        AttributionMethod(
            "gradcam",
            "Grad-CAM",
            "Shows the coarse regions whose features the network's last convolution layer used for this class.",
            _gradcam,
        ),
        AttributionMethod(
            "occlusion",
            "Occlusion",
            "Shows how much the score changes when each small patch of the image is hidden.",
            _occlusion,
            signed=True,
        ),
    )
}


def attribute(model: HybridNet, x: torch.Tensor, target: int, method: str, raw: bool = False, **kwargs) -> np.ndarray:
    """Attribution map of `method` (a key of ATTRIBUTIONS) for class `target` of one image.

    x: the normalised model input, (1, C, H, W) or (C, H, W). Returns an (H, W) float64 array with
    the channels aggregated by the sum of absolute values (so ≥ 0; Grad-CAM is one channel, ≥ 0 by
    its ReLU). With `raw=True` the signed, unaggregated (C', H, W) attribution is returned instead
    (C' = C, or 1 for Grad-CAM): integrated gradients' completeness holds for that one.
    Options by method: integrated_gradients `n_steps` (32), `internal_batch_size`; occlusion
    `window`, `stride` (see `occlusion_window`), `perturbations_per_eval`.
    """
    spec = ATTRIBUTIONS.get(method) if isinstance(method, str) else None
    if spec is None:
        raise HQCNNError(f"Unknown attribution method {method!r}. Choose one of: {', '.join(ATTRIBUTIONS)}.")
    target = _check_target(model, target)
    inputs = _single_image(model, x)
    # Callers may be inside torch.no_grad() (the app is); gradient methods need autograd on.
    with _eval_mode(model), torch.enable_grad():
        attr = spec.fn(model, inputs, target, **kwargs).detach().to("cpu", torch.float64)
    if raw:
        return attr.numpy()
    return attr.abs().sum(dim=0).numpy()


def magnitude(raw: np.ndarray) -> np.ndarray:
    """(H, W) map of a raw (C', H, W) attribution: the channels' absolute values summed (≥ 0).

    What `attribute` returns (computed the same way, so the same to the last bit) and what the
    faithfulness measures rank pixels by.
    """
    return torch.as_tensor(np.asarray(raw, dtype=np.float64)).abs().sum(dim=0).numpy()


def evidence(raw: np.ndarray) -> np.ndarray:
    """(H, W) signed map of a raw (C', H, W) attribution: the channels summed with their signs.

    For a signed method (`ATTRIBUTIONS[m].signed`), positive values are evidence for the explained
    class and negative values evidence against it; for integrated gradients the map sums to the
    class score's change from the average image (completeness).
    """
    return np.asarray(raw, dtype=np.float64).sum(axis=0)


def map_scale(attr: np.ndarray) -> float:
    """The value `normalise_map` divides a map by: the 99th percentile of its magnitudes.

    A larger map of another model can be drawn on the same scale by dividing both by the larger
    of their two scales. 0 when nothing stands out (a constant map, or no finite values).
    """
    a = np.abs(np.asarray(attr, dtype=np.float64))
    a = np.where(np.isfinite(a), a, 0.0)
    if a.size == 0 or a.max() == a.min():
        return 0.0
    scale = float(np.percentile(a, 99))
    return scale if scale > 0 else float(a.max())  # fewer than 1 % of the pixels are non-zero


def normalise_map(attr: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Scale an attribution map to [0, 1] for an overlay.

    Magnitudes (absolute values) are divided by their 99th percentile (`map_scale`, or the given
    `scale`, e.g. shared with another map) and clipped, so one extreme pixel cannot wash out the
    rest. Zeros stay zeros; a constant map (nothing stands out) and non-finite values become zeros.
    """
    a = np.abs(np.asarray(attr, dtype=np.float64))
    a = np.where(np.isfinite(a), a, 0.0)
    scale = map_scale(attr) if scale is None else float(scale)
    if scale <= 0 or not np.isfinite(scale):
        return np.zeros_like(a)
    return np.clip(a / scale, 0.0, 1.0)


def normalise_signed(attr: np.ndarray, scale: float | None = None) -> np.ndarray:
    """A signed map scaled to [−1, 1] with its signs kept: divided by `map_scale` (or `scale`), clipped.

    0 stays 0 (neither for nor against), so a colour scale centred at 0 shows the two directions.
    """
    a = np.asarray(attr, dtype=np.float64)
    a = np.where(np.isfinite(a), a, 0.0)
    scale = map_scale(attr) if scale is None else float(scale)
    if scale <= 0 or not np.isfinite(scale):
        return np.zeros_like(a)
    return np.clip(a / scale, -1.0, 1.0)


# --- predictions and the middle stage ------------------------------------------------------------


def _is_hybrid(model: HybridNet) -> bool:
    return isinstance(getattr(model, "middle", None), QuantumLayer)


def _has_readout(model: HybridNet) -> bool:
    """A middle stage exists (circuit or classical twin): its output has one value per qubit."""
    return not isinstance(getattr(model, "middle", None), nn.Identity)


def _per_qubit(model: HybridNet, readout: torch.Tensor) -> torch.Tensor:
    """(..., n_qubits): the per-qubit part of the middle stage's output. With the "zz" read-out the
    head also sees ⟨Z_i Z_j⟩ of every pair, after the n ⟨Z_i⟩; those are not one qubit's values."""
    return readout[..., : model.cfg.n_qubits]


@dataclass
class Prediction:
    """The model's answer for one image."""

    probabilities: np.ndarray  # (n_classes,), sums to 1
    label_index: int  # most probable class
    readout: np.ndarray | None  # (n_qubits,) middle-stage output: ⟨Z⟩ per qubit for the hybrid; None without a middle
    angles: np.ndarray | None  # (n_features,) rotation angles fed to the circuit; hybrid only


@torch.no_grad()
def predict_one(model: HybridNet, x: torch.Tensor) -> Prediction:
    """Class probabilities, predicted class, middle-stage readout and circuit angles of one image."""
    inputs = _single_image(model, x)
    with _eval_mode(model):
        logits, readout = model.forward_with_readout(inputs)
        angles = model.circuit_angles(inputs)[0].double().cpu().numpy() if _is_hybrid(model) else None
    probabilities = torch.softmax(logits[0].double(), dim=0).cpu().numpy()
    return Prediction(
        probabilities=probabilities,
        label_index=int(probabilities.argmax()),
        readout=_per_qubit(model, readout[0]).double().cpu().numpy() if _has_readout(model) else None,
        angles=angles,
    )


@torch.no_grad()
def _batched(model: HybridNet, x: torch.Tensor, batch_size: int, fn: Callable) -> torch.Tensor:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise HQCNNError(f"batch_size must be a whole number of at least 1, got {batch_size!r}.")
    device = _device(model)
    with _eval_mode(model):
        chunks = [fn(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(chunks)


def qubit_readouts(model: HybridNet, x: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """(N, n_qubits) output of the middle stage for every image: ⟨Z⟩ of each qubit for the hybrid.

    For the classical twin these are its tanh outputs (same range, [−1, 1]). A backbone-only model
    has no middle stage: HQCNNError.
    """
    if not _has_readout(model):
        raise HQCNNError("This model has no quantum (or twin) layer, so it has no qubit read-out.")
    if len(x) == 0:
        return np.zeros((0, model.cfg.n_qubits))
    out = _batched(model, x, batch_size, lambda chunk: _per_qubit(model, model.forward_with_readout(chunk)[1]))
    return out.double().numpy()


def bloch_vectors(model: HybridNet, x: torch.Tensor) -> np.ndarray:
    """(n_qubits, 3): (⟨X⟩, ⟨Y⟩, ⟨Z⟩) of each qubit's reduced state for one image; hybrid models only.

    The circuit is re-run in float64 through PennyLane (`make_qnode(spec, observables="xyz")`) with
    the angles the model computes for this image and its trained weights, so ⟨Z⟩ is the model's
    own readout. Worth showing users: a vector's length is 1 only when its qubit is in a pure state
    of its own. When the entangling gates have correlated it with other qubits, its reduced state is
    mixed and the vector is shorter than 1 (down to 0 for a maximally entangled qubit); a circuit
    without entangler always gives length 1.
    """
    if not _is_hybrid(model):
        raise HQCNNError("Bloch vectors exist only for the hybrid model: this one has no quantum circuit.")
    inputs = _single_image(model, x)
    with torch.no_grad(), _eval_mode(model):
        angles = model.circuit_angles(inputs)[0].detach().cpu().to(torch.float64)
    layer: QuantumLayer = model.middle  # type: ignore[assignment]
    weights = layer.weights.detach().cpu().to(torch.float64)
    qnode = make_qnode(layer.spec, observables="xyz")
    with torch.no_grad():
        values = torch.stack([torch.as_tensor(v, dtype=torch.float64) for v in qnode(angles, weights)])
    return values.numpy().reshape(layer.spec.n_qubits, 3)  # qnode order is qubit-major: q0X, q0Y, q0Z, q1X…


def misclassified(model: HybridNet, x: torch.Tensor, y: torch.Tensor | np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Indices (sorted, int64) of the images whose predicted class differs from the label `y`."""
    labels = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y).reshape(-1)
    if len(labels) != len(x):
        raise HQCNNError(f"{len(x)} images but {len(labels)} labels.")
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    predicted = _batched(model, x, batch_size, lambda chunk: model(chunk).argmax(dim=1)).numpy()
    return np.flatnonzero(predicted != labels).astype(np.int64)


def probability_text(p: float) -> str:
    """A probability as a percentage that never claims certainty the model does not have.

    0.9996 is "> 99.9 %", not "100.0 %" (nor "1.000"); 0.0004 is "< 0.1 %", not "0.0 %".
    """
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise HQCNNError(f"A probability lies between 0 and 1, got {p!r}.")
    if p > 0.999:
        return "> 99.9 %"
    if p < 0.001:
        return "< 0.1 %"
    return f"{100 * p:.1f} %"


# --- how an answer is read: calibration, decision threshold, unusual images ---------------------
# Each returns Markdown: names that come from files or users are escaped with `md`.

# What each dataset's images are, in a clinician's words ("the images the model was trained on
# (PneumoniaMNIST chest X-rays)"). A user's own folder has no entry: its title alone is used.
IMAGE_KINDS = {
    "pathmnist": "colon pathology slides",
    "chestmnist": "chest X-rays",
    "dermamnist": "dermatoscope images of skin lesions",
    "octmnist": "retinal OCT scans",
    "pneumoniamnist": "chest X-rays",
    "retinamnist": "retina fundus photographs",
    "breastmnist": "breast ultrasound images",
    "bloodmnist": "blood cell microscope images",
    "tissuemnist": "kidney tissue microscope images",
    "organamnist": "abdominal CT slices",
    "organcmnist": "abdominal CT slices",
    "organsmnist": "abdominal CT slices",
}


def is_calibrated(posthoc: PostHoc | None) -> bool:
    """A temperature was fitted (a model without one, or saved before calibration existed, has T = 1)."""
    return posthoc is not None and posthoc.temperature != 1.0


def calibration_text(posthoc: PostHoc | None) -> str:
    """What the probabilities shown are: "calibrated probability (temperature T = 0.58, …)" or not calibrated."""
    if not is_calibrated(posthoc):
        return (
            "not calibrated: the model's own softmax output (no temperature was fitted for this model, "
            "for example a model file saved before calibration existed), so a probability of 90 % need not "
            "mean right 9 times in 10"
        )
    return f"calibrated probability (temperature T = {posthoc.temperature:.2f}, fitted on the validation split)"


def _threshold_number(t: float) -> str:
    return f"{t:.2f}" if round(t, 2) == t else f"{t:.3f}"


def decision_text(posthoc: PostHoc | None, label_names: list[str] | tuple[str, ...]) -> str:
    """How the predicted class is chosen: the decision threshold of a binary task, or the most probable class."""
    if posthoc is not None and posthoc.positive is not None and posthoc.threshold is not None:
        positive, other = label_names[posthoc.positive], label_names[1 - posthoc.positive]
        word = "calibrated probability" if is_calibrated(posthoc) else "probability"
        return (
            f"Called **{md(positive)}** when its {word} is at least {_threshold_number(posthoc.threshold)}, "
            f"otherwise **{md(other)}**: the decision threshold, set on the Train page."
        )
    if len(label_names) == 2:
        return "The predicted class is the more probable of the two (this model has no decision threshold)."
    return "The predicted class is the most probable one."


def ood_caption(score: float, detector: OODDetector) -> str:
    """The unusualness of one image beside the threshold and the false-alarm rate it was set for."""
    return (
        f"Unusualness {score:.1f} (how far the image's features lie from the training images'); "
        f"images above {detector.threshold:.1f} are flagged; about {100 * detector.rate:.0f} % of images "
        f"like the training data are flagged by mistake ({100 * detector.val_rate:.1f} % of the validation images were)."
    )


def ood_warning(dataset_key: str, dataset_title: str, detector: OODDetector, image: str = "This image") -> str:
    """The warning for an image the detector flags, in plain words, naming what the model was trained on."""
    kind = IMAGE_KINDS.get(dataset_key)
    trained_on = f"{md(dataset_title)} {kind}" if kind else md(dataset_title)
    return (
        f"**{image} does not look like the images the model was trained on ({trained_on})**: its features "
        f"are farther from them than {100 * (1 - detector.rate):.0f} % of the validation images. "
        "The prediction below may mean nothing."
    )


NO_OOD_CHECK = (
    "No unusual-image check is available for this model (it was saved without an out-of-distribution "
    "detector): nothing warns when an image is unlike the training data."
)


# --- a whole split, a little at a time -----------------------------------------------------------


class SplitImages:
    """One split of a model's dataset, prepared exactly as in training, but only as far as asked.

    Showing one test image needs one image: preparing the whole split up front takes seconds and,
    at 128 px, tens to hundreds of MB per model. With added noise (`cfg.noise_std > 0`) the split is
    prepared whole, once, because its noise is drawn for the split at once and one image's share of
    it cannot be drawn alone.
    """

    def __init__(self, cfg: DataConfig, mean: tuple[float, ...], std: tuple[float, ...], split: str = "test") -> None:
        self.cfg, self.mean, self.std = cfg, tuple(mean), tuple(std)
        self._raw, self.labels = load_arrays(cfg.dataset, cfg.source_size)[split]  # read-only (N, H, W[, 3]), (N,)
        self._whole = prepare_split(cfg, split, mean, std)[0] if cfg.noise_std > 0 else None

    def __len__(self) -> int:
        return len(self.labels)

    def images(self, start: int, stop: int) -> torch.Tensor:
        """Model inputs (n, C, H, W) of images start..stop-1."""
        if not 0 <= start <= stop <= len(self):
            raise HQCNNError(f"Images {start} to {stop - 1} do not exist: the split has {len(self)}.")
        if self._whole is not None:
            return self._whole[start:stop].clone()  # the split itself may be shared: callers get their own
        return preprocess(self._raw[start:stop], self.cfg, self.mean, self.std)

    def image(self, index: int) -> torch.Tensor:
        """Model input (1, C, H, W) of image `index`."""
        return self.images(index, index + 1)

    @property
    def values_per_image(self) -> int:
        """Input values of one image (channels × pixels): what a forward pass costs grows with it."""
        channels = 1 if self._raw.ndim == 3 or self.cfg.grayscale else 3
        return channels * self.cfg.image_size**2

    @property
    def chunk(self) -> int:
        """Images per forward pass: about a million input values, so a chunk takes well under a second."""
        return max(16, min(1024, 2**20 // self.values_per_image))


class SplitPass:
    """Predicted class and middle-stage read-out of every image of a split, a chunk at a time.

    Each `advance()` computes one more chunk, so a page can show progress, and a page run that is
    interrupted between chunks (Streamlit stops a run when the user clicks) resumes where it stopped.
    """

    def __init__(self, model: HybridNet, split: SplitImages, chunk: int | None = None) -> None:
        if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
            raise HQCNNError(f"chunk must be a whole number of at least 1, got {chunk!r}.")
        self.model, self.split = model, split
        self.chunk = split.chunk if chunk is None else chunk
        self.done = 0
        self._predicted: list[np.ndarray] = []
        self._logits: list[np.ndarray] = []
        self._readouts: list[np.ndarray] = []

    @property
    def complete(self) -> bool:
        """Every image has been through the model."""
        return self.done >= len(self.split)

    @property
    def fraction(self) -> float:
        """Share of the split done, 0..1."""
        return self.done / len(self.split) if len(self.split) else 1.0

    @torch.no_grad()
    def advance(self) -> bool:
        """Run the next chunk through the model; True once the split is complete."""
        if self.complete:
            return True
        stop = min(self.done + self.chunk, len(self.split))
        x = self.split.images(self.done, stop).to(_device(self.model))
        with _eval_mode(self.model):
            logits, readout = self.model.forward_with_readout(x)
        self._predicted.append(logits.argmax(dim=1).cpu().numpy().astype(np.int64))
        self._logits.append(logits.double().cpu().numpy())
        if _has_readout(self.model):
            self._readouts.append(_per_qubit(self.model, readout).double().cpu().numpy())
        self.done = stop
        return self.complete

    def run(self) -> SplitPass:
        """Complete the pass at once."""
        while not self.advance():
            pass
        return self

    def _require_complete(self) -> None:
        if not self.complete:
            raise HQCNNError(f"Only {self.done} of {len(self.split)} images have been through the model so far.")

    @property
    def predicted(self) -> np.ndarray:
        """(N,) int64 predicted class of every image."""
        self._require_complete()
        return np.concatenate(self._predicted) if self._predicted else np.zeros(0, dtype=np.int64)

    @property
    def readouts(self) -> np.ndarray | None:
        """(N, n_qubits) middle-stage output of every image (see `qubit_readouts`); None without a middle stage."""
        self._require_complete()
        if not _has_readout(self.model):
            return None
        return np.concatenate(self._readouts) if self._readouts else np.zeros((0, self.model.cfg.n_qubits))

    @property
    def misclassified(self) -> np.ndarray:
        """Indices (sorted, int64) of the images whose predicted class is not their label."""
        return np.flatnonzero(self.predicted != self.split.labels).astype(np.int64)

    @property
    def logits(self) -> np.ndarray:
        """(N, n_classes) float64 logits of every image."""
        self._require_complete()
        return np.concatenate(self._logits) if self._logits else np.zeros((0, self.model.n_classes))

    def misclassified_under(self, posthoc: PostHoc | None) -> np.ndarray:
        """Like `misclassified`, with each image's class called as `posthoc` calls it (a binary task's
        threshold); the most probable class without one."""
        if posthoc is None:
            return self.misclassified
        called = posthoc.decide(posthoc.probabilities(torch.from_numpy(self.logits)))
        return np.flatnonzero(called != np.asarray(self.split.labels).reshape(-1)).astype(np.int64)
