"""Wavefront OBJ + MTL + PNG writer for `HeadMesh` heads: static, neutral, one material group per part.

OBJ has no skin or morph targets: the file is the rest shape (`HeadMesh.vertices`). Vertices, per
corner `vt` and smooth `vn` (sharing the vertex's index) are written once; each part follows as
`g <part>` + `usemtl <material>` + its faces. The albedo image "skin" is saved as
`<name>_texture.png`, other images as `<name>_<image>.png`; materials with alpha (MASK/BLEND) also
name their PNG in `map_d`. A head without parts and with the one skin material (canonical, FLAME)
is written exactly as before parts existed: one material named `<name>`, no groups.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from .export_inputs import as_textures, check_export_inputs, merge_encoded, unit_rows, used_images, used_parts, vertex_normal_sums
from .mesh import SKIN_PART, HeadMesh, HeadTextures, Material
from .obj_text import Column, format_rows
from dataset.images import encode_png

FACE_SEPARATORS = ["/", "/", " ", "/", "/", " ", "/", "/"]  # f v/vt/vn v/vt/vn v/vt/vn


def write_obj(
    mesh: HeadMesh,
    textures: HeadTextures | np.ndarray,
    directory: str | Path,
    name: str = "head",
    *,
    encoded: Mapping[str, bytes] | None = None,
    png: bytes | None = None,
) -> dict[str, Path]:
    """Write `<name>.obj`, `<name>.mtl` and the PNGs into `directory`; returns their paths under the keys
    "obj", "mtl", "texture" (the "skin" albedo, when used) and "texture_<image>" for other images.

    textures: the head's images and materials, or a bare (H, W, 3) albedo for one skin material.
    encoded / png: PNGs already encoded, per image name / for "skin" (skips re-encoding).
    """
    textures = as_textures(textures)
    encoded = merge_encoded(encoded, png)
    check_export_inputs(mesh, textures, encoded)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    parts = used_parts(mesh)
    legacy = not mesh.parts and list(textures.materials) == [SKIN_PART]  # one material, named after the file

    paths = {"obj": directory / f"{name}.obj", "mtl": directory / f"{name}.mtl"}
    image_files: dict[str, Path] = {}
    for image in used_images(mesh, textures):
        key, file = ("texture", f"{name}_texture.png") if image == SKIN_PART else (f"texture_{image}", f"{name}_{image}.png")
        paths[key] = image_files[image] = directory / file
        paths[key].write_bytes(encoded.get(image) or encode_png(textures.images[image], fast=True))

    material_names = list(dict.fromkeys(part.material for part in parts))
    mtl_name = {material: (name if legacy else material) for material in material_names}
    paths["mtl"].write_text("".join(
        _mtl_entry(mtl_name[material], textures.materials[material], textures, image_files) for material in material_names
    ))

    normals = unit_rows(vertex_normal_sums(mesh.vertices, mesh.faces))
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    uvs = np.asarray(mesh.uvs, dtype=np.float64)
    # OBJ indices are 1-based: f vertex/uv/normal, the normal sharing the vertex's index.
    corners = np.stack([mesh.faces + 1, mesh.uv_faces + 1, mesh.faces + 1], axis=2).reshape(len(mesh.faces), 9)
    header = f"# {mesh.engine} head: {len(vertices)} vertices, {len(mesh.faces)} triangles\nmtllib {paths['mtl'].name}\no {name}\n"
    chunks = [
        header.encode(),
        format_rows("v ", [Column(vertices[:, i], 6) for i in range(3)], [" ", " "]),
        format_rows("vt ", [Column(uvs[:, i], 6) for i in range(2)], [" "]),
        format_rows("vn ", [Column(normals[:, i], 5) for i in range(3)], [" ", " "]),
    ]
    for part in parts:
        group = "" if legacy else f"g {part.name}\n"
        chunks.append(f"{group}usemtl {mtl_name[part.material]}\ns 1\n".encode())
        chunks.append(format_rows("f ", [Column(corners[part.faces, i]) for i in range(9)], FACE_SEPARATORS))
    paths["obj"].write_bytes(b"".join(chunks))
    return paths


def _mtl_entry(name: str, material: Material, textures: HeadTextures, image_files: dict[str, Path]) -> str:
    """One `newmtl` block: diffuse colour and map, opacity (`d`, and `map_d` for alpha textures)."""
    red, green, blue, alpha = material.base_color
    lines = [f"newmtl {name}", "Ka 1.000 1.000 1.000", f"Kd {red:.3f} {green:.3f} {blue:.3f}", "Ks 0.000 0.000 0.000",
             "Ns 10.0", f"d {alpha:.1f}" if alpha in (0.0, 1.0) else f"d {alpha:.3f}", "illum 1"]
    if material.texture is not None:
        file = image_files[material.texture].name
        lines.append(f"map_Kd {file}")
        if material.alpha_mode != "OPAQUE" and textures.images[material.texture].shape[2] == 4:
            lines.append(f"map_d {file}")
    return "\n".join(lines) + "\n"
