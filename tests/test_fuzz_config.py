"""Property-based fuzzing of every place a configuration enters from outside: JSON, the URL, the CLI."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hqcnn.__main__ import main as cli_main
from hqcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig, options
from hqcnn.errors import ConfigError, HQCNNError
from ui.state import SETTINGS, _bool, clean_value, fit_features, run_config_of

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
known_keys = st.sampled_from(["dataset", "n_qubits", "depth", "n_features", "entangler", "epochs", "lr", "seed",
                              "channels", "kind", "image_size", "noise_std", "batch_size", "evil"])  # fmt: skip


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["data", "model", "train", "other"]),
                       st.dictionaries(known_keys, json_values, max_size=5) | json_values, max_size=4))  # fmt: skip
def test_run_config_from_any_json_is_valid_or_a_clear_error(document):
    try:
        config = RunConfig.from_dict(document)
    except HQCNNError as err:
        assert str(err) and "Traceback" not in str(err)
    else:
        assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SETTINGS)), st.text(max_size=30))
def test_url_values_are_always_replaced_by_valid_ones(name, raw):
    value, message = clean_value(name, raw)
    spec = SETTINGS[name]
    if spec.choices is not None:
        assert value in spec.choices
    if spec.bounds is not None:
        assert spec.bounds[0] <= value <= spec.bounds[1]
    assert isinstance(value, type(spec.default)) or (isinstance(spec.default, float) and isinstance(value, int))
    assert message is None or name in message


@settings(max_examples=60, deadline=None)
@given(flags=st.lists(st.sampled_from(["--qubits", "--depth", "--features", "--epochs", "--lr", "--noise",
                                 "--train-per-class", "--batch-size", "--average-last"]), min_size=1, max_size=3),
       numbers=st.lists(st.text(alphabet="-0123456789.enai", min_size=1, max_size=6), min_size=3, max_size=3))  # fmt: skip
def test_cli_rejects_bad_numbers_without_traceback(flags, numbers):
    # A valid combination would train, so the dataset is a name that fails after the config is
    # built: every run must end with status 2 and a one-line message, whatever the numbers.
    argv = ["train", "--dataset", "no-such-dataset", "--out", "/nonexistent/run"]
    for flag, number in zip(flags, numbers, strict=False):
        argv += [flag, number]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            status = cli_main(argv)
        except SystemExit as exit_:  # argparse: not a number at all
            status = exit_.code
    assert status == 2
    assert "Traceback" not in err.getvalue() and err.getvalue().strip()


def _out_of_range(opt):
    if opt.choices is not None:
        return "no such value", f"{opt.what} must be one of"
    low, high = opt.bounds
    return (high + 1 if opt.type is int else high * 2 + 1), f"{opt.what} must be between"


def _config_with(cls, name, value):
    """`cls` with field `name` set to `value`, and the fields computed from others following it."""
    values = {**dataclasses.asdict(cls()), name: value}
    for opt in options(cls).values():
        if opt.default_from is not None and opt.name != name:
            values[opt.name] = opt.default_from(values)
    return cls(**values)


def test_each_declared_bound_is_the_one_validation_enforces():
    # One declaration per field: the bounds and choices it states are what a config refuses.
    for cls in (DataConfig, ModelConfig, TrainConfig):
        for opt in options(cls).values():
            if opt.type is bool or (opt.bounds is None and opt.choices is None):
                continue
            both = opt.name == "channels"  # two widths, each within the bounds
            value, message = ((8, opt.bounds[1] + 1), f"{opt.what} must be between") if both else _out_of_range(opt)
            with pytest.raises(ConfigError, match=message):
                _config_with(cls, opt.name, value)
            if opt.bounds is not None and opt.name != "n_features":  # the features' range is the qubits'
                for end in opt.bounds:
                    _config_with(cls, opt.name, (end, end) if both else end)


def test_every_value_the_app_offers_makes_a_valid_run_config():
    defaults = {name: spec.default for name, spec in SETTINGS.items()}
    for name, spec in SETTINGS.items():
        offered = list(spec.choices or ()) + list(spec.bounds or ())
        if spec.parse is _bool:
            offered = [False, True]
        for value in offered:
            values = {**defaults, name: value}
            fit_features(values)  # as the app does once the qubits change
            run_config_of(values)
