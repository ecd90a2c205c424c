"""What both view renderers (GL and numpy) draw: the camera, the light, and a head resolved into draw parts.

The camera is orthographic on the head's +z axis; a view turns the head about +y by its yaw (positive
yaw turns the nose toward image right, as in `actors.align.pose`). One framing (centre, radius) serves
every view of a head so the views line up in a sheet; it is taken from the neutral vertices so an
expression sweep lines up too. The light sits above-left of the camera; shading is ambient + Lambert +
a little Blinn-Phong specular that grows as the material gets smoother. Colours are shaded in sRGB as
stored (the look of the first renderer); a material's base-colour factor is linear (glTF), so it is
applied in linear light.

Keeping this in one module is what makes the two renderers comparable: the GL renderer and the numpy
reference read the same morphed vertices, normals, materials and constants and differ only in how
they rasterise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mesh import HeadMesh, HeadTextures, Material

VIEW_YAWS = (-90, -60, -30, 0, 30, 60, 90)
BACKGROUND = (238, 238, 238)
LIGHT = np.array([-0.35, 0.45, 1.0]) / np.linalg.norm([-0.35, 0.45, 1.0])  # camera space: x right, y up, z to viewer
HALFWAY = (LIGHT + np.array([0.0, 0.0, 1.0])) / np.linalg.norm(LIGHT + np.array([0.0, 0.0, 1.0]))
AMBIENT, DIFFUSE = 0.42, 0.62
SPECULAR = 0.3  # specular weight of a perfectly smooth material; scaled by (1 - roughness)
ALPHA_CUTOFF = 0.5  # glTF's default alphaCutoff for MASK materials
FRAME_FILL = 0.94  # the framing sphere spans this share of the image
ALPHA_MODES = ("OPAQUE", "MASK", "BLEND")


@dataclass(frozen=True)
class DrawPart:
    """A run of triangles drawn with one material; `image` is the material's texture (None: base colour only)."""

    name: str
    start: int
    stop: int
    material: Material
    image: np.ndarray | None


@dataclass(frozen=True)
class ViewScene:
    """A head ready to draw: morphed vertices, their normals, per-corner UVs and the draw parts."""

    vertices: np.ndarray  # (V, 3) float32, morph weights applied
    normals: np.ndarray  # (V, 3) float32 unit, recomputed from `vertices`
    faces: np.ndarray  # (F, 3) int32
    uvs: np.ndarray | None  # (T, 2) float32, v up
    uv_faces: np.ndarray | None  # (F, 3) int32
    parts: tuple[DrawPart, ...]
    framing: tuple[np.ndarray, float]  # (centre (3,), radius) shared by every view


def build_scene(mesh: HeadMesh, textures: HeadTextures, framing: tuple[np.ndarray, float] | None = None) -> ViewScene:
    """Resolve `mesh` + `textures` into a `ViewScene` (morphs applied, normals recomputed).

    `framing`: (centre, radius) to reuse, e.g. the neutral head's across an expression sweep; default
    `head_framing(mesh)` on the neutral vertices.
    """
    check_scene_inputs(mesh, textures)
    vertices = morphed_vertices(mesh)
    parts = tuple(
        DrawPart(part.name, part.start, part.stop, textures.materials[part.material],
                 textures.images[textures.materials[part.material].texture]
                 if textures.materials[part.material].texture is not None else None)
        for part in mesh.part_list() if part.stop > part.start
    )
    return ViewScene(
        vertices=vertices,
        normals=vertex_normals(vertices, mesh.faces).astype(np.float32),
        faces=np.asarray(mesh.faces, dtype=np.int32),
        uvs=None if mesh.uvs is None else np.asarray(mesh.uvs, dtype=np.float32),
        uv_faces=None if mesh.uv_faces is None else np.asarray(mesh.uv_faces, dtype=np.int32),
        parts=parts,
        framing=framing if framing is not None else head_framing(mesh),
    )


