"""Train: train the hybrid model live (optionally its classical twin) and read its test results."""

import time
from dataclasses import replace
from typing import Any

import streamlit as st

from ui import state
from ui.common import class_counts, dataset_title, ensure_dataset, user_errors
from ui.sidebar import render as render_sidebar

st.set_page_config(page_title="Train · HQCNN Explorer", page_icon="🏋️", layout="wide")
st.title("Train")
values = render_sidebar()

from hqcnn import advice, plots  # noqa: E402
from hqcnn.checkpoint import from_zip  # noqa: E402
from hqcnn.config import ModelConfig  # noqa: E402
from hqcnn.data import get_info  # noqa: E402
from hqcnn.estimate import describe_seconds  # noqa: E402
from hqcnn.folder_data import file_label  # noqa: E402
from hqcnn.markdown import md  # noqa: E402
from hqcnn.recipes import recommended_train_config  # noqa: E402
from hqcnn.references import resnet18  # noqa: E402
from ui.jobs import SCHEDULER, current_owner  # noqa: E402
from ui.sidebar import require_session_dataset  # noqa: E402
from ui.training import HYBRID, TWIN, TrainedModel, TrainingJob  # noqa: E402
from ui.uploads import file_uploader  # noqa: E402

JOB_KEY, MODELS_KEY, CURVES_KEY = "job", "models", "curves"  # curves: the figure of the last training
TEST_PROBS_KEY = "_test_probabilities"  # model key → its calibrated test-split probabilities and labels
LIVE_FIGURE_KEY, REFRESH_KEY = "_live_figure", "_live_refresh_s"
# The live part reruns every second while training (the progress bar), every few seconds while
# waiting for a slot. Building the live figure takes about 0.2 s of the one interpreter that every
# session of the server shares, so it is rebuilt at most every CHART_REFRESH_S: a class of
# trainings would otherwise keep the server too busy to answer anyone's clicks. At most a few
# hundred points keep the browser's redrawing light too.
LIVE_REFRESH_S = 1.0
WAITING_REFRESH_S = 3.0
CHART_REFRESH_S = 3.0
LIVE_MAX_POINTS = 400

with user_errors():
    info = get_info(values["dataset"])
n_train = info.training_images(values["train_per_class"])
state.apply_recipe(values, n_train)  # before the controls: they show the recipe's values
recipe = recommended_train_config(n_train)

state.bind(
    st.checkbox,
    "recipe",
    f"Use the recommended recipe for {n_train:,} training images: {recipe.epochs} epochs, batch {recipe.batch_size}, "
    f"learning rate {recipe.lr:g}, average of the second half",
    help="Small datasets need smaller batches and more epochs to reach a plateau. Moving any of the controls "
    "below leaves the recipe; tick this again to return to it.",
)
c1, c2, c3, c4 = st.columns(4)
state.bind(c1.slider, "epochs", after_change=state.leave_recipe, **state.slider_range("epochs"))
state.bind(
    c2.select_slider,
    "lr",
    after_change=state.leave_recipe,
    options=list(state.SETTINGS["lr"].choices),
    format_func=lambda v: f"{v:g}",
)
state.bind(
    c3.select_slider, "batch_size", after_change=state.leave_recipe, options=list(state.SETTINGS["batch_size"].choices)
)
state.bind(c4.number_input, "seed", step=1, **state.slider_range("seed"))
state.bind(
    st.checkbox,
    "average",
    "Keep the average of the second half of training (steadier on small datasets) instead of the best epoch",
    after_change=state.leave_recipe,
    help="Averages the weights reached at the end of each epoch of the second half (stochastic weight averaging). "
    "Without it, the epoch with the best validation AUC is kept, which a small validation set picks noisily.",
)
state.bind(
    st.checkbox,
    "twin",
    "Also train the classical twin (same network with the circuit replaced by a classical layer of the same size)",
)

config = state.run_config()
job: TrainingJob | None = st.session_state.get(JOB_KEY)
running = job is not None and job.running

if not ensure_dataset(config.data.dataset):
    st.stop()

