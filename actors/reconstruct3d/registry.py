"""The head engines this project ships (the first is the default). Adding one: a module, one line here.

"makehuman" (MakeHuman's rigged head with ARKit expressions, textured in the person's own tone) is the
default; "canonical" (MediaPipe's face mesh closed into a head) and "flame" (user-supplied FLAME
model, picked by `head_engine=auto` when its files are configured) stay selectable by name.
"""
from __future__ import annotations

from actors.engines import Registry
from actors.reconstruct3d.flame.engine import FlameHeadEngine
from actors.reconstruct3d.head import CanonicalHeadEngine
from actors.reconstruct3d.makehuman.engine import MakeHumanHeadEngine

HEAD_ENGINES = Registry("head engine", (MakeHumanHeadEngine, CanonicalHeadEngine, FlameHeadEngine))
