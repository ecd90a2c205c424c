"""Option dataclasses as the one source of every user-facing setting: CLI flags, `AVATAR_*` variables, forms.

A field declared with `option(...)` carries its help, its choices (static, or the name of a catalog
list resolved at build time: "styles", "stylizers", "heads") and its numeric bounds. From that one
declaration:

- `add_arguments(group, cls)` writes argparse flags (help, choices, defaults, `--x/--no-x` for bools,
  comma lists for tuples); `from_namespace(cls, args)` reads them back;
- `from_environ(cls, environ)` reads `AVATAR_<FLAG>` variables (the service's configuration);
- `serve.api` builds the HTTP form model (OpenAPI enums, minimum/maximum) from the same fields.

The flag of a field is its name with dashes, prefixed where the class says so (`FLAG_PREFIX`, e.g.
`--diffusers-steps`), unless the field names its own (`flag="base-model"`).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import typing
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

ENV_PREFIX = "AVATAR_"


def option(default: Any = dataclasses.MISSING, *, help: str, choices: tuple | str | None = None,
           minimum: float | None = None, maximum: float | None = None, flag: str | None = None,
           metavar: str | None = None, default_factory: Callable | None = None, cli: bool = True) -> Any:
    """A dataclass field with what a CLI, an environment variable and a form need to offer it."""
    metadata = {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum, "flag": flag,
                "metavar": metavar, "cli": cli}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One user-facing option, resolved: its flag, type and constraints."""

    name: str
    flag: str  # without the leading dashes
    kind: type  # bool, int, float, str, Path or tuple (of str)
    optional: bool  # None is a valid value
    default: Any
    help: str
    choices: tuple | None
    minimum: float | None
    maximum: float | None
    metavar: str | None

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.flag.upper().replace("-", "_")


def specs(cls: type, choices: Mapping[str, tuple] | None = None) -> Iterator[OptionSpec]:
    """The `OptionSpec` of every CLI-visible field of the options dataclass `cls`, in declaration order.

    `choices` resolves named choice lists ("styles", ...) to the names a catalog offers.
    """
    prefix = getattr(cls, "FLAG_PREFIX", "")
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if "help" not in meta or not meta.get("cli", True):
            continue
        kind, optional = _kind(_field_type(cls, field))
        listed = meta.get("choices")
        if isinstance(listed, str):
            listed = tuple((choices or {}).get(listed, ()))
        default = field.default if field.default is not dataclasses.MISSING else (
            field.default_factory() if field.default_factory is not dataclasses.MISSING else None)
        yield OptionSpec(
            name=field.name, flag=meta.get("flag") or prefix + field.name.replace("_", "-"), kind=kind,
            optional=optional, default=default, help=meta["help"], choices=tuple(listed) if listed else None,
            minimum=meta.get("minimum"), maximum=meta.get("maximum"), metavar=meta.get("metavar"),
        )


def _field_type(cls: type, field: dataclasses.Field) -> Any:
    """The field's annotation, evaluated (annotations are strings under `from __future__ import annotations`)."""
    import sys

    if not isinstance(field.type, str):
        return field.type
    namespace = {"Path": Path, **vars(sys.modules[cls.__module__])}
    return eval(field.type, namespace, dict(vars(cls)))  # noqa: S307 - the project's own annotations


def _kind(hint: Any) -> tuple[type, bool]:
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    origin = typing.get_origin(hint)
    if origin is tuple:
        return tuple, optional
    if hint in (bool, int, float, str, Path):
        return hint, optional
    if typing.get_origin(hint) is typing.Union or args:  # str | Path and similar: a path-like string
        return str, optional
    raise TypeError(f"option type {hint!r} is not supported")