with user_errors():
    test_counts = class_counts(config.data.dataset)["test"]
if warnings := advice.before_training(n_train, config.train.batch_size, test_counts, info.label_names):
    st.warning("\n\n".join(md(warning, limit=1000) for warning in warnings), icon="⚠️")

b1, b2, b3 = st.columns([1, 1, 4])
if b1.button("Train", type="primary", disabled=running, key="train_button"):
    with user_errors():
        job = SCHEDULER.submit(TrainingJob(config, with_twin=values["twin"], owner=current_owner()))
    st.session_state[JOB_KEY] = job
    st.session_state.pop(LIVE_FIGURE_KEY, None)  # the live figure belonged to the previous training
    running = True
if b2.button(
    "Stop",
    disabled=not running,
    key="stop_button",
    help="Stops after the current batch; keeps the best epoch, or the average so far once averaging has begun.",
):
    job.stop()
estimate_slot = b3.empty()  # filled at the end of the page: timing a few steps must not delay the rest


def _finish(job: TrainingJob) -> None:
    """Move a finished job's models and curves into the session (once)."""
    if job.error:
        st.session_state["train_error"] = job.error
    models = dict(job.models)
    if models:
        st.session_state[MODELS_KEY] = models
    st.session_state[CURVES_KEY] = _curves(job.snapshot())  # the finished curves, built once
    st.session_state[JOB_KEY] = None


def _refresh_every(job: TrainingJob | None) -> float | None:
    """How often the live part reruns: every second while training, less often while waiting."""
    if job is None or not job.running:
        return None
    return WAITING_REFRESH_S if job.waiting else LIVE_REFRESH_S


def _curves(snapshot: dict) -> Any:
    """The loss/accuracy figure of a progress snapshot."""
    hybrid = snapshot[HYBRID]
    twin = snapshot.get(TWIN)
    twin_series = (
        {"steps": twin.steps, "losses": twin.losses, "accuracies": twin.accuracies, "epochs": twin.epochs, "name": TWIN}
        if twin and twin.steps
        else None
    )
    return plots.training_curves(
        hybrid.steps,
        hybrid.losses,
        hybrid.epochs,
        accuracies=hybrid.accuracies,
        twin=twin_series,
        averaged_steps=(
            (hybrid.averaged_from_step, hybrid.total_steps) if hybrid.averaged_from_step is not None else None
        ),
        total_steps=hybrid.total_steps or None,
        max_points=LIVE_MAX_POINTS,
    )


def _live_curves(job: TrainingJob) -> Any:
    """The live figure, rebuilt at most every CHART_REFRESH_S (see there why)."""
    built_at, figure = st.session_state.get(LIVE_FIGURE_KEY, (0.0, None))
    if figure is None or time.monotonic() - built_at >= CHART_REFRESH_S:
        figure = _curves(job.snapshot())
        st.session_state[LIVE_FIGURE_KEY] = (time.monotonic(), figure)
    return figure


st.session_state[REFRESH_KEY] = _refresh_every(job)


@st.fragment(run_every=st.session_state[REFRESH_KEY])
def live_progress() -> None:
    """Progress bar and live curves, redrawn on their own while training runs (see LIVE_REFRESH_S)."""
    job: TrainingJob | None = st.session_state.get(JOB_KEY)
    if _refresh_every(job) != st.session_state.get(REFRESH_KEY):
        st.rerun()  # waiting → training → finished: a full rerun sets the new pace (and shows results)
    if job is None:
        if curves := st.session_state.get(CURVES_KEY):
            st.plotly_chart(curves, key="live_curves")
        return
    if job.waiting:
        st.info(job.waiting_message())
        return
    for name, (done, total, last) in job.latest().items():
        text = f"{name}: step {done} of {total or '…'}"
        if last:
            text += f" · epoch {last['epoch']} validation accuracy {last['val_accuracy']:.1%}"
        st.progress(done / total if total else 0.0, text=text)
    if (left := job.seconds_left()) is not None:
        st.caption(f"Time left: {describe_seconds(left)} (from the pace so far). The chart is redrawn every few seconds.")
    st.plotly_chart(_live_curves(job), key="live_curves")


