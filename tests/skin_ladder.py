"""The skin-tone ladder: each package photo's aligned face with its skin recoloured to every Monk
Skin Tone (1..10), for tone tests that cover light to dark skin without downloading photos.

Recolouring works in CIELAB on the whole visible skin (face oval and neck where the colour is skin-like,
plus the landmark skin mask grown a little): every pixel moves by the same a*, b* offset and its L*
keeps its offset from the median (scaled down for the darkest tones so shadows do not clip), so the
shading — and with it the face — is preserved. ITA° and MST are re-measured on the result.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from dataset.face import AlignedFace
from actors.metrics.skin_tone import MST_LAB, skin_pixels_lab, skin_tone
from actors.stylize2d.skin_region import skin_region

TONES = tuple(range(1, 11))


def skin_weight(face: AlignedFace, lab: np.ndarray, skin_lab: np.ndarray) -> np.ndarray:
    """0..1 weight of the skin to recolour."""
    grown = cv2.dilate(face.skin_mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    grown = cv2.GaussianBlur(grown.astype(np.float32), (0, 0), 2.0)
    region = skin_region(lab, face.landmarks, skin_lab, face.mask)
    return np.maximum(region, grown)


def recolour_skin(face: AlignedFace, tone: int) -> AlignedFace:
    """`face` with its skin moved to Monk tone `tone` (1..10), ITA°/MST re-measured."""
    if tone not in TONES:
        raise ValueError(f"`tone` must be a Monk Skin Tone 1..10, got {tone}.")
    target = MST_LAB[tone - 1].astype(np.float32)
    lab = cv2.cvtColor(face.crop.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    median = np.median(skin_pixels_lab(face.crop, face.skin_mask), axis=0).astype(np.float32)
    weight = skin_weight(face, lab, median)[..., None]
    shading = float(np.clip(target[0] / max(median[0], 1.0), 0.5, 1.0))
    moved = np.empty_like(lab)
    moved[..., 0] = target[0] + (lab[..., 0] - median[0]) * shading
    moved[..., 1:] = lab[..., 1:] + (target[1:] - median[1:])
    out = lab + (moved - lab) * weight
    out[..., 0] = np.clip(out[..., 0], 0.0, 100.0)
    rgb = np.clip(cv2.cvtColor(out, cv2.COLOR_Lab2RGB) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    ita, mst = skin_tone(rgb, face.skin_mask)
    extras = {**face.extras, "ladder_tone": tone}
    return dataclasses.replace(face, crop=rgb, ita=ita, mst=mst, extras=extras)


def build_ladder(aligned_faces: dict[str, AlignedFace]) -> list[tuple[str, AlignedFace]]:
    """[(f"{name}_mst{tone}", face)] for every photo and every tone: 20 inputs for the two package photos."""
    return [(f"{name}_mst{tone:02d}", recolour_skin(face, tone))
            for name, face in sorted(aligned_faces.items()) for tone in TONES]
