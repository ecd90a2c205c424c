"""`HeadMesh`: what every 3D head engine returns and every later 3D step (bake, export, render) takes.

A head is one vertex array with its triangles grouped into `parts` (skin, eyes, eyelashes, teeth,
tongue, hair), each drawn with its own material. Optional extras for game and VTuber use: a `Skin`
(skeleton and per-vertex joint weights) and morph targets (ARKit blendshapes) with default weights.
Engines that have none of these (the canonical and FLAME engines) leave them empty: one "skin" part
covering every triangle, no skeleton, no morphs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SKIN_PART = "skin"


@dataclass(frozen=True)
class MeshPart:
    """A named range of `HeadMesh.faces` drawn with one material (`HeadTextures.materials[material]`)."""

    name: str  # "skin", "eyes", "eyelashes", "teeth", "tongue", "hair", ...
    start: int  # first triangle (index into HeadMesh.faces)
    stop: int  # one past the last triangle
    material: str

    @property
    def faces(self) -> slice:
        return slice(self.start, self.stop)


@dataclass
class Skin:
    """A skeleton bound to the mesh (glTF skinning: joints in parent-first order).

    `joint_names` use the MakeHuman game-engine naming where the engine has it (e.g. "neck_01",
    "head"). `bind_positions` are the joints' world positions in the rest pose (metres, HeadMesh
    space, no rotation in the rest pose), `parents` index into the joints (-1 for roots).
    """

    joint_names: tuple[str, ...]
    parents: np.ndarray  # (J,) int32, -1 for a root; every parent precedes its children
    bind_positions: np.ndarray  # (J, 3) float32
    joints: np.ndarray  # (V, 4) uint16: joint ids per vertex
    weights: np.ndarray  # (V, 4) float32: rows sum to 1

    def check_inputs(self, num_vertices: int) -> None:
        count = len(self.joint_names)
        if self.parents.shape != (count,) or self.bind_positions.shape != (count, 3):
            raise ValueError(f"parents must be ({count},) and bind_positions ({count}, 3).")
        for index, parent in enumerate(self.parents):
            if not (parent == -1 or 0 <= parent < index):
                raise ValueError(f"joint {self.joint_names[index]!r}: parent {parent} must precede it (or be -1).")
        if self.joints.shape != (num_vertices, 4) or self.weights.shape != (num_vertices, 4):
            raise ValueError(f"joints and weights must be ({num_vertices}, 4).")
        if self.joints.size and int(self.joints.max()) >= count:
            raise ValueError("joints index a joint that does not exist.")
        if not np.allclose(self.weights.sum(axis=1), 1.0, atol=1e-3):
            raise ValueError("skin weights must sum to 1 per vertex.")


@dataclass
class HeadMesh:
    """A head mesh fitted to one aligned face.

    Space: metres, +x to the subject's left (image right), +y up, +z toward the camera, origin
    near the centre of the head. UVs may be per corner (`uvs` indexed by `uv_faces`, as OBJ's vt/ft)
    or absent (the baker then generates a layout). `vertices` is the pose written to files (for an
    engine with morphs: the neutral shape; the photo's expression lives in `morph_weights`), while
    `image_points` are the vertices as the camera saw them (with the expression), used to texture.
    """

    vertices: np.ndarray  # (V, 3) float32
    faces: np.ndarray  # (F, 3) int32, counter-clockwise seen from outside
    image_points: np.ndarray  # (V, 3) float32: crop-pixel x, y of each vertex under the fitted camera, and depth (larger = farther)
    landmark_nme: float  # landmark reprojection error / inter-ocular distance, in the crop
    engine: str  # the head engine's registry name
    uvs: np.ndarray | None = None  # (T, 2) float32 in [0, 1], v up
    uv_faces: np.ndarray | None = None  # (F, 3) int32 into `uvs`
    params: dict[str, np.ndarray] = field(default_factory=dict)  # engine parameters (saved as <engine>.npz where the engine asks)
    parts: list[MeshPart] = field(default_factory=list)  # empty: one "skin" part over every face
    skin: Skin | None = None
    morph_targets: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (V, 3) float32 offsets
    morph_weights: dict[str, float] = field(default_factory=dict)  # default weight per morph (the photo's expression)

    def part_list(self) -> list[MeshPart]:
        """The parts, or one "skin" part covering every triangle."""
        return list(self.parts) or [MeshPart(SKIN_PART, 0, len(self.faces), SKIN_PART)]

    def check_inputs(self) -> None:
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"vertices must be (V, 3), got {self.vertices.shape}.")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {self.faces.shape}.")
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise ValueError("faces index vertices that do not exist.")
        if self.image_points.shape != (len(self.vertices), 3):
            raise ValueError(f"image_points must be (V, 3) = ({len(self.vertices)}, 3), got {self.image_points.shape}.")
        if (self.uvs is None) != (self.uv_faces is None):
            raise ValueError("uvs and uv_faces come together: give both or neither.")
        if self.uv_faces is not None and self.uv_faces.shape != self.faces.shape:
            raise ValueError(f"uv_faces must match faces {self.faces.shape}, got {self.uv_faces.shape}.")
        covered = 0
        for part in self.parts:
            if part.start != covered or part.stop < part.start:
                raise ValueError(f"parts must tile the faces in order: {part.name!r} starts at {part.start}, expected {covered}.")
            covered = part.stop
        if self.parts and covered != len(self.faces):
            raise ValueError(f"parts cover {covered} of {len(self.faces)} faces.")
        if self.skin is not None:
            self.skin.check_inputs(len(self.vertices))
        for name, offsets in self.morph_targets.items():
            if offsets.shape != self.vertices.shape:
                raise ValueError(f"morph target {name!r} must be {self.vertices.shape}, got {offsets.shape}.")
        unknown = set(self.morph_weights) - set(self.morph_targets)
        if unknown:
            raise ValueError(f"morph weights for unknown targets: {sorted(unknown)}.")


@dataclass(frozen=True)
class Material:
    """A PBR metallic-roughness material: a base colour factor times an optional texture."""

    base_color: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)  # linear RGBA factor
    texture: str | None = None  # key into HeadTextures.images
    roughness: float = 0.8
    metallic: float = 0.0
    alpha_mode: str = "OPAQUE"  # OPAQUE | MASK | BLEND (glTF)
    double_sided: bool = False


@dataclass
class HeadTextures:
    """The images and materials a baked head is drawn with. `images["skin"]` is the main albedo."""

    images: dict[str, np.ndarray]  # name -> (H, W, 3 or 4) uint8, sRGB
    materials: dict[str, Material]  # material name (MeshPart.material) -> material

    @classmethod
    def single(cls, albedo: np.ndarray) -> "HeadTextures":
        """One textured skin material (the canonical and FLAME engines)."""
        return cls(images={SKIN_PART: albedo}, materials={SKIN_PART: Material(texture=SKIN_PART)})

    @property
    def albedo(self) -> np.ndarray:
        return self.images[SKIN_PART]
