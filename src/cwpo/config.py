"""Stage configs: dataclasses validated in ``__post_init__``, loadable from YAML, overridable by flags.

Every stage has one config dataclass. :func:`add_config_args` turns its fields into CLI flags
(``--field-name``) plus ``--config FILE.yaml``; :func:`config_from_args` merges them (flags win
over the YAML, the YAML over defaults). Unknown YAML keys are errors, all reported at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from cwpo.errors import ConfigError

T = TypeVar("T")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(tp: Any) -> Any:
    """Strip Optional[...] / X | None."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _base_type(args[0])
    return tp


def _parse_bool(text: str) -> bool:
    low = str(text).lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {text!r}")


def add_config_args(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add ``--config`` and one flag per field of the dataclass ``cls`` (default: unset)."""
    parser.add_argument(
        "--config", metavar="YAML", help="YAML file with this stage's settings (flags override it)"
    )
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip or not field.init:
            continue
        tp = _base_type(hints[field.name])
        help_text = field.metadata.get("help", "")
        default = field.default if field.default is not dataclasses.MISSING else None
        if default is not None and default != "":
            help_text = f"{help_text} (default: {default})".strip()
        # argparse %-formats help strings: a field's plain-text help may hold "%" ("~30% more compute")
        kwargs: dict[str, Any] = {
            "dest": field.name,
            "default": argparse.SUPPRESS,
            "help": help_text.replace("%", "%%"),
        }
        if typing.get_origin(tp) is typing.Literal:
            kwargs["choices"] = list(typing.get_args(tp))
            kwargs["type"] = type(typing.get_args(tp)[0])
        elif tp is bool:  # a flag: bare ``--overwrite`` is true; ``--overwrite false`` also parses
            kwargs["type"] = _parse_bool
            kwargs["nargs"] = "?"
            kwargs["const"] = True
            kwargs["metavar"] = "BOOL"
        elif typing.get_origin(tp) in (list, tuple):
            kwargs["nargs"] = "+"
            (inner, *_) = typing.get_args(tp) or (str,)
            kwargs["type"] = inner if inner in (int, float, str) else str
        elif tp in (int, float, str):
            kwargs["type"] = tp
        elif tp in (dict,) or typing.get_origin(tp) is dict:
            kwargs["type"] = _parse_mapping
            kwargs["metavar"] = "K=V[,K=V]"
        else:
            kwargs["type"] = str
        parser.add_argument(_flag(field.name), **kwargs)


def _parse_mapping(text: str) -> dict:
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE pairs separated by commas, got {text!r}")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def load_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return data


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if tp is list or origin in (list, tuple):
        return "a list"
    if tp is dict or origin is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "a boolean (true/false)", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


_NO = object()


def _coerce_value(value: Any, tp: Any) -> Any:
    """``value`` converted to the type ``tp``, or ``_NO`` when it cannot be.

    Strings from YAML are converted where the intent is plain (``lr: 1e-5`` is a string to
    PyYAML); a value of the right type is returned as it is; anything else is refused, never
    guessed.
    """
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if tp is type(None):
        return None if value is None else _NO
    if origin in (typing.Union, types.UnionType):
        for arg in sorted(typing.get_args(tp), key=lambda a: a is str):  # str last: it takes scalars
            out = _coerce_value(value, arg)
            if out is not _NO:
                return out
        return _NO
    if origin is typing.Literal:
        return value if value in typing.get_args(tp) else _NO
    if tp is bool:
        if isinstance(value, bool):
            return value
        try:
            return _parse_bool(value) if isinstance(value, str | int) else _NO
        except argparse.ArgumentTypeError:
            return _NO
    if tp is int:
        if isinstance(value, bool):
            return _NO
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return _NO
        return _NO
    if tp is float:
        if isinstance(value, bool):
            return _NO
        if isinstance(value, int | float):
            return value  # an int is a number as it is (and keeps the stage cache keys it had)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                return _NO
        return _NO
    if tp is str:
        return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else _NO
    if tp is list or origin is list:
        return list(value) if isinstance(value, list | tuple) else _NO
    if origin is tuple:
        return tuple(value) if isinstance(value, list | tuple) else _NO
    if tp is dict or origin is dict:
        return value if isinstance(value, dict) else _NO
    return value  # a type this helper does not know: left to the dataclass


def coerce(cls: type, values: dict) -> tuple[dict, list[str]]:
    """``values`` converted to the field types of the dataclass ``cls``, and every type problem.

    The one type check of every stage config and of the recipe: a problem reads
    ``max_steps: expected an integer, got 'ten'``. Keys that are not fields are left as they are
    (the caller reports unknown keys).
    """
    hints = typing.get_type_hints(cls)
    out, errors = dict(values), []
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        value = _coerce_value(values[f.name], hints[f.name])
        if value is _NO:
            got = values[f.name]
            errors.append(f"{f.name}: expected {_type_name(hints[f.name])}, got {type(got).__name__} {got!r}")
        else:
            out[f.name] = value
    return out, errors


def build_config(cls: type[T], values: dict, source: str = "config") -> T:
    """Instantiate ``cls`` from a dict, refusing unknown keys and wrong types (all listed at once)."""
    values = {k.replace("-", "_"): v for k, v in values.items()}
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"{source}: unknown setting(s) {unknown} for {cls.__name__}; valid: {sorted(names)}"
        )
    values, errors = coerce(cls, values)
    if errors:
        raise ConfigError(f"{source}: " + "; ".join(errors))
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init
        and f.name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:  # named as the user gives them, not as the TypeError of cls(...) would
        flags = ", ".join("--" + name.replace("_", "-") for name in missing)
        where = "" if source == "command line" else f" (or set {', '.join(missing)} in {source})"
        raise ConfigError(f"missing {flags}{where}")
    try:
        return cls(**values)
    except TypeError as e:
        raise ConfigError(f"{source}: {e}") from None


def config_from_args(cls: type[T], args: argparse.Namespace, extra: dict | None = None) -> T:
    """YAML (``--config``) < explicit flags < ``extra``."""
    values: dict = {}
    source = "command line"
    if getattr(args, "config", None):
        values.update(load_yaml(args.config))
        source = str(args.config)
    names = {f.name for f in dataclasses.fields(cls)}
    values.update({k: v for k, v in vars(args).items() if k in names})
    values.update(extra or {})
    return build_config(cls, values, source)


def check(errors: list[str], name: str) -> None:
    """Raise one :class:`ConfigError` listing every problem found by a ``__post_init__``."""
    if errors:
        raise ConfigError(f"invalid {name}: " + "; ".join(errors))


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)
