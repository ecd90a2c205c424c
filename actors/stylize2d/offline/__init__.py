"""The `offline` engine: classical image processing guided by landmarks and the person mask.

One module per style (`anime`, `cartoon`, `realistic`, `sketch`), each exposing
`render(face, rng, strength) -> (512×512 RGB, landmarks)`, and shared helpers: filters (Lab, smoothing,
XDoG, quantisation), cel (skin shading from the person's median skin colour), hair, features (lips),
eyes, palette, warp, regions, lines, background. No model weights beyond what alignment already used.
"""
from actors.stylize2d.offline.engine import OfflineStylizer

__all__ = ["OfflineStylizer"]