live_progress()
if job is not None and not job.running:
    _finish(job)
    st.rerun()  # shows the results and re-enables the Train button

if error := st.session_state.pop("train_error", None):
    st.error(md(error, limit=1000), icon="🚫")


def show_results(models: dict[str, TrainedModel], hybrid: TrainedModel) -> None:
    """The kept model's test results beside the references, and its download."""
    if "test" not in hybrid.metrics:
        st.info("This model was saved without test metrics; explore it on the Explain page.")
        return
    test = hybrid.metrics["test"]
    if hybrid.metrics.get("stop_reason"):
        st.warning(md(hybrid.metrics["stop_reason"], limit=500))
    if warning := advice.after_training(test, hybrid.meta.label_names):
        st.warning(md(warning, limit=1000), icon="⚠️")
    st.subheader(f"Test results on {md(dataset_title(hybrid.meta.dataset))} ({test['n']:,} test images)")
    reference = resnet18(hybrid.meta.dataset)
    cols = st.columns(6)
    positive = test.get("positive")
    of = f" ({md(hybrid.meta.label_names[positive])})" if positive is not None else " (macro average)"
    for col, key, label in zip(
        cols,
        ["accuracy", "auc", "precision", "recall", "specificity", "f1"],
        ["Accuracy", "ROC-AUC", f"Precision{of}", f"Recall, sensitivity{of}", f"Specificity{of}", f"F1{of}"],
        strict=False,
    ):
        value = test[key]
        col.metric(label, "n/a" if value is None else f"{value:.3f}")
    st.caption(
        f"Majority-class baseline accuracy: {test['majority_accuracy']:.3f}. "
        + (
            f"MedMNIST ResNet-18 (28×28, ~11 M parameters): accuracy {reference.accuracy:.3f}, AUC {reference.auc:.3f}. "
            if reference
            else "No published MedMNIST reference for this dataset. "
        )
        + (f"This model: {hybrid.metrics['params']['total']:,} parameters, " if "params" in hybrid.metrics else "")
        + f"{hybrid.metrics.get('seconds_per_epoch', 0):.2f} s per epoch; kept "
        + md(hybrid.metrics.get("kept", f"epoch {hybrid.metrics.get('best_epoch', '?')}"))
        + "."
    )
    rows = {
        name: {k: m.metrics["test"][k] for k in ("accuracy", "auc", "precision", "recall", "specificity", "f1")}
        for name, m in models.items()
    }
    rows["majority-class baseline"] = {"accuracy": test["majority_accuracy"]}
    if reference:
        rows["MedMNIST ResNet-18"] = {"accuracy": reference.accuracy, "auc": reference.auc}
    st.plotly_chart(plots.metrics_comparison(rows, "Test metrics beside the references"), key="comparison")
    if TWIN in models:
        twin = models[TWIN]
        st.caption(
            "Classical twin: "
            + (f"{twin.metrics['params']['total']:,} parameters, " if "params" in twin.metrics else "")
            + f"{twin.metrics.get('seconds_per_epoch', 0):.2f} s per epoch. One seed only: differences of a few "
            "points can be chance; the Experiments page repeats runs over seeds."
        )
        if warning := advice.after_training(twin.metrics["test"], twin.meta.label_names):
            st.warning("Classical twin: " + md(warning, limit=1000), icon="⚠️")
    left, right = st.columns(2)
    labels = list(hybrid.meta.label_names)
    left.plotly_chart(plots.confusion_matrix(test["confusion"], labels), key="confusion")
    if test.get("roc"):
        right.plotly_chart(
            plots.roc_curves(test["roc"], labels, test["auc"], reference.auc if reference else None, positive),
            key="roc",
        )
    st.subheader("Reading its answers: calibration, decision threshold, model card")
    tabs = st.tabs([f"{name} model" for name in models]) if len(models) > 1 else [st.container()]
    cards = {}
    for tab, (name, model) in zip(tabs, models.items(), strict=True):
        with tab, user_errors(stop=False):
            cards[name] = show_reading(name, model, models)
    for column, (name, model) in zip(st.columns(len(models)), models.items(), strict=True):
        column.download_button(
            f"Download the {name} model (safetensors + JSON + model card, zip)",
            model.zip_bytes(cards.get(name)),
            file_name=f"hqcnn_{file_label(model.meta.dataset)}_{model.config.model.n_qubits}q_{model.config.model.kind}.zip",
            mime="application/zip",
            key=f"download_{model.config.model.kind}",
        )
    st.page_link("pages/4_Explain.py", label="Next: explain its predictions", icon="➡️")


