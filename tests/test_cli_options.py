"""Command-line flags made from the config declarations: adding, reading and writing them back."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hqcnn.cli_options import add_config_arguments, config_from_args, config_to_args
from hqcnn.config import DataConfig, ModelConfig, Option, TrainConfig, options
from hqcnn.errors import ConfigError

CLASSES = (DataConfig, ModelConfig, TrainConfig)
EXPERIMENT_NAMES = ("n_qubits", "depth", "n_features", "entangler", "encoding")


def _parser(cls: type, names=None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_config_arguments(parser, cls, names)
    return parser


def _parse(cls: type, argv: list[str], names=None, base=None):
    return config_from_args(cls, _parser(cls, names).parse_args(argv), base=base, names=names)


def test_every_declared_field_with_a_flag_has_help_and_a_valid_default():
    for cls in CLASSES:
        assert cls() == cls(**{name: opt.default for name, opt in options(cls).items()})
        for opt in options(cls).values():
            assert opt.help, (cls.__name__, opt.name)
            if opt.default_from is not None:  # the declared default follows the declared rule
                assert opt.default == opt.default_from(dataclasses.asdict(cls()))


def test_unset_flags_take_the_class_defaults_or_the_base():
    for cls in CLASSES:
        assert _parse(cls, []) == cls()
    base = TrainConfig(epochs=30, lr=1e-2, average_last=0.5)
    assert _parse(TrainConfig, ["--epochs", "4"], base=base) == dataclasses.replace(base, epochs=4)


def test_flags_names_types_and_both_forms_of_a_yes_no_field():
    data = _parse(DataConfig, ["--noise", "0.25", "--no-normalize", "--grayscale", "--train-per-class", "7"])
    assert (data.noise_std, data.normalize, data.grayscale, data.train_per_class) == (0.25, False, True, 7)
    model = _parse(ModelConfig, ["--model", "classical", "--qubits", "3", "--no-batch-norm"])
    assert (model.kind, model.n_qubits, model.batch_norm) == ("classical", 3, False)
    assert _parse(TrainConfig, ["--augment"]).augment is True and _parse(TrainConfig, ["--no-augment"]).augment is False
    with pytest.raises(argparse.ArgumentError):  # a field with choices refuses others while parsing
        _parser(ModelConfig).parse_args(["--entangler", "star"])


def test_bad_values_give_the_fields_messages():
    with pytest.raises(ConfigError, match="qubits must be between 2 and 8, got 9"):
        _parse(ModelConfig, ["--qubits", "9"])
    with pytest.raises(ConfigError, match="features must be between 4 and 12, got 3"):
        _parse(ModelConfig, ["--features", "3"])


def test_features_follow_the_qubits_unless_given():
    assert _parse(ModelConfig, ["--qubits", "5"]).n_features == 10
    assert _parse(ModelConfig, ["--qubits", "5", "--features", "7"]).n_features == 7
    # A base that does not follow the rule keeps its own feature count.
    base = ModelConfig(n_qubits=4, n_features=12)
    assert _parse(ModelConfig, ["--depth", "3"], base=base).n_features == 12


def test_only_the_fields_offered_are_added_and_read():
    parser = _parser(ModelConfig, EXPERIMENT_NAMES)
    flags = {s for action in parser._actions for s in action.option_strings} - {"-h", "--help"}
    assert flags == {"--qubits", "--depth", "--features", "--entangler", "--encoding"}
    with pytest.raises(ValueError, match="no command-line flag"):
        _parser(ModelConfig, ["channels"])
    # A namespace with other commands' values: only this config's fields are read.
    args = argparse.Namespace(n_qubits=3, dataset="breastmnist", seed=5, epochs=None)
    assert config_from_args(ModelConfig, args) == ModelConfig(n_qubits=3, n_features=6)
    assert config_from_args(TrainConfig, args) == TrainConfig(seed=5)


def test_config_to_args_writes_only_what_differs():
    assert config_to_args(ModelConfig()) == []
    assert config_to_args(ModelConfig(n_qubits=5, n_features=10)) == ["--qubits", "5"]  # the features follow
    assert config_to_args(ModelConfig(n_qubits=5, n_features=8)) == ["--qubits", "5", "--features", "8"]
    assert config_to_args(ModelConfig(n_features=12)) == ["--features", "12"]
    assert config_to_args(DataConfig(normalize=False, grayscale=True, noise_std=0.1)) == [
        "--grayscale", "--no-normalize", "--noise", "0.1",
    ]  # fmt: skip
    base = TrainConfig(epochs=30, lr=1e-2)
    assert config_to_args(TrainConfig(epochs=30, lr=3e-4), base) == ["--lr", "0.0003"]
    assert config_to_args(DataConfig(dataset="-odd"), names=["dataset"]) == ["--dataset=-odd"]


def test_config_to_args_refuses_what_the_flags_cannot_say():
    with pytest.raises(ValueError, match="channels"):
        config_to_args(ModelConfig(channels=(4, 8)))
    with pytest.raises(ValueError, match="kind"):  # offered elsewhere, not by this command
        config_to_args(ModelConfig(kind="classical"), names=EXPERIMENT_NAMES)
    with pytest.raises(ValueError, match="train_per_class"):  # no flag unsets a value
        config_to_args(DataConfig(), base=DataConfig(train_per_class=5))
    with pytest.raises(TypeError):
        config_to_args(ModelConfig(), base=TrainConfig())


def _value(opt: Option) -> st.SearchStrategy:
    if opt.choices is not None:
        strategy = st.sampled_from(opt.choices)
    elif opt.type is bool:
        strategy = st.booleans()
    elif opt.type is int:
        strategy = st.integers(*opt.bounds)
    elif opt.type is float:
        strategy = st.floats(*opt.bounds, allow_nan=False)
    else:
        strategy = st.sampled_from(["pneumoniamnist", "breastmnist", "my images/x-rays", "-starts-with-a-dash"])
    return st.none() | strategy if opt.optional else strategy


@st.composite
def configs(draw: st.DrawFn, cls: type):
    """A valid config of `cls`, its flagged fields drawn from what they declare."""
    values = {name: draw(_value(opt)) for name, opt in options(cls).items() if opt.flag}
    try:
        return cls(**values)
    except ConfigError:  # e.g. more features than the qubits take
        assume(False)


@pytest.mark.parametrize("cls", CLASSES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_args_config_args_config_round_trip(cls, data):
    config, base = data.draw(configs(cls)), data.draw(st.none() | configs(cls))
    try:
        argv = config_to_args(config, base)
    except ValueError:  # an optional field set in base and unset in config: no flag says "unset"
        assume(False)
    again = _parse(cls, argv, base=base)
    assert again == config
    assert config_to_args(again, base) == argv
    # The experiment command's subset of the model's fields round-trips the same way.
    if cls is ModelConfig and base is None:
        subset = dataclasses.replace(ModelConfig(), **{name: getattr(config, name) for name in EXPERIMENT_NAMES})
        argv = config_to_args(subset, names=EXPERIMENT_NAMES)
        assert _parse(ModelConfig, argv, names=EXPERIMENT_NAMES) == subset
