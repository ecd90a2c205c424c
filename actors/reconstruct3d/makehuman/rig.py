"""The head's skeleton and skin weights, reduced from MakeHuman's rigs to what the cut needs.

Joint names follow MakeHuman's game-engine rig (Unreal-mannequin style: "spine_03", "neck_01",
"head", "clavicle_l"), plus "jaw", "eye_l" and "eye_r" in the same style, which the game-engine rig
lacks. Positions and weights come from MakeHuman's *default* rig, which has jaw and eye bones:
- each joint sits where the default rig puts the head of its bone ("CUBE": the centre of an 8-vertex
  joint cube of the base mesh, "MEAN": the mean of listed vertices, "VERTEX": one vertex), so it is
  a fixed average of base vertices (`JointRegressor`) and moves with every shape target;
- each default-rig bone's weights go to the nearest of its ancestors (itself included) that is a
  joint here (the lip and cheek bones under "jaw" to the jaw, the brow and lid bones under "head" to
  the head, "neck02"/"neck03" to "neck_01", shoulders and upper arms to the clavicles, the spine and
  breasts to "spine_03"); per vertex the 4 largest are kept and renormalised;
- the helper meshes are bound rigidly: each eyeball to its eye joint, the lower teeth and the
  tongue to the jaw, the upper teeth and the eyelashes to the head (the lids move by morphs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from .assets import mpfb_dir, read_json
from .cut import HeadCut

INFLUENCES = 4


@dataclass(frozen=True)
class JointSpec:
    name: str
    parent: str | None
    bone: str  # MakeHuman default-rig bone whose head is this joint's position


SKELETON: tuple[JointSpec, ...] = (
    JointSpec("spine_03", None, "spine01"),
    JointSpec("clavicle_l", "spine_03", "clavicle.L"),
    JointSpec("clavicle_r", "spine_03", "clavicle.R"),
    JointSpec("neck_01", "spine_03", "neck01"),
    JointSpec("head", "neck_01", "head"),
    JointSpec("jaw", "head", "jaw"),
    JointSpec("eye_l", "head", "eye.L"),
    JointSpec("eye_r", "head", "eye.R"),
)
LOWER_TEETH = "helper-lower-teeth"


@dataclass(frozen=True)
class JointRegressor:
    """Joint positions as fixed averages of base-mesh vertices."""

    names: tuple[str, ...]
    parents: np.ndarray  # (J,) int32, -1 for the root, parents first
    base_ids: np.ndarray  # (A,) int32 base vertices the joints are averaged from
    matrix: np.ndarray  # (J, A) float64 averaging weights (rows sum to 1)


def joint_regressor(skeleton: tuple[JointSpec, ...] = SKELETON) -> JointRegressor:
    rig = read_json(mpfb_dir() / "rigs" / "standard" / "rig.default.json")
    groups = read_json(mpfb_dir() / "mesh_metadata" / "basemesh_vertex_groups.json")
    rows = []
    for spec in skeleton:
        head = rig[spec.bone]["head"]
        if head["strategy"] == "CUBE":
            ids = np.concatenate([np.arange(a, b + 1) for a, b in groups[head["cube_name"]]])
        elif head["strategy"] == "MEAN":
            ids = np.asarray(head["vertex_indices"])
        elif head["strategy"] == "VERTEX":
            ids = np.asarray([head["vertex_index"]])
        else:
            raise ValueError(f"bone {spec.bone!r}: unknown joint strategy {head['strategy']!r}.")
        rows.append(ids)
    base_ids = np.unique(np.concatenate(rows)).astype(np.int32)
    matrix = np.zeros((len(skeleton), len(base_ids)))
    for j, ids in enumerate(rows):
        matrix[j, np.searchsorted(base_ids, ids)] += 1.0 / len(ids)
    names = tuple(spec.name for spec in skeleton)
    parents = np.array([names.index(spec.parent) if spec.parent else -1 for spec in skeleton], dtype=np.int32)
    return JointRegressor(names, parents, base_ids, matrix)


def skin_weights(cut: HeadCut, rest_x: np.ndarray, lower_teeth: np.ndarray, skeleton: tuple[JointSpec, ...] = SKELETON):
    """(joints (Vc, 4) uint16, weights (Vc, 4) float32) for the cut's vertices (rows sum to 1).

    rest_x: (Vc,) x of the cut's vertices (which eye is which); lower_teeth: base-mesh vertex ids
    of the "helper-lower-teeth" group.
    """
    rig = read_json(mpfb_dir() / "rigs" / "standard" / "rig.default.json")
    bone_weights = read_json(mpfb_dir() / "rigs" / "standard" / "weights.default.json")["weights"]
    names = [spec.name for spec in skeleton]
    by_bone = {spec.bone: names.index(spec.name) for spec in skeleton}
    root = names.index(next(spec.name for spec in skeleton if spec.parent is None))

    def joint_of(bone: str) -> int:
        while bone:
            if bone in by_bone:
                return by_bone[bone]
            bone = rig.get(bone, {}).get("parent", "")
        return root

    count = cut.to_cut.shape[1]
    rows, cols, values = [], [], []
    for bone, pairs in bone_weights.items():
        if not pairs:
            continue
        pairs = np.asarray(pairs, dtype=np.float64)
        rows.append(pairs[:, 0].astype(np.int64))
        cols.append(np.full(len(pairs), joint_of(bone)))
        values.append(pairs[:, 1])
    per_base = scipy.sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(count, len(skeleton))
    )
    dense = np.asarray((cut.to_cut @ per_base).todense())  # border vertices blend their two ends' weights

    part_names = [part.name for part in cut.parts]
    vertex_part = np.asarray(part_names)[cut.vertex_part]
    eyes, teeth = vertex_part == "eyes", vertex_part == "teeth"
    lower = teeth & np.isin(cut.base_vertex, lower_teeth)
    rigid = {
        "eye_l": eyes & (rest_x > 0), "eye_r": eyes & (rest_x <= 0), "head": (vertex_part == "eyelashes") | (teeth & ~lower),
        "jaw": (vertex_part == "tongue") | lower,
    }
    for joint, mask in rigid.items():
        dense[mask] = 0.0
        dense[mask, names.index(joint)] = 1.0
    return _top_influences(dense)


def _top_influences(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-dense, axis=1, kind="stable")[:, :INFLUENCES]
    weights = np.take_along_axis(dense, order, axis=1)
    total = weights.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        raise ValueError("some vertices have no skin weight.")
    weights = weights / total
    joints = np.where(weights > 0, order, 0)
    return joints.astype(np.uint16), weights.astype(np.float32)