def add_arguments(group: argparse._ActionsContainer, cls: type, choices: Mapping[str, tuple] | None = None,
                  defaults: Any = None, exclude: tuple[str, ...] = ()) -> None:
    """Add one flag per option of `cls` (but those named in `exclude`) to an argparse parser or group;
    `from_namespace` reads them back. `defaults`: an instance whose values become the flags' defaults."""
    for spec in specs(cls, choices):
        if spec.name in exclude:
            continue
        default = getattr(defaults, spec.name) if defaults is not None else spec.default
        help_text = spec.help
        if spec.kind is bool:
            group.add_argument(f"--{spec.flag}", dest=_dest(cls, spec), action=argparse.BooleanOptionalAction,
                               default=default, help=f"{help_text} (default: {'on' if default else 'off'})")
            continue
        shown = ",".join(default) if isinstance(default, tuple) else default
        suffix = "" if shown in (None, "") else f" (default: {shown})"
        if spec.kind is tuple and spec.choices:
            suffix = f"; from {', '.join(map(str, spec.choices))}" + suffix
        group.add_argument(
            f"--{spec.flag}", dest=_dest(cls, spec), default=default, type=_parser(spec), help=help_text + suffix,
            metavar=spec.metavar or (None if spec.choices and spec.kind is not tuple else spec.flag.split("-")[-1].upper()),
            choices=spec.choices if spec.kind is not tuple else None,
        )


def _dest(cls: type, spec: OptionSpec) -> str:
    return f"{cls.__name__}.{spec.name}"


def from_namespace(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """An instance of `cls` from the flags `add_arguments` added (plus `extra` fields)."""
    values = {spec.name: getattr(args, _dest(cls, spec)) for spec in specs(cls) if hasattr(args, _dest(cls, spec))}
    return cls(**values, **extra)


def from_environ(cls: type, environ: Mapping[str, str] | None = None, **overrides: Any) -> Any:
    """An instance of `cls` from `AVATAR_<FLAG>` variables; `overrides` (not None) win. ValueError names the variable."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for spec in specs(cls):
        raw = environ.get(spec.env)
        if raw is not None:
            try:
                values[spec.name] = _parser(spec)(raw)
            except (argparse.ArgumentTypeError, ValueError) as error:
                raise ValueError(f"{spec.env}={raw!r}: {error}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**values)


def _parser(spec: OptionSpec) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        text = raw.strip()
        if spec.optional and text.lower() in ("", "none"):
            return None
        if spec.kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise argparse.ArgumentTypeError(f"expected true or false, got {raw!r}")
        if spec.kind is tuple:
            items = tuple(part.strip() for part in text.split(",") if part.strip())
            unknown = [item for item in items if spec.choices and item not in spec.choices]
            if unknown:
                raise argparse.ArgumentTypeError(f"unknown {spec.flag} {unknown[0]!r}: choose from {', '.join(spec.choices)}")
            return items
        try:
            return spec.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {spec.kind.__name__}, got {raw!r}") from None

    parse.__name__ = spec.kind.__name__  # argparse names the type in its error message
    return parse


def check_bounds(instance: Any) -> None:
    """Raise one ValueError for the first option of `instance` of the wrong type or outside its declared
    minimum/maximum/choices (the rules the CLI and the OpenAPI schema state)."""
    import math

    for spec in specs(type(instance)):
        value = getattr(instance, spec.name)
        if value is None:
            if spec.optional:
                continue
            raise ValueError(f"`{spec.name}` must be set.")
        if spec.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (spec.kind is int and not isinstance(value, int)):
                raise ValueError(f"`{spec.name}` must be {'an integer' if spec.kind is int else 'a number'}, got {value!r}.")
            if not math.isfinite(value):
                raise ValueError(f"`{spec.name}` must be finite, got {value!r}.")
            low = spec.minimum if spec.minimum is not None else -math.inf
            high = spec.maximum if spec.maximum is not None else math.inf
            if not low <= value <= high:
                raise ValueError(f"`{spec.name}` must be in [{spec.minimum}, {spec.maximum}], got {value}.")
        if spec.kind is bool and not isinstance(value, bool):
            raise ValueError(f"`{spec.name}` must be true or false, got {value!r}.")
        if spec.choices and spec.kind is not tuple and isinstance(spec.choices, tuple) and value not in spec.choices:
            raise ValueError(f"`{spec.name}` must be one of {', '.join(map(str, spec.choices))}, got {value!r}.")
