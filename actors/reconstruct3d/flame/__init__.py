"""FLAME head engine: safe loading of the user's FLAME files, FLAME in PyTorch, batched landmark fitting.

Modules: `safe_pickle` (restricted unpickler), `assets` (model and UV files), `embedding` (MediaPipe
landmark embedding), `model` (FLAME forward / LBS), `camera`, `ridge`, `fitter` (the fit), `engine`
(`FlameHeadEngine` → `HeadMesh`), `synthetic` (a FLAME-format model for tests and benchmarks).
Names below are imported lazily, so importing this package does not import torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "FlameHeadEngine": "engine",
    "FlameFitter": "fitter",
    "FitConfig": "fitter",
    "FitResult": "fitter",
    "FlameModel": "model",
    "FlameAssets": "assets",
    "load_flame_model": "assets",
    "load_flame_texture": "assets",
    "LandmarkEmbedding": "embedding",
    "load_landmark_embedding": "embedding",
    "UnsafePickleError": "safe_pickle",
    "FlameFileError": "safe_pickle",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
