"""Offscreen CPU renderer for textured heads: 7 yaw views and a one-row contact sheet.

Orthographic camera on the head's +z axis, the head turned about +y by the view's yaw (positive yaw
turns the nose toward image right, as in `actors.align.pose`). Per pixel: nearest triangle from the
vectorised rasteriser (back faces culled), UV and normal interpolated with barycentrics, the texture
sampled bilinearly, Lambert shading from a light above-left of the camera plus ambient. Rendered at
`supersample`× and reduced with area averaging (anti-aliased silhouettes). One framing (centre and
scale) serves all views so they line up in the sheet.
"""
from __future__ import annotations

import cv2
import numpy as np

from .mesh import HeadMesh
from .raster import rasterize

VIEW_YAWS = (-90, -60, -30, 0, 30, 60, 90)
BACKGROUND = (238, 238, 238)
LIGHT = np.array([-0.35, 0.45, 1.0]) / np.linalg.norm([-0.35, 0.45, 1.0])  # camera space: x right, y up, z to viewer
AMBIENT, DIFFUSE = 0.42, 0.62


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (outward for counter-clockwise faces)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    corners = vertices[faces]
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(length, 1e-12)


def render_view(
    mesh: HeadMesh,
    texture: np.ndarray,
    yaw: float,
    size: int = 512,
    supersample: int = 2,
    framing: tuple[np.ndarray, float] | None = None,
    background: tuple[int, int, int] = BACKGROUND,
) -> np.ndarray:
    """One (size, size, 3) uint8 RGB view of the textured head turned by `yaw` degrees."""
    _check(mesh, texture, size, supersample)
    full = size * supersample
    framing = framing if framing is not None else head_framing(mesh)
    screen, camera = project(mesh.vertices, yaw, full, framing)
    rotation = yaw_rotation(yaw)
    raster = rasterize(screen, mesh.faces, full, full, depth=-camera[:, 2], cull="cw")

    image = np.empty((full, full, 3), dtype=np.float32)
    image[:] = background
    covered = raster.covered
    tri = raster.triangle[covered]
    weights = raster.barycentric[covered][:, :, None]  # (N, 3, 1)

    normals = vertex_normals(mesh.vertices, mesh.faces) @ rotation.T
    normal = (weights * normals[mesh.faces[tri]]).sum(axis=1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    shade = AMBIENT + DIFFUSE * np.clip(normal @ LIGHT, 0.0, 1.0)

    uv_faces = mesh.uv_faces if mesh.uv_faces is not None else mesh.faces
    uv = (weights * np.asarray(mesh.uvs, dtype=np.float64)[uv_faces[tri]]).sum(axis=1)
    colour = sample_texture(texture, uv)
    image[covered] = np.clip(colour * shade[:, None], 0, 255)
    if supersample > 1:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def render_views(
    mesh: HeadMesh, texture: np.ndarray, size: int = 512, yaws=VIEW_YAWS, supersample: int = 2
) -> list[np.ndarray]:
    """The textured head from each yaw in `yaws` (degrees), one shared framing."""
    framing = head_framing(mesh)
    return [render_view(mesh, texture, yaw, size, supersample, framing) for yaw in yaws]


def contact_sheet(views: list[np.ndarray], labels: list[str] | None = None) -> np.ndarray:
    """The views side by side in one row, each with an optional label along its bottom edge."""
    if not views:
        raise ValueError("contact_sheet needs at least one view.")
    height = views[0].shape[0]
    if any(v.shape != views[0].shape for v in views):
        raise ValueError("all views must have the same shape.")
    if labels is not None and len(labels) != len(views):
        raise ValueError(f"got {len(labels)} labels for {len(views)} views.")
    tiles = []
    for index, view in enumerate(views):
        tile = view.copy()
        if labels is not None:
            scale = height / 512
            cv2.putText(tile, labels[index], (int(12 * scale), height - int(14 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.8 * scale, (90, 90, 90), max(1, int(round(2 * scale))), cv2.LINE_AA)
        tiles.append(tile)
    return np.concatenate(tiles, axis=1)


def yaw_label(yaw: float) -> str:
    return f"yaw {yaw:+.0f}" if yaw else "yaw 0"


def yaw_rotation(yaw: float) -> np.ndarray:
    """3×3 rotation about +y by `yaw` degrees (positive: +z turns toward +x, the nose to image right)."""
    angle = np.deg2rad(yaw)
    return np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])


def project(vertices: np.ndarray, yaw: float, size: int, framing: tuple[np.ndarray, float]) -> tuple[np.ndarray, np.ndarray]:
    """Where `vertices` land in a `size`-pixel view: ((N, 2) pixel x, y; (N, 3) camera-space points)."""
    centre, radius = framing
    scale = size * 0.47 / radius
    camera = (np.asarray(vertices, dtype=np.float64) - centre) @ yaw_rotation(yaw).T
    return np.stack([size / 2 + scale * camera[:, 0], size / 2 - scale * camera[:, 1]], axis=1), camera


def head_framing(mesh: HeadMesh) -> tuple[np.ndarray, float]:
    """(centre, radius) that keeps the whole head in frame whatever the yaw."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    radius = float(np.linalg.norm(vertices - centre, axis=1).max())
    return centre, max(radius, 1e-9)


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear texture lookup at (N, 2) UVs (v up) → (N, 3) float32."""
    height, width = texture.shape[:2]
    return sample_image(texture, uv[:, 0] * width - 0.5, (1.0 - uv[:, 1]) * height - 0.5)


def sample_image(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear lookup of an (H, W, C) image at pixel coordinates (x, y are pixel centres) → (N, C) float32."""
    count = len(x)
    row = 4096  # cv2.remap maps must stay below 32767 on each side
    padded = -(-max(count, 1) // row) * row
    map_x = np.zeros(padded, np.float32)
    map_y = np.zeros(padded, np.float32)
    map_x[:count], map_y[:count] = x, y
    sampled = cv2.remap(image, map_x.reshape(-1, row), map_y.reshape(-1, row), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(padded, -1)[:count].astype(np.float32)


def _check(mesh: HeadMesh, texture: np.ndarray, size: int, supersample: int) -> None:
    mesh.check_inputs()
    if mesh.uvs is None:
        raise ValueError("the mesh has no UVs: bake a texture (which lays UVs out) before rendering.")
    if texture.ndim != 3 or texture.shape[2] != 3 or texture.dtype != np.uint8:
        raise ValueError(f"texture must be (H, W, 3) uint8 RGB, got {texture.shape} {texture.dtype}.")
    if size < 16 or supersample < 1:
        raise ValueError(f"size must be ≥ 16 and supersample ≥ 1, got {size} and {supersample}.")
