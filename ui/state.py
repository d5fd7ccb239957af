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

from hqcnn.config import DataConfig, ModelConfig, Option, RunConfig, TrainConfig, features_range, field_option
from hqcnn.recipes import AVERAGE_LAST, BATCH_SIZES, LEARNING_RATES, recommended_train_config

SETTINGS_KEY = "settings"
URL_READ_KEY = "_url_read"
URL_MESSAGES_KEY = "_url_messages"


@dataclass(frozen=True)
class Setting:
    """One shared setting: its default, how to parse it from a URL, its allowed values, label and help."""

    default: Any
    parse: Callable[[str], Any]
    choices: tuple | None = None  # allowed values, if a fixed list
    bounds: tuple[float, float] | None = None  # inclusive range, for numbers
    label: str = ""  # its control's label
    help: str | None = None  # its control's tooltip


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


PARSERS: dict[type, Callable[[str], Any]] = {bool: _bool, int: int, float: float, str: str}


def _within(opt: Option, value: Any) -> bool:
    if opt.choices is not None:
        return value in opt.choices
    return opt.bounds is None or opt.bounds[0] <= value <= opt.bounds[1]


def _of_field(cls: type, name: str, *, high: Any = None, choices: tuple | None = None) -> Setting:
    """The setting of config field `name`: its default, allowed values, parser, label and help.

    `high` (a lower maximum) or `choices` (a short list) narrow what the app offers; they must lie
    within what the field accepts, so that every value the app offers makes a valid config.
    """
    opt = field_option(cls, name)
    bounds = opt.bounds if opt.choices is None else None
    if high is not None:
        bounds = (opt.bounds[0], high)
    offered = [*(choices or ()), *(bounds or ())]
    if not all(_within(opt, value) for value in offered):
        raise ValueError(f"the app offers {name} values that {cls.__name__} refuses")
    return Setting(
        default=opt.default,
        parse=PARSERS[opt.type],
        choices=choices or opt.choices,
        bounds=None if choices else bounds,
        label=opt.label,
        help=opt.help or None,
    )


_PER_CLASS = field_option(DataConfig, "train_per_class")

# The settings a session shares, mostly one config field each: its default, values and words are
# the field's (hqcnn/config.py). Where the app offers less than the field accepts, the narrower
# range is its control's (a slider must stay usable) and is marked beside it.
SETTINGS: dict[str, Setting] = {
    "dataset": _of_field(DataConfig, "dataset"),
    "image_size": _of_field(DataConfig, "image_size"),
    "grayscale": _of_field(DataConfig, "grayscale"),
    "normalize": _of_field(DataConfig, "normalize"),
    # App-only form of DataConfig.train_per_class: 0 stands for every training image (None there),
    # and 0..500 is the Data slider's range.
    "train_per_class": Setting(0, int, bounds=(0, 500), label=f"{_PER_CLASS.label} (0 = all)", help=_PER_CLASS.help),
    "noise_std": _of_field(DataConfig, "noise_std", high=0.5),  # the Data slider's range: stronger noise hides the images
    "n_qubits": _of_field(ModelConfig, "n_qubits"),
    "depth": _of_field(ModelConfig, "depth"),
    "n_features": _of_field(ModelConfig, "n_features"),  # the widest range; fit_features applies the qubits'
    "entangler": _of_field(ModelConfig, "entangler"),
    "encoding": _of_field(ModelConfig, "encoding"),
    "readout": _of_field(ModelConfig, "readout"),
    # While "recipe" is on (the default) the four settings after it are the recipe's for the
    # dataset's size (apply_recipe): the app's training defaults are the recipe, so that pressing
    # Train without changing anything learns on every dataset. The settings' own defaults, the
    # library's, apply only once the user (or a link) has left the recipe.
    "recipe": Setting(True, _bool),
    "epochs": _of_field(TrainConfig, "epochs", high=100),  # the Train slider's range
    "lr": _of_field(TrainConfig, "lr", choices=LEARNING_RATES),  # the ladder the app offers
    "batch_size": _of_field(TrainConfig, "batch_size", choices=BATCH_SIZES),  # the sizes the app offers
    # App-only form of TrainConfig.average_last: on is the recipe's AVERAGE_LAST, the second half.
    "average": Setting(field_option(TrainConfig, "average_last").default > 0, _bool),
    # One seed for the data (subset, noise) and the training; 0..10000 is the Train page's input
    # range, a number short enough to read out and type in.
    "seed": _of_field(TrainConfig, "seed", high=10_000),
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
    """Clamp the feature count into the range the qubit count allows (n..3n); say so if changed."""
    n = values["n_qubits"]
    low, high = features_range(n)
    if low <= values["n_features"] <= high:
        return None
    values["n_features"] = min(max(values["n_features"], low), high)
    return f"Features must be between {low} and {high} for {n} qubits; using {values['n_features']}."


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


def slider_range(name: str) -> dict[str, Any]:
    """`min_value` and `max_value` for a slider or number input of setting `name`: its bounds."""
    low, high = SETTINGS[name].bounds
    return {"min_value": low, "max_value": high}


def bind(
    widget: Callable[..., Any],
    name: str,
    label: str | None = None,
    after_change: Callable[[], None] | None = None,
    **kwargs: Any,
) -> Any:
    """Show `widget` (e.g. st.slider) for setting `name`; its value is kept across pages.

    The label and help are the setting's unless given. The widget key is "w_<name>". Its state is
    seeded from the canonical value whenever Streamlit has dropped it (after a page switch) or the
    value changed elsewhere, and copied back after every change (then `after_change` runs).
    """
    spec = SETTINGS[name]
    label = spec.label if label is None else label
    if spec.help and "help" not in kwargs:
        kwargs["help"] = spec.help
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
            readout=v["readout"],
        ),
        train=TrainConfig(
            epochs=v["epochs"],
            lr=v["lr"],
            batch_size=v["batch_size"],
            seed=v["seed"],
            average_last=AVERAGE_LAST if v["average"] else 0.0,
        ),
    )
