"""`AlignedFace`: what the alignment stage hands to every later stage."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class AlignedFace:
    """One face, aligned to the template in `actors.align.template`.

    Coordinates are crop pixels (x right, y down) unless the name says `source`.
    """

    crop: np.ndarray  # (512, 512, 3) uint8 RGB, aligned
    mask: np.ndarray  # (512, 512) uint8 person segmentation, 0..255
    landmarks: np.ndarray  # (478, 3) float32: x, y in crop pixels, z in the same pixel scale (MediaPipe's relative depth)
    skin_mask: np.ndarray  # (512, 512) bool: face skin (oval minus eyes, brows, lips, nostrils)
    source_to_crop: np.ndarray  # (2, 3) float64 similarity transform, source pixels -> crop pixels
    bbox: tuple[float, float, float, float]  # face box in source pixels: x0, y0, x1, y1
    pose: tuple[float, float, float]  # yaw, pitch, roll in degrees
    num_faces: int  # faces found in the photo (the largest one is kept)
    ita: float  # skin ITA° (see actors.metrics.skin_tone)
    mst: int  # Monk Skin Tone 1..10
    extras: dict = field(default_factory=dict)
