"""Engines by name. Entries are dotted paths, imported on first use so heavy engines stay unloaded."""
from __future__ import annotations

import importlib
from typing import Any

from actors.stylize2d.protocol import Stylizer

ENGINES = {
    "offline": "actors.stylize2d.offline:OfflineStylizer",
    "diffusers": "actors.stylize2d.diffusers_engine:DiffusersStylizer",
}


def available_engines() -> tuple[str, ...]:
    """Names `create_engine` accepts."""
    return tuple(ENGINES)


def engine_class(name: str) -> type:
    """The engine class registered under `name` (imports its module)."""
    if name not in ENGINES:
        raise ValueError(f"Unknown stylizer engine {name!r}: choose from {available_engines()}.")
    module_name, _, attribute = ENGINES[name].partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError as error:
        raise ImportError(f"Engine {name!r}: {module_name} has no {attribute!r}.") from error


def create_engine(name: str, **options: Any) -> Stylizer:
    """Build the engine registered under `name`, forwarding `options` to its constructor."""
    return engine_class(name)(**options)
