"""Real face photos that ship inside packages, for tests that need real skin, hair and lighting.

The photos live in `tests/fixtures/faces/` (one face each, JPEG, long side ≤ 800 px); `SOURCES.md`
beside them names each file's package, path, licence and measured skin tone. This module imports
nothing from the project so any test (or benchmark) can use it without pulling in a stage.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

FACES_DIR = Path(__file__).resolve().parent / "fixtures" / "faces"
SUFFIXES = (".jpg", ".jpeg", ".png")


def real_face_paths() -> list[Path]:
    """Every fixture photo, sorted by name (stable test ids)."""
    paths = sorted(p for p in FACES_DIR.iterdir() if p.suffix.lower() in SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"No face photos in {FACES_DIR}: the fixtures are missing from this checkout.")
    return paths


def load_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file (EXIF orientation applied)."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB")).copy()