def _test_probabilities(trained: TrainedModel, models: dict[str, TrainedModel]) -> tuple[Any, Any]:
    """Calibrated test-split probabilities (N, K) and labels (N,) of a model, computed once per
    model (the session keeps only those of its current models)."""
    cache = st.session_state.setdefault(TEST_PROBS_KEY, {})
    for key in [k for k in cache if k not in {m.key for m in models.values()}]:
        del cache[key]
    if trained.key not in cache:
        from hqcnn.data import prepare_split
        from hqcnn.posthoc import answer

        with st.spinner("Running the test split through the model…"):
            x, y = prepare_split(trained.config.data, "test", trained.meta.mean, trained.meta.std)
            cache[trained.key] = (answer(trained.model, trained.posthoc, x).probabilities, y.numpy().reshape(-1))
    return cache[trained.key]


def _set_threshold(trained: TrainedModel, key: str) -> None:
    trained.posthoc = trained.posthoc.with_threshold(st.session_state[key])


def show_reading(name: str, trained: TrainedModel, models: dict[str, TrainedModel]) -> str:
    """Calibration, the decision threshold (binary tasks) and the model card of one model; returns the card."""
    from hqcnn.metrics import operating_point
    from hqcnn.model_card import model_card

    posthoc, labels = trained.posthoc, list(trained.meta.label_names)
    probs, y = _test_probabilities(trained, models)
    calibration = trained.metrics.get("calibration")
    left, right = st.columns(2)
    if calibration:
        before, after = calibration["as_trained"], calibration["scaled"]
        left.plotly_chart(plots.reliability_diagram(calibration), key=f"reliability_{trained.key}")
        left.caption(
            f"Expected calibration error on the test split: {before['ece']:.3f} as trained "
            f"(95% interval {before['ece_ci'][0]:.3f}–{before['ece_ci'][1]:.3f}), {after['ece']:.3f} after dividing "
            f"the logits by T = {posthoc.temperature:.2f} fitted on the validation split "
            f"({after['ece_ci'][0]:.3f}–{after['ece_ci'][1]:.3f}); 0 is perfect. Among images given 80% confidence, "
            "a calibrated model is right 80% of the time. The Explain page shows the calibrated probabilities."
        )
    else:
        left.info("This model was saved without calibration: its probabilities are the raw softmax outputs.")
    if posthoc.positive is not None and posthoc.threshold is not None:
        positive = labels[posthoc.positive]
        key = f"threshold_{trained.key}"
        right.slider(
            f"Decision threshold: call {md(positive)} when its calibrated probability is at least",
            min_value=0.01,
            max_value=0.99,
            value=posthoc.threshold,
            step=0.01,
            key=key,
            on_change=_set_threshold,
            args=(trained, key),
            help="Lower: more of the images with the finding are caught (sensitivity), at the cost of more false "
            "alarms (specificity). The threshold goes with the downloaded model and is used on the Explain page.",
        )
        posthoc = trained.posthoc  # as just set
        point = operating_point(y, probs, posthoc.positive, posthoc.threshold)
        cols = right.columns(4)
        for col, (k, label) in zip(cols, [("sensitivity", "Sensitivity"), ("specificity", "Specificity"),
                                          ("ppv", "PPV"), ("npv", "NPV")], strict=True):  # fmt: skip
            col.metric(label, "n/a" if point[k] is None else f"{point[k]:.3f}")
        right.caption(
            "On the test split. PPV and NPV depend on how common the finding is; here it is "
            f"{(y == posthoc.positive).mean():.0%} of test images. "
            + (f"Youden-optimal threshold on the validation split: {posthoc.youden:.2f}." if posthoc.youden else "")
        )
        right.plotly_chart(
            plots.threshold_roc(probs[:, posthoc.positive], y == posthoc.positive, posthoc.threshold, positive,
                                posthoc.youden),
            key=f"threshold_roc_{trained.key}",
        )  # fmt: skip
        other = 1 - posthoc.positive
        confusion = [[0, 0], [0, 0]]
        confusion[posthoc.positive][posthoc.positive], confusion[posthoc.positive][other] = point["tp"], point["fn"]
        confusion[other][other], confusion[other][posthoc.positive] = point["tn"], point["fp"]
        left.plotly_chart(
            plots.confusion_matrix(confusion, labels, f"Confusion matrix at threshold {posthoc.threshold:.2f} (test set)"),
            key=f"threshold_confusion_{trained.key}",
        )
    card = model_card(
        trained.config, trained.meta, trained.metrics, trained.posthoc, dataset_title(trained.meta.dataset), probs, y
    )
    with st.expander("Model card (also in the downloaded zip)"):
        st.markdown(card)
    st.download_button(
        "Model card (Markdown)", card, f"model_card_{trained.config.model.kind}.md", "text/markdown",
        key=f"card_{trained.key}", on_click="ignore",
    )  # fmt: skip
    return card


