"""Texel masks of a MakeHuman head's atlas for tests, built without the baker's code.

The skin triangles' UV corners are filled into a label image with OpenCV (`cv2.fillConvexPoly`, not
the project's rasteriser); each texel takes its triangle's centroid as its place on the head (neutral
`HeadMesh.vertices`, metres). Regions:

- face: MakeHuman's face mask (`mpfb_face.jpg`, read with PIL) above 0.9, minus its lips and eyelids
  masks (> 0.05) and the brows (a band from 0.8 to 3 cm above the eyeballs' centres): the face's
  skin, the part a photo shows.
- scalp: the top 5 cm of the head (what hair covers, skin under a cap, or a bald crown).
- neck: 16–22 cm below the eyes, within 5 cm of the midline (under the jaw, above the shoulders).
- ears: MakeHuman's ear mask (`mpfb_ears.jpg`) above 0.5.
"""
from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from actors.reconstruct3d.makehuman.assets import mpfb_dir


def _mask(name: str, size: int) -> np.ndarray:
    with Image.open(mpfb_dir() / "textures" / f"mpfb_{name}.jpg") as image:
        return np.asarray(image.convert("L").resize((size, size), Image.BILINEAR), dtype=np.float64) / 255.0


def texel_regions(mesh, size: int) -> dict[str, np.ndarray]:
    """{"face", "scalp", "neck", "ears"}: (size, size) bool masks over `mesh`'s skin texels."""
    skin = next(part for part in mesh.parts if part.name == "skin")
    faces, uv_faces = mesh.faces[skin.faces], mesh.uv_faces[skin.faces]
    corners = mesh.uvs[uv_faces]
    pixels = np.round(np.stack([corners[..., 0] * size - 0.5, (1.0 - corners[..., 1]) * size - 0.5], axis=-1)).astype(np.int32)
    label = np.full((size, size), -1, np.int32)
    for index, triangle in enumerate(pixels):
        cv2.fillConvexPoly(label, triangle, index)
    covered = label >= 0
    centroid = mesh.vertices[faces].mean(axis=1)[np.maximum(label, 0)]
    x, y = centroid[..., 0], centroid[..., 1]
    eyes = next(part for part in mesh.parts if part.name == "eyes")
    eye_y = mesh.vertices[np.unique(mesh.faces[eyes.faces]), 1].mean()
    top = mesh.vertices[np.unique(faces), 1].max()
    brows = (y > eye_y + 0.008) & (y < eye_y + 0.03)
    face = covered & (_mask("face", size) > 0.9) & (_mask("lips", size) < 0.05) & (_mask("eyelids", size) < 0.05) & ~brows
    return {
        "face": face,
        "scalp": covered & (y > top - 0.05),
        "neck": covered & (y < eye_y - 0.16) & (y > eye_y - 0.22) & (np.abs(x) < 0.05),
        "ears": covered & (_mask("ears", size) > 0.5),
    }