def check_scene_inputs(mesh: HeadMesh, textures: HeadTextures) -> None:
    """One ValueError per broken rule between a mesh and the textures it is drawn with."""
    mesh.check_inputs()
    for part in mesh.part_list():
        if part.material not in textures.materials:
            raise ValueError(f"part {part.name!r} uses material {part.material!r}, which the textures do not define.")
        material = textures.materials[part.material]
        if material.alpha_mode not in ALPHA_MODES:
            raise ValueError(f"material {part.material!r}: alpha_mode must be one of {ALPHA_MODES}, got {material.alpha_mode!r}.")
        if len(material.base_color) != 4:
            raise ValueError(f"material {part.material!r}: base_color must be RGBA, got {material.base_color}.")
        if material.texture is None:
            continue
        if material.texture not in textures.images:
            raise ValueError(f"material {part.material!r} names texture {material.texture!r}, which the textures do not have.")
        if mesh.uvs is None:
            raise ValueError("the mesh has no UVs: bake a texture (which lays UVs out) before rendering.")
        image = textures.images[material.texture]
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
            raise ValueError(f"texture {material.texture!r} must be (H, W, 3 or 4) uint8 RGB(A), got {image.shape} {image.dtype}.")


def as_textures(textures_or_albedo: HeadTextures | np.ndarray) -> HeadTextures:
    """`HeadTextures` as given, or one textured skin material around an (H, W, 3) albedo."""
    if isinstance(textures_or_albedo, HeadTextures):
        return textures_or_albedo
    albedo = np.asarray(textures_or_albedo)
    if albedo.ndim != 3 or albedo.shape[2] != 3 or albedo.dtype != np.uint8:
        raise ValueError(f"texture must be (H, W, 3) uint8 RGB, got {albedo.shape} {albedo.dtype}.")
    return HeadTextures.single(albedo)


def morphed_vertices(mesh: HeadMesh) -> np.ndarray:
    """(V, 3) float32: the neutral vertices plus every morph target times its weight (the photo's expression)."""
    vertices = np.asarray(mesh.vertices, dtype=np.float32).copy()
    for name, weight in mesh.morph_weights.items():
        if weight:
            vertices += np.float32(weight) * np.asarray(mesh.morph_targets[name], dtype=np.float32)
    return vertices


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (outward for counter-clockwise faces), float64."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    corners = vertices[faces]
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    index = faces.reshape(-1)
    normals = np.stack(
        [np.bincount(index, weights=np.repeat(face_normals[:, axis], 3), minlength=len(vertices)) for axis in range(3)],
        axis=1,
    )
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(length, 1e-12)


def yaw_rotation(yaw: float) -> np.ndarray:
    """3×3 rotation about +y by `yaw` degrees (positive: +z turns toward +x, the nose to image right)."""
    angle = np.deg2rad(yaw)
    return np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])


def head_framing(mesh_or_vertices: HeadMesh | np.ndarray) -> tuple[np.ndarray, float]:
    """(centre, radius) that keeps the whole head in frame whatever the yaw."""
    vertices = mesh_or_vertices.vertices if isinstance(mesh_or_vertices, HeadMesh) else mesh_or_vertices
    vertices = np.asarray(vertices, dtype=np.float64)
    centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    radius = float(np.linalg.norm(vertices - centre, axis=1).max())
    return centre, max(radius, 1e-9)


def project(vertices: np.ndarray, yaw: float, size: int, framing: tuple[np.ndarray, float]) -> tuple[np.ndarray, np.ndarray]:
    """Where `vertices` land in a `size`-pixel view: ((N, 2) pixel x, y with y down; (N, 3) camera-space points)."""
    centre, radius = framing
    scale = size * FRAME_FILL / 2 / radius
    camera = (np.asarray(vertices, dtype=np.float64) - centre) @ yaw_rotation(yaw).T
    return np.stack([size / 2 + scale * camera[:, 0], size / 2 - scale * camera[:, 1]], axis=1), camera


def specular_terms(material: Material) -> tuple[float, float]:
    """(weight, Blinn-Phong exponent) for a material's roughness: rough skin gets a faint broad sheen,
    smooth eyes a small bright highlight. The exponent follows the usual roughness ↔ Phong mapping
    2/r⁴ − 2, rounded to a power of two in [4, 256] (the CPU renderer raises by repeated squaring)."""
    roughness = float(np.clip(material.roughness, 0.05, 1.0))
    exponent = float(np.clip(2.0 / roughness**4 - 2.0, 4.0, 256.0))
    return SPECULAR * (1.0 - roughness), float(2.0 ** np.round(np.log2(exponent)))


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """sRGB transfer curve, linear [0, 1] → encoded [0, 1] (IEC 61966-2-1)."""
    linear = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
