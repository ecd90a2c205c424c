"""`AvatarRequest`: the one request schema shared by the batch jobs, the HTTP API and the UI.

Every field is declared with `actors.options.option`, so the CLI flags of `jobs.generate`, the form
fields (and OpenAPI constraints) of `POST /v1/avatars` and the UI controls are generated from here.
Engine and style names are checked against an `actors.engines.EngineCatalog`
(`catalog.resolve_request(request)`), the value rules by `check_inputs()` (the constructor runs it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from actors.options import check_bounds, option

MODES = ("2d", "3d")
TEXTURE_SIZES = (256, 512, 1024, 2048)
GLB_MORPHS = ("sparse", "dense")
MAX_STYLES = 16  # a request names each style at most once; a longer list is a mistake or an attack


@dataclass(frozen=True)
class AvatarRequest:
    """What to make for one photo."""

    modes: tuple[str, ...] = option(("2d",), help="what to make: 2d, 3d or 2d,3d", choices=MODES)
    styles: tuple[str, ...] = option(("realistic",), help="2D styles, comma-separated, or all", choices="styles",
                                     flag="style")
    engine: str = option("offline", help="2D engine", choices="stylizers")
    seed: int = option(0, help="random seed (per photo: derived from this and the photo's id)", minimum=0,
                       maximum=2**31 - 1)
    strength: float = option(0.6, help="stylisation strength (img2img strength for diffusion)", minimum=0.01,
                             maximum=1.0)
    size: int = option(512, help="2D avatar side in pixels, a multiple of 8", minimum=256, maximum=1024)
    tone_lock: bool = option(True, help="skin-tone guard: correct avatars whose skin drifted from the photo's")
    tone_max_ita: float = option(2.0, help="largest |ΔITA°| the tone guard accepts", minimum=0.5, maximum=45.0)
    tone_max_hue: float = option(3.0, help="largest |Δhue°| the tone guard accepts", minimum=0.5, maximum=90.0)
    head_engine: str = option("auto", help="3D head engine (auto: flame when configured, else the default)",
                              choices="heads")
    texture_size: int = option(1024, help="3D texture side in pixels", choices=TEXTURE_SIZES)
    glb_morphs: str = option("sparse", help="GLB expression morph targets: sparse (2.5× smaller files) or dense "
                             "(for importers without glTF sparse accessors)", choices=GLB_MORPHS)

    def __post_init__(self) -> None:
        # Accept lists and comma strings from CLIs and forms; store de-duplicated tuples in order.
        for name in ("modes", "styles"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = value.split(",")
            value = tuple(dict.fromkeys(str(v).strip() for v in value if str(v).strip()))
            object.__setattr__(self, name, value)
        self.check_inputs()

    def check_inputs(self) -> None:
        """Raise one precise ValueError per broken rule (engine and style names: the catalog's job)."""
        if not self.modes:
            raise ValueError(f"`modes` must name at least one of {', '.join(MODES)}.")
        for mode in self.modes:
            if mode not in MODES:
                raise ValueError(f"Unknown mode {mode!r}: choose from {', '.join(MODES)}.")
        if "2d" in self.modes and not self.styles:
            raise ValueError("`styles` must name at least one style (or all) for 2D.")
        if len(self.styles) > MAX_STYLES:
            raise ValueError(f"`styles` names {len(self.styles)} styles; at most {MAX_STYLES}.")
        for name, kind in (("seed", int), ("size", int), ("texture_size", int)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ValueError(f"`{name}` must be an integer, got {value!r}.")
        check_bounds(self)
        if self.size % 8:
            raise ValueError(f"`size` must be a multiple of 8 between 256 and 1024, got {self.size}.")
        if self.glb_morphs not in GLB_MORPHS:
            raise ValueError(f"`glb_morphs` must be one of {', '.join(GLB_MORPHS)}, got {self.glb_morphs!r}.")
        if self.texture_size not in TEXTURE_SIZES:
            raise ValueError(f"`texture_size` must be one of {', '.join(map(str, TEXTURE_SIZES))}, got {self.texture_size}.")

    def item_seed(self, item_id: str) -> int:
        """A per-item seed: stable for (request seed, input id), different across items."""
        return (self.seed * 1_000_003 + int(item_id[:12], 16)) % (2**31 - 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "AvatarRequest":
        """A request from `to_dict()` output (unknown keys, e.g. from an older version, are dropped)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
