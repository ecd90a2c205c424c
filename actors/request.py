"""`AvatarRequest`: the one request schema shared by the batch jobs, the HTTP API and the UI."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MODES = ("2d", "3d")
STYLES = ("anime", "cartoon", "realistic", "sketch")
ENGINES = ("offline", "diffusers")
HEAD_ENGINES = ("auto", "canonical", "flame")


@dataclass(frozen=True)
class AvatarRequest:
    """What to make for one photo. Call `check_inputs()` (the constructor does) before use."""

    modes: tuple[str, ...] = ("2d",)
    styles: tuple[str, ...] = ("realistic",)
    engine: str = "offline"
    seed: int = 0
    strength: float = 0.6  # img2img strength for diffusion; stylisation intensity for offline
    size: int = 512  # avatar side in pixels
    tone_lock: bool = True  # skin-tone guard on
    tone_threshold: float = 4.0  # |ΔITA| in degrees above which the guard corrects
    head_engine: str = "auto"  # 3D: FLAME when a model is configured, else the canonical mesh
    texture_size: int = 1024
    engine_options: dict[str, Any] = field(default_factory=dict)  # e.g. base_model, lora, ip_adapter, low_vram

    def __post_init__(self) -> None:
        # Accept lists and comma strings from CLIs and forms, store tuples.
        for name in ("modes", "styles"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = tuple(v.strip() for v in value.split(",") if v.strip())
            object.__setattr__(self, name, tuple(value))
        if self.styles == ("all",):
            object.__setattr__(self, "styles", STYLES)
        self.check_inputs()

    def check_inputs(self) -> None:
        """Raise one precise ValueError per broken rule."""
        if not self.modes:
            raise ValueError(f"`modes` must name at least one of {MODES}.")
        for mode in self.modes:
            if mode not in MODES:
                raise ValueError(f"Unknown mode {mode!r}: choose from {MODES}.")
        if "2d" in self.modes and not self.styles:
            raise ValueError(f"`styles` must name at least one of {STYLES} (or 'all') for 2D.")
        for style in self.styles:
            if style not in STYLES:
                raise ValueError(f"Unknown style {style!r}: choose from {STYLES} or 'all'.")
        if self.engine not in ENGINES:
            raise ValueError(f"Unknown engine {self.engine!r}: choose from {ENGINES}.")
        if self.head_engine not in HEAD_ENGINES:
            raise ValueError(f"Unknown head engine {self.head_engine!r}: choose from {HEAD_ENGINES}.")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer, got {self.seed!r}.")
        if not 0.0 < float(self.strength) <= 1.0:
            raise ValueError(f"`strength` must be in (0, 1], got {self.strength}.")
        if not (256 <= self.size <= 1024 and self.size % 8 == 0):
            raise ValueError(f"`size` must be a multiple of 8 between 256 and 1024, got {self.size}.")
        if not 0.0 < float(self.tone_threshold) <= 45.0:
            raise ValueError(f"`tone_threshold` must be in (0, 45] degrees, got {self.tone_threshold}.")
        if self.texture_size not in (256, 512, 1024, 2048):
            raise ValueError(f"`texture_size` must be 256, 512, 1024 or 2048, got {self.texture_size}.")

    def item_seed(self, item_id: str) -> int:
        """A per-item seed: stable for (request seed, input id), different across items."""
        return (self.seed * 1_000_003 + int(item_id[:12], 16)) % (2**31 - 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
