"""The one shared set-up of a session: kept in st.session_state, mirrored in the URL query string.

Streamlit forgets a widget's value when a page that does not show it runs, so the canonical values
live under SETTINGS_KEY and every control is bound to them through `bind`: the widget is seeded
from the canonical value and writes its new value back. The URL mirrors the canonical values so
that a teacher can share a link that opens the same set-up; values read from a URL are validated
and clamped, with a message, never trusted.

The training settings (epochs, batch size, learning rate, averaging) follow the recommended
recipe for the dataset's size until the user moves one of them: pressing Train without changing
anything must give a model that learned something, on every dataset.

This module imports no heavy library: the home page uses it and must appear at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from hqcnn.config import (
    DEPTH_RANGE,
    ENCODINGS,
    ENTANGLERS,
    IMAGE_SIZES,
    QUBITS_RANGE,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
)
from hqcnn.recipes import AVERAGE_LAST, BATCH_SIZES, LEARNING_RATES, recommended_train_config

SETTINGS_KEY = "settings"
URL_READ_KEY = "_url_read"
URL_MESSAGES_KEY = "_url_messages"


@dataclass(frozen=True)
class Setting:
    """One shared setting: its default, how to parse it from a URL, and its allowed values."""

    default: Any
    parse: Callable[[str], Any]
    choices: tuple | None = None  # allowed values, if a fixed list
    bounds: tuple[float, float] | None = None  # inclusive range, for numbers


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


SETTINGS: dict[str, Setting] = {
    "dataset": Setting("pneumoniamnist", str),
    "image_size": Setting(28, int, choices=IMAGE_SIZES),
    "grayscale": Setting(False, _bool),
    "normalize": Setting(True, _bool),
    "train_per_class": Setting(0, int, bounds=(0, 500)),  # 0 = every training image; the Data slider's range
    "noise_std": Setting(0.0, float, bounds=(0.0, 0.5)),
    "n_qubits": Setting(4, int, bounds=QUBITS_RANGE),
    "depth": Setting(2, int, bounds=DEPTH_RANGE),
    "n_features": Setting(8, int, bounds=(2, 24)),
    "entangler": Setting("ring", str, choices=ENTANGLERS),
    "encoding": Setting("layered", str, choices=ENCODINGS),
    # While "recipe" is on, the four settings after it are the recipe's for the dataset's size
    # (apply_recipe); their own defaults apply only once the user has left the recipe.
    "recipe": Setting(True, _bool),
    "epochs": Setting(5, int, bounds=(1, 100)),
    "lr": Setting(3e-3, float, choices=LEARNING_RATES),
    "batch_size": Setting(128, int, choices=BATCH_SIZES),
    "average": Setting(False, _bool),  # keep the average of the second half of training, not the best epoch
    "seed": Setting(0, int, bounds=(0, 10_000)),
    "twin": Setting(False, _bool),
}
RECIPE_SETTINGS = ("epochs", "lr", "batch_size", "average")


def settings() -> dict[str, Any]:
    """The session's canonical settings (created from defaults and the URL on first use)."""
    if SETTINGS_KEY not in st.session_state:
        st.session_state[SETTINGS_KEY] = {name: s.default for name, s in SETTINGS.items()}
    if not st.session_state.get(URL_READ_KEY):
        st.session_state[URL_READ_KEY] = True
        st.session_state[URL_MESSAGES_KEY] = _read_url(st.session_state[SETTINGS_KEY])
    return st.session_state[SETTINGS_KEY]


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _nearest(choices: tuple, value: Any) -> Any:
    """The choice nearest to a number (on a log scale for a ladder such as learning rates), else None."""
    numbers = [c for c in choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
    if len(numbers) != len(choices) or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value):
        return None
    if value > 0 and all(c > 0 for c in numbers):
        return min(numbers, key=lambda c: abs(math.log(c / value)))
    return min(numbers, key=lambda c: abs(c - value))


def clean_value(name: str, raw: Any) -> tuple[Any, str | None]:
    """A valid value for setting `name` from `raw` (text or value), with a message if it was changed.

    A number outside a setting's range or list becomes the nearest allowed one: the value a
    control can show, so that the control, the URL and the run always agree.
    """
    spec = SETTINGS[name]
    if isinstance(raw, str) and len(raw) > 40:  # the message quotes it: a link may carry anything
        raw = raw[:40] + "…"
    try:
        value = spec.parse(raw) if isinstance(raw, str) else raw
    except (TypeError, ValueError):
        return spec.default, f"{name}={raw} is not a valid value; using {_shown(spec.default)}."
    if spec.choices is not None and value not in spec.choices:
        nearest = _nearest(spec.choices, value)
        used = spec.default if nearest is None else nearest
        listed = ", ".join(map(_shown, spec.choices))
        return used, f"{name}={raw} is not one of {listed}; using {_shown(used)}."
    if spec.bounds is not None:
        low, high = spec.bounds
        if not low <= value <= high:  # NaN also fails this test and is replaced
            clamped = min(max(value, low), high) if value == value else spec.default
            used = type(spec.default)(clamped)
            return used, f"{name}={raw} is outside {low:g}–{high:g}; using {_shown(used)}."
    return value, None


