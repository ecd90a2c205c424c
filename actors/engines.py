"""Engine registries and the catalog every user-facing list of names is derived from.

Each engine class carries its own `name` (and, for 2D engines, its `styles`), so a registry is
`{cls.name: cls}` and every name exists once. The CLI's choices, the API's OpenAPI enums, the UI's
radio buttons and request validation all read an `EngineCatalog`; adding an engine is one module and
one line in its kind's registry (`actors.stylize2d.registry`, `actors.reconstruct3d.registry`).
Registries and catalogs are immutable: a test (or a plug-in) makes an extended copy with `with_engine`
and hands it to the CLI, the app and the UI.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

if TYPE_CHECKING:
    from actors.request import AvatarRequest

AUTO_HEAD = "auto"  # the head engine chosen from the configuration (see EngineCatalog.resolve_head)
ALL_STYLES = "all"


class Registry(Mapping[str, type]):
    """Engine classes of one kind by their `name`, in registration order (the first is the default)."""

    def __init__(self, kind: str, classes: Iterable[type]) -> None:
        self.kind = kind
        self._classes: dict[str, type] = {}
        for cls in classes:
            for attribute in ("name", "Options"):
                if not hasattr(cls, attribute):
                    raise TypeError(f"{cls.__name__} is not a {kind}: it has no `{attribute}`.")
            if cls.name in self._classes:
                raise ValueError(f"Two {kind}s are named {cls.name!r}.")
            self._classes[cls.name] = cls
        if not self._classes:
            raise ValueError(f"A {kind} registry needs at least one engine.")

    def __getitem__(self, name: str) -> type:
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._classes)

    @property
    def default(self) -> str:
        return self.names[0]

    def engine_class(self, name: str) -> type:
        """The class registered under `name`; ValueError naming the choices otherwise."""
        if name not in self._classes:
            raise ValueError(f"Unknown {self.kind} {name!r}: choose from {', '.join(self.names)}.")
        return self._classes[name]

    def with_engine(self, cls: type) -> "Registry":
        """A copy with `cls` added (after the existing engines)."""
        return Registry(self.kind, [*self._classes.values(), cls])


@dataclasses.dataclass(frozen=True)
class EngineCatalog:
    """The 2D and 3D engines on offer."""

    stylizers: Registry
    heads: Registry

    @property
    def styles(self) -> tuple[str, ...]:
        """Every style some 2D engine offers, in first-seen order."""
        seen: dict[str, None] = {}
        for cls in self.stylizers.values():
            seen.update(dict.fromkeys(cls.styles))
        return tuple(seen)

    def choices(self) -> dict[str, tuple[str, ...]]:
        """The named choice lists option fields refer to (`actors.options.option(choices="...")`)."""
        return {
            "styles": (*self.styles, ALL_STYLES),
            "stylizers": self.stylizers.names,
            "heads": (AUTO_HEAD, *self.heads.names),
        }

    def with_stylizer(self, cls: type) -> "EngineCatalog":
        return dataclasses.replace(self, stylizers=self.stylizers.with_engine(cls))

    def with_head(self, cls: type) -> "EngineCatalog":
        return dataclasses.replace(self, heads=self.heads.with_engine(cls))

    def resolve_request(self, request: "AvatarRequest") -> "AvatarRequest":
        """The request with its names checked against this catalog and `styles=all` expanded to the
        engine's styles. One precise ValueError per broken rule."""
        engine = self.stylizers.engine_class(request.engine)
        if request.head_engine != AUTO_HEAD:
            self.heads.engine_class(request.head_engine)
        styles = request.styles
        if ALL_STYLES in styles:
            if styles != (ALL_STYLES,):
                raise ValueError(f"`{ALL_STYLES}` cannot be combined with other styles, got {','.join(styles)}.")
            styles = tuple(engine.styles)
        for style in styles:
            if style not in engine.styles:
                offered = ", ".join(engine.styles)
                if style in self.styles:
                    raise ValueError(f"The {engine.name} engine has no style {style!r}: it offers {offered}.")
                raise ValueError(f"Unknown style {style!r}: choose from {offered} (or {ALL_STYLES}).")
        return dataclasses.replace(request, styles=styles) if styles != request.styles else request

    def resolve_head(self, requested: str, configured: Mapping[str, Any]) -> str:
        """The head engine for a request: its own choice, or for `auto` the first registered engine whose
        options were configured by the user (FLAME with its files), else the registry's default."""
        if requested != AUTO_HEAD:
            return self.heads.engine_class(requested).name
        for name in self.heads.names:
            if getattr(self.heads[name], "AUTO_WHEN_CONFIGURED", False) and name in configured:
                return name
        return self.heads.default


def default_catalog() -> EngineCatalog:
    """The engines this project ships."""
    from actors.reconstruct3d.registry import HEAD_ENGINES
    from actors.stylize2d.registry import STYLIZERS

    return EngineCatalog(stylizers=STYLIZERS, heads=HEAD_ENGINES)
