"""Command-line flags made from the config fields' declarations (`hqcnn.config.option`).

A field's flag has the name, help, type and choices the field declares, and the field's name as
its dest. Every flag defaults to None ("not given"), so that a command fills the fields not given
from a base of its choice (the class defaults, or the training recipe) and can write back just
the flags that reproduce a config:

    add_config_arguments(parser, ModelConfig, names=("n_qubits", "depth"))
    model = config_from_args(ModelConfig, parser.parse_args(["--qubits", "5"]))
    config_to_args(model)  # ["--qubits", "5"]
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable
from typing import Any, TypeVar

from hqcnn.config import Option, options

C = TypeVar("C")  # a config dataclass


def _default_text(opt: Option) -> str:
    if opt.default_from is not None:
        return ""  # the help says what the field follows
    if opt.default is None:
        return f" (default: {opt.unset})" if opt.unset else ""
    if opt.type is bool:
        return " (default: on)" if opt.default else " (default: off)"
    shown = f"{opt.default:g}" if isinstance(opt.default, float) else str(opt.default)
    return f" (default: {shown})"


def _offered(cls: type, names: Iterable[str] | None) -> list[Option]:
    """The options of `names` (every field with a flag when None), refusing fields without one."""
    declared = options(cls)
    if names is None:
        return [opt for opt in declared.values() if opt.flag]
    chosen = []
    for name in names:
        if name not in declared or not declared[name].flag:
            raise ValueError(f"{cls.__name__}.{name} has no command-line flag")
        chosen.append(declared[name])
    return chosen


def add_config_arguments(parser: Any, cls: type, names: Iterable[str] | None = None) -> None:
    """Add to `parser` (a parser or an argument group) the flags of the fields `names` of config class `cls`.

    `names` defaults to every field that has a flag; flags are added in the order given. A yes/no
    field gets both forms (`--grayscale` / `--no-grayscale`).
    """
    for opt in _offered(cls, names):
        help_text = (opt.help + _default_text(opt)).replace("%", "%%")  # argparse formats help with %
        if opt.type is bool:
            parser.add_argument(
                opt.flag, dest=opt.name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
            continue
        extra: dict[str, Any] = {"choices": opt.choices} if opt.choices is not None else {}
        if opt.choices is None:  # with choices argparse shows them instead
            extra["metavar"] = opt.flag.lstrip("-").replace("-", "_").upper()
        parser.add_argument(opt.flag, dest=opt.name, type=opt.type, default=None, help=help_text, **extra)


def _values(config: Any) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def _resolve(cls: type, given: dict[str, Any], base: Any) -> dict[str, Any]:
    """The field values that flags `given` (field name → value) make over `base`.

    A field not given takes base's value, except a field computed from others (the features, two
    per qubit): it follows the fields given, as long as base's value follows the same rule.
    """
    values = {**_values(base), **given}
    base_values = _values(base)
    for opt in options(cls).values():
        derived = opt.default_from
        if derived is not None and opt.name not in given and base_values[opt.name] == derived(base_values):
            values[opt.name] = derived(values)
    return values


def config_from_args(
    cls: type[C], args: argparse.Namespace, base: C | None = None, names: Iterable[str] | None = None
) -> C:
    """The `cls` config that parsed `args` describe: the flags given, over `base` (default: the class defaults).

    Reads the fields `names`, by default every field of `cls` that `args` has (a flag's dest is
    its field's name, so one flag may set a field of several configs, e.g. a shared --seed).
    The config is validated: a bad value raises ConfigError with the field's message.
    """
    base = cls() if base is None else base
    wanted = list(names) if names is not None else [name for name in options(cls) if hasattr(args, name)]
    given = {name: getattr(args, name) for name in wanted if getattr(args, name, None) is not None}
    return cls(**_resolve(cls, given, base))


def _arg_text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)  # repr: a float reads back exactly


def config_to_args(config: Any, base: Any = None, names: Iterable[str] | None = None) -> list[str]:
    """The flags that make `config` from `base` (default: the class defaults) through `config_from_args`.

    Only fields that differ from base are written, and a computed field (the features) only where
    it does not follow from the others. `names` limits the fields a command offers; ValueError if
    a field that differs has no flag there. Join the result with shlex.join for a shell.
    """
    cls = type(config)
    base = cls() if base is None else base
    if type(base) is not cls:
        raise TypeError(f"base must be a {cls.__name__}, got {type(base).__name__}")
    declared = options(cls)
    current, start = _values(config), _values(base)
    derived = {name for name, opt in declared.items() if opt.default_from is not None}
    changed = {name: value for name, value in current.items() if value != start[name] and name not in derived}
    implied = _resolve(cls, changed, base)
    changed.update({name: current[name] for name in derived if implied[name] != current[name]})

    offered = {opt.name for opt in _offered(cls, names)}
    out: list[str] = []
    for name in current:  # field order
        if name not in changed:
            continue
        value = changed[name]
        if name not in offered or value is None:
            raise ValueError(f"{cls.__name__}.{name}={value!r} cannot be written as a command-line flag")
        flag = declared[name].flag
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + flag[2:])
        elif (text := _arg_text(value)).startswith("-"):
            out.append(f"{flag}={text}")  # else argparse would read the value as a flag
        else:
            out += [flag, text]
    return out
