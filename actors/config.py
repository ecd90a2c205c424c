"""`PipelineConfig`: the one typed configuration of the engines, read by the jobs, the service and the UI.

It holds what belongs to the installation rather than to one request: each engine's `Options` (Stable
Diffusion weights, LoRA, IP-Adapter, low-VRAM mode; FLAME files; ...), the torch device and the input
guards. Jobs build it from flags, the service from `AVATAR_*` variables (and `app.py` flags); both are
generated from the same option dataclasses (`actors.options`), so a flag and its variable never drift
apart (`--base-model` ⇔ `AVATAR_BASE_MODEL`).

Engines the user configured (any option set) are kept in `engine_options`; the others run with their
defaults. Whether an engine can run here is `engine_problem(...)`: None, or the precise reason (the
service answers 422 with it, the jobs exit 2 with it).
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Mapping

from actors import options as opts
from actors.align.upscale import UpscaleOptions
from actors.engines import EngineCatalog, Registry


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Engine options and input guards. Everything defaults to the offline models that ship in packages."""

    engine_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # engine name -> its Options
    device: str | None = opts.option(
        None, help="torch device for diffusion and head fitting: cpu, cuda, cuda:1 "
                   "(default: cuda when the actor was given a GPU, else cpu)", metavar="DEVICE")
    max_bytes: int = opts.option(64 << 20, help="largest input file read, in bytes", minimum=1024)
    max_pixels: int = opts.option(40_000_000, help="decompression-bomb guard: largest image, in pixels", minimum=4096)
    render_views: bool = opts.option(True, help="render the 7 views of every head", flag="views")
    upscale: UpscaleOptions = dataclasses.field(default_factory=UpscaleOptions)  # small faces: Real-ESRGAN

    def __post_init__(self) -> None:
        object.__setattr__(self, "engine_options", dict(self.engine_options))
        self.check_inputs()

    def check_inputs(self) -> None:
        opts.check_bounds(self)
        self.upscale.check_inputs()
        if self.device is not None and not str(self.device).split(":")[0] in ("cpu", "cuda", "mps"):
            raise ValueError(f"`device` must be cpu, cuda, cuda:N or mps, got {self.device!r}.")

    def options_for(self, cls: type) -> Any:
        """The options of engine class `cls`: the configured ones, else its defaults."""
        return self.engine_options.get(cls.name) or cls.Options()

    def engine_problem(self, registry: Registry, name: str) -> str | None:
        """Why engine `name` cannot run with this configuration (one line), or None when it can."""
        cls = registry.engine_class(name)
        try:
            self.options_for(cls).check_inputs()
        except (ValueError, FileNotFoundError) as error:
            return f"The {name} {registry.kind} is not configured: {error}"
        return None

    def create(self, registry: Registry, name: str) -> Any:
        """Build engine `name` (validates its options; loads nothing)."""
        cls = registry.engine_class(name)
        return cls(self.options_for(cls), device=self.device)


def engine_groups(catalog: EngineCatalog) -> list[tuple[str, type]]:
    """(title, engine class) for every engine whose options have user-facing fields."""
    groups = []
    for kind, registry in (("2D engine", catalog.stylizers), ("3D head engine", catalog.heads)):
        for name, cls in registry.items():
            if any(True for _ in opts.specs(cls.Options)):
                groups.append((f"{kind} '{name}'", cls))
    return groups


def add_config_arguments(parser: argparse.ArgumentParser, catalog: EngineCatalog,
                         defaults: PipelineConfig | None = None, limits: bool = True) -> None:
    """Flags for `PipelineConfig` and, in one group per engine, for each engine's options (their defaults
    from `defaults`, e.g. the service's `AVATAR_*` variables, so flags win over variables). `limits`: offer
    the input limits too (the service has its own)."""
    defaults = defaults or PipelineConfig()
    group = parser.add_argument_group("engines and limits" if limits else "engines")
    opts.add_arguments(group, PipelineConfig, defaults=defaults, exclude=() if limits else ("max_bytes", "max_pixels"))
    opts.add_arguments(parser.add_argument_group("small faces", "Real-ESRGAN super-resolution before alignment"),
                       UpscaleOptions, defaults=defaults.upscale)
    for title, cls in engine_groups(catalog):
        description = cls.Options.__doc__.strip().splitlines()[0] if cls.Options.__doc__ else None
        opts.add_arguments(parser.add_argument_group(title, description), cls.Options, defaults=defaults.options_for(cls))


def _configured(catalog: EngineCatalog, read) -> dict[str, Any]:
    """The options the user set, engine by engine (`read(OptionsClass)` reads one class's values);
    engines left at their defaults are not listed."""
    configured = {}
    for _, cls in engine_groups(catalog):
        values = read(cls.Options)
        if values != cls.Options():
            configured[cls.name] = values
    return configured


def config_from_args(args: argparse.Namespace, catalog: EngineCatalog) -> PipelineConfig:
    """The config from flags added by `add_config_arguments` (ValueError with the rule on bad values)."""
    configured = _configured(catalog, lambda options: opts.from_namespace(options, args))
    return opts.from_namespace(PipelineConfig, args, engine_options=configured,
                               upscale=opts.from_namespace(UpscaleOptions, args))


def config_from_environ(catalog: EngineCatalog, environ: Mapping[str, str] | None = None, **overrides: Any) -> PipelineConfig:
    """The config from `AVATAR_*` variables (the service); `overrides` (not None) win."""
    configured = _configured(catalog, lambda options: opts.from_environ(options, environ))
    return opts.from_environ(PipelineConfig, environ, engine_options=configured,
                             upscale=opts.from_environ(UpscaleOptions, environ), **overrides)