models: dict[str, TrainedModel] = st.session_state.get(MODELS_KEY) or {}
hybrid = models.get(HYBRID) or next(iter(models.values()), None)
if hybrid is not None and not running:
    with user_errors(stop=False):  # an uploaded model's metrics.json may be incomplete
        show_results(models, hybrid)

with st.expander("Load a model saved earlier"):
    uploaded = file_uploader(
        "Model archive (.zip from the download button)",
        type=["zip"],
        key="upload_model",
        max_mb=64,  # MB; a saved model is about 0.1 MB, the loader refuses over 50 MB of weights
    )
    if uploaded is not None and st.session_state.get("_loaded_upload") != uploaded.file_id:
        with user_errors(stop=False):
            saved = TrainedModel.from_checkpoint(from_zip(uploaded.getvalue()))
            require_session_dataset(saved.meta.dataset, "This model")
            st.session_state[MODELS_KEY] = {HYBRID if saved.config.model.kind == "hybrid" else TWIN: saved}
            st.session_state.pop(CURVES_KEY, None)  # the curves belonged to the previous model
            st.session_state["_loaded_upload"] = uploaded.file_id
            st.success(
                f"Loaded a {saved.config.model.kind} model for {md(dataset_title(saved.meta.dataset))}. "
                "Open Explain to explore it."
            )


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _step_times(model: ModelConfig, in_channels: int, n_classes: int, image_size: int, batch_size: int) -> Any:
    """A few training steps of this shape timed on this server (shared by sessions; re-timed every
    10 minutes, since a server's load changes)."""
    from hqcnn.estimate import measure

    return measure(model, in_channels, n_classes, image_size, batch_size)


def estimate_text() -> str:
    """How long the configured run will take here, from steps timed on this server now."""
    from hqcnn.estimate import run_seconds

    in_channels = 1 if config.data.grayscale else info.n_channels
    models = [config.model] + ([replace(config.model, kind="classical")] if values["twin"] else [])
    seconds, per_step = 0.0, []
    for model in models:
        times = _step_times(model, in_channels, info.n_classes, config.data.image_size, config.train.batch_size)
        seconds += run_seconds(config.train, n_train, info.n_samples["val"], info.n_samples["test"], times)
        per_step.append(f"{times.train_step_s * 1000:.0f} ms")
    return (
        f"Training will take {describe_seconds(seconds)} on this server (a step timed here just now: "
        f"{' and '.join(per_step)}), plus any wait for a free place."
    )


if not running:
    with user_errors(stop=False):
        estimate_slot.caption(estimate_text())