def _read_url(values: dict[str, Any]) -> list[str]:
    """Copy valid query-string values into `values`; return messages about the ones changed."""
    messages = []
    query = st.query_params.to_dict()
    for name, raw in query.items():
        if name not in SETTINGS:
            continue
        value, message = clean_value(name, raw)
        values[name] = value
        if message:
            messages.append(message)
    if "recipe" not in query and any(name in query for name in RECIPE_SETTINGS):
        values["recipe"] = False  # a link that sets the training itself means those values
    if message := fit_features(values):
        messages.append(message)
    return messages


def fit_features(values: dict[str, Any]) -> str | None:
    """Clamp the feature count into n_qubits..3·n_qubits (it depends on the qubits); say so if changed."""
    n = values["n_qubits"]
    if n <= values["n_features"] <= 3 * n:
        return None
    values["n_features"] = min(max(values["n_features"], n), 3 * n)
    return f"Features must be between {n} and {3 * n} for {n} qubits; using {values['n_features']}."


def url_messages() -> list[str]:
    """Messages about values from the URL that were rejected or clamped (shown once per session)."""
    settings()
    return st.session_state.pop(URL_MESSAGES_KEY, None) or []


def apply_recipe(values: dict[str, Any], n_train: int) -> None:
    """While the recipe is on, set the training settings to the recipe's for `n_train` images."""
    if not values["recipe"]:
        return
    recipe = recommended_train_config(n_train)
    values.update(
        epochs=recipe.epochs, lr=recipe.lr, batch_size=recipe.batch_size, average=recipe.average_last > 0
    )


def leave_recipe() -> None:
    """The user changed a training setting: from now on the training settings are theirs."""
    settings()["recipe"] = False


def sync_url() -> None:
    """Write the settings that differ from the defaults into the URL query string.

    Values the recipe sets are left out while it is on: the link's reader gets the recipe for
    their dataset.
    """
    values = settings()
    derived = RECIPE_SETTINGS if values["recipe"] else ()
    wanted = {k: str(v) for k, v in values.items() if v != SETTINGS[k].default and k not in derived}
    if wanted != st.query_params.to_dict():
        st.query_params.from_dict(wanted)


def bind(
    widget: Callable[..., Any], name: str, label: str, after_change: Callable[[], None] | None = None, **kwargs: Any
) -> Any:
    """Show `widget` (e.g. st.slider) for setting `name`; its value is kept across pages.

    The widget key is "w_<name>". Its state is seeded from the canonical value whenever Streamlit
    has dropped it (after a page switch) or the value changed elsewhere, and copied back after
    every change (then `after_change` runs).
    """
    values = settings()
    key = f"w_{name}"
    if key not in st.session_state or st.session_state[key] != values[name]:
        st.session_state[key] = values[name]

    def _store() -> None:
        values[name] = st.session_state[key]
        if after_change:
            after_change()

    return widget(label, key=key, on_change=_store, **kwargs)


def run_config() -> RunConfig:
    """The RunConfig of the current settings (always valid: the widgets only offer valid values)."""
    return run_config_of(settings())


def run_config_of(v: dict[str, Any]) -> RunConfig:
    """The RunConfig that settings `v` (a session's canonical values) describe."""
    return RunConfig(
        data=DataConfig(
            dataset=v["dataset"],
            image_size=v["image_size"],
            grayscale=v["grayscale"],
            normalize=v["normalize"],
            train_per_class=v["train_per_class"] or None,
            noise_std=v["noise_std"],
            seed=v["seed"],
        ),
        model=ModelConfig(
            n_qubits=v["n_qubits"],
            depth=v["depth"],
            n_features=v["n_features"],
            entangler=v["entangler"],
            encoding=v["encoding"],
        ),
        train=TrainConfig(
            epochs=v["epochs"],
            lr=v["lr"],
            batch_size=v["batch_size"],
            seed=v["seed"],
            average_last=AVERAGE_LAST if v["average"] else 0.0,
        ),
    )
