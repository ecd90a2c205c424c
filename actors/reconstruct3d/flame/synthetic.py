"""A synthetic FLAME-format model for tests and benchmarks (FLAME itself cannot ship).

`build_synthetic_flame()` returns the arrays of a head-sized model in FLAME's layout: an ellipsoid
head (metres, +y up, +z out of the face), 5 joints (global, neck, jaw, two eyes) regressed from
vertices, smooth skinning weights, random smooth identity and expression bases that are orthogonal
within each group with PCA-like decaying magnitudes (coefficients unit-variance, as FLAME's), and
random pose correctives. `write_flame_pickle()` saves it exactly as FLAME ships: a pickle with
`v_template`, `shapedirs` (V, 3, S+E) and `J` as chumpy objects (written as the globals `chumpy.ch.Ch`
and `chumpy.reordering.Reshape` carrying their state, without chumpy installed), `J_regressor` as a
scipy csc matrix (under FLAME 2020's module path `scipy.sparse.csc` by default), `kintree_table`
(uint32, root parent 2³²−1), `weights`, `posedirs`, `f` (uint32), `bs_style`, `bs_type`.
`build_embedding()` places 105 MediaPipe landmarks (brows, eyes, nose, lips, chin) on the face as
triangle + barycentric coordinates, saved like `mediapipe_landmark_embedding.npz`.
`synthetic_landmarks()` renders (B, 478, 3) MediaPipe-style landmarks from known parameters.
"""
from __future__ import annotations

import copyreg
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEAD_SEMI_AXES = (0.078, 0.108, 0.096)  # metres: half width, half height, half depth
# MediaPipe indices per feature group, with their layout on the face (metres, x = subject's left).
BROW_RIGHT = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55)
BROW_LEFT = (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)
EYE_RIGHT = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
EYE_LEFT = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
NOSE = (168, 6, 197, 195, 5, 4, 1, 2, 98, 97, 326, 327)
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
LIPS_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
CHIN = (152,)
EYE_CENTRE = (0.032, 0.022)  # |x|, y of the eyes on the face
NUM_JOINTS = 5


@dataclass(frozen=True)
class SyntheticFlame:
    """The arrays of a FLAME-format model (FLAME's key names and shapes)."""

    v_template: np.ndarray  # (V, 3) float64
    shapedirs: np.ndarray  # (V, 3, S+E)
    posedirs: np.ndarray  # (V, 3, 36)
    J_regressor: np.ndarray  # (5, V) dense (pickled as scipy csc)
    kintree_table: np.ndarray  # (2, 5) uint32
    weights: np.ndarray  # (V, 5)
    f: np.ndarray  # (F, 3) uint32
    num_shape: int
    num_expression: int

    @property
    def size(self) -> float:
        """The face's size used by tests: bounding-box diagonal of the template, metres."""
        return float(np.linalg.norm(self.v_template.max(0) - self.v_template.min(0)))


def ellipsoid_mesh(num_rings: int, num_segments: int, semi_axes=HEAD_SEMI_AXES) -> tuple[np.ndarray, np.ndarray]:
    """Latitude-longitude ellipsoid: (R·S + 2) vertices, 2·R·S triangles, counter-clockwise from outside."""
    theta = np.pi * np.arange(1, num_rings + 1) / (num_rings + 1)
    phi = 2 * np.pi * np.arange(num_segments) / num_segments
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], axis=-1).reshape(-1, 3)
    unit = np.concatenate([[[0.0, 1.0, 0.0]], ring, [[0.0, -1.0, 0.0]]])
    vertices = unit * np.asarray(semi_axes)
    index = lambda r, s: 1 + r * num_segments + (s % num_segments)  # noqa: E731
    faces = []
    bottom = len(vertices) - 1
    for s in range(num_segments):
        faces.append((0, index(0, s), index(0, s + 1)))
        faces.append((bottom, index(num_rings - 1, s + 1), index(num_rings - 1, s)))
        for r in range(num_rings - 1):
            a, b, c, d = index(r, s), index(r, s + 1), index(r + 1, s), index(r + 1, s + 1)
            faces += [(a, c, b), (b, c, d)]
    faces = np.asarray(faces, dtype=np.int64)
    corners = vertices[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    inward = (normals * corners.mean(axis=1)).sum(1) < 0
    faces[inward] = faces[inward][:, ::-1]
    return vertices, faces


def _smooth_fields(unit: np.ndarray, count: int, rng: np.random.Generator, num_features: int = 160,
                   frequency: float = 2.0) -> np.ndarray:
    """`count` random smooth 3D displacement fields on the vertices, (V·3, count)."""
    omega = rng.normal(0.0, frequency, size=(3, num_features))
    phase = rng.uniform(0, 2 * np.pi, size=num_features)
    features = np.cos(unit @ omega + phase)  # (V, M)
    coeffs = rng.normal(size=(num_features, 3 * count))
    return (features @ coeffs).reshape(len(unit), 3, count).reshape(-1, count)


def _mirror_index(vertices: np.ndarray) -> np.ndarray:
    """For each vertex, the vertex at its mirror image across x = 0."""
    from scipy.spatial import cKDTree

    return cKDTree(vertices).query(vertices * np.array([-1.0, 1.0, 1.0]))[1]


def _symmetrise(fields: np.ndarray, mirror: np.ndarray, parity: np.ndarray) -> np.ndarray:
    """(V·3, K) fields made mirror-symmetric (parity +1) or antisymmetric (−1) across x = 0."""
    per_vertex = fields.reshape(len(mirror), 3, -1)
    mirrored = per_vertex[mirror] * np.array([-1.0, 1.0, 1.0])[None, :, None]
    return (0.5 * (per_vertex + parity * mirrored)).reshape(fields.shape)


def _orthogonal_basis(raw: np.ndarray, magnitudes: np.ndarray, num_vertices: int) -> np.ndarray:
    """Orthonormalise columns, then scale column k so its RMS per-vertex displacement is magnitudes[k]."""
    q, _ = np.linalg.qr(raw)
    return (q * magnitudes * np.sqrt(num_vertices)).reshape(num_vertices, 3, -1)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def build_synthetic_flame(num_rings: int = 40, num_segments: int = 52, num_shape: int = 300,
                          num_expression: int = 100, seed: int = 0) -> SyntheticFlame:
    """A FLAME-format head model; `num_rings=62, num_segments=81` gives FLAME's size (5,024 vertices)."""
    rng = np.random.default_rng(seed)
    vertices, faces = ellipsoid_mesh(num_rings, num_segments)
    num_vertices = len(vertices)
    axes = np.asarray(HEAD_SEMI_AXES)
    unit = vertices / axes
    x, y = vertices[:, 0], vertices[:, 1]
    eye_distance = np.minimum(np.hypot(x - EYE_CENTRE[0], y - EYE_CENTRE[1]), np.hypot(x + EYE_CENTRE[0], y - EYE_CENTRE[1]))
    relief = (0.022 * np.exp(-((x / 0.011) ** 2 + ((y + 0.012) / 0.022) ** 2))  # nose
              - 0.006 * np.exp(-((eye_distance / 0.016) ** 2)))  # eye sockets
    vertices[:, 2] += _smoothstep(vertices[:, 2] / 0.03) * relief
    z = vertices[:, 2]

    # Identity: left-right symmetric smooth fields (faces are nearly symmetric), RMS 9 mm·k^-2 (a steep,
    # PCA-like spectrum); expression: lower/front face, 6 mm·k^-1.2, symmetric but every fourth component.
    mirror = _mirror_index(vertices)
    shape_raw = _symmetrise(_smooth_fields(unit, num_shape, rng), mirror, np.ones(num_shape))
    face_mask = _smoothstep(z / 0.04 + 0.5) * (0.25 + 0.75 * _smoothstep((0.03 - y) / 0.05))
    expr_raw = _smooth_fields(unit, num_expression, rng, frequency=3.0) * np.repeat(face_mask, 3)[:, None]
    expr_raw = _symmetrise(expr_raw, mirror, np.where(np.arange(num_expression) % 4 == 3, -1.0, 1.0))
    shapedirs = np.concatenate([
        _orthogonal_basis(shape_raw, 0.009 * np.arange(1, num_shape + 1) ** -2.0, num_vertices),
        _orthogonal_basis(expr_raw, 0.006 * np.arange(1, num_expression + 1) ** -1.2, num_vertices),
    ], axis=2)
    posedirs = 0.002 * _smooth_fields(unit, 9 * (NUM_JOINTS - 1), rng).reshape(num_vertices, 3, -1) / 3.0

    # Joints: centroids of rings (on the vertical axis); eyes between a patch on the face and one behind.
    def ring_at(height: float) -> np.ndarray:
        return np.abs(y - height) <= np.sort(np.abs(y - height))[num_segments - 1]

    def patch_at(cx: float, cy: float, front: bool) -> np.ndarray:
        distance = np.hypot(x - cx, y - cy) + ((z < 0) if front else (z > 0)) * 1.0
        return distance <= np.sort(distance)[5]

    regressor = np.zeros((NUM_JOINTS, num_vertices))
    for joint, height in ((0, -0.07), (1, -0.085), (2, -0.03)):
        members = ring_at(height)
        regressor[joint, members] = 1.0 / members.sum()
    for joint, side in ((3, 1.0), (4, -1.0)):  # eyeball centres: between a front and a back patch
        for front, share in ((True, 0.7), (False, 0.3)):
            patch = patch_at(side * EYE_CENTRE[0], EYE_CENTRE[1], front)
            regressor[joint, patch] += share / patch.sum()

    weights = np.zeros((num_vertices, NUM_JOINTS))
    weights[:, 1] = _smoothstep((-0.06 - y) / 0.03)  # neck
    weights[:, 2] = _smoothstep((-0.025 - y) / 0.025) * _smoothstep(z / 0.04) * (1 - weights[:, 1])  # jaw
    for joint, side in ((3, 1.0), (4, -1.0)):
        distance = np.hypot(x - side * EYE_CENTRE[0], y - EYE_CENTRE[1])
        weights[:, joint] = (1 - _smoothstep(distance / 0.012)) * (z > 0)
    weights[:, 0] = np.clip(1 - weights[:, 1:].sum(1), 0, None)
    weights /= weights.sum(1, keepdims=True)

    kintree = np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.uint32)
    return SyntheticFlame(vertices, shapedirs, posedirs, regressor, kintree, weights,
                          faces.astype(np.uint32), num_shape, num_expression)


def synthetic_assets(model: SyntheticFlame):
    """The model as `FlameAssets` directly (no pickle), for benchmarks."""
    from actors.reconstruct3d.flame.assets import FlameAssets

    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    parents = model.kintree_table[0].astype(np.int64)
    parents[0] = -1
    return FlameAssets(
        v_template=f32(model.v_template), shapedirs=f32(model.shapedirs[:, :, : model.num_shape]),
        exprdirs=f32(model.shapedirs[:, :, model.num_shape:]), posedirs=f32(model.posedirs),
        J_regressor=f32(model.J_regressor), parents=parents, weights=f32(model.weights),
        faces=model.f.astype(np.int64),
    )


# ---- the embedding -------------------------------------------------------------------------------

def _landmark_layout() -> tuple[np.ndarray, np.ndarray]:
    """(105,) MediaPipe indices and (105, 2) x, y positions on the face, metres."""
    def arc(n, cx, half_width, cy, bulge):
        t = np.linspace(-1, 1, n)
        return np.stack([cx + half_width * t, cy + bulge * (1 - t**2)], 1)

    def ellipse(n, cx, cy, rx, ry):
        a = 2 * np.pi * np.arange(n) / n
        return np.stack([cx - rx * np.cos(a), cy + ry * np.sin(a)], 1)

    ex, ey = EYE_CENTRE
    groups = [
        (BROW_RIGHT, np.concatenate([arc(5, -0.034, 0.02, 0.047, 0.006), arc(5, -0.034, 0.018, 0.041, 0.004)])),
        (BROW_LEFT, np.concatenate([arc(5, 0.034, 0.02, 0.047, 0.006), arc(5, 0.034, 0.018, 0.041, 0.004)])),
        (EYE_RIGHT, ellipse(16, -ex, ey, 0.014, 0.006)),
        (EYE_LEFT, ellipse(16, ex, ey, 0.014, 0.006)),
        (NOSE, np.array([[0, 0.028], [0, 0.018], [0, 0.008], [0, -0.002], [0, -0.012], [0, -0.02], [0, -0.026],
                         [0, -0.032], [-0.012, -0.03], [-0.006, -0.034], [0.006, -0.034], [0.012, -0.03]])),
        (LIPS_OUTER, ellipse(20, 0.0, -0.052, 0.026, 0.012)),
        (LIPS_INNER, ellipse(20, 0.0, -0.052, 0.018, 0.004)),
        (CHIN, np.array([[0.0, -0.085]])),
    ]
    indices = np.concatenate([np.asarray(g, dtype=np.int64) for g, _ in groups])
    return indices, np.concatenate([p for _, p in groups])


def build_embedding(model: SyntheticFlame) -> dict[str, np.ndarray]:
    """`mediapipe_landmark_embedding.npz` arrays for the model: front-facing triangle under each landmark."""
    indices, points = _landmark_layout()
    corners = model.v_template[model.f.astype(np.int64)]  # (F, 3, 3)
    front = corners[:, :, 2].min(axis=1) > 0
    face_idx, bary = [], []
    for point in points:
        a, b, c = (corners[:, k, :2] for k in range(3))
        v0, v1, v2 = b - a, c - a, point - a
        det = v0[:, 0] * v1[:, 1] - v0[:, 1] * v1[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = (v2[:, 0] * v1[:, 1] - v2[:, 1] * v1[:, 0]) / det
            v = (v0[:, 0] * v2[:, 1] - v0[:, 1] * v2[:, 0]) / det
        inside = front & (u >= -1e-9) & (v >= -1e-9) & (u + v <= 1 + 1e-9) & (np.abs(det) > 0)
        triangle = int(np.flatnonzero(inside)[0])
        face_idx.append(triangle)
        bary.append([1 - u[triangle] - v[triangle], u[triangle], v[triangle]])
    return {
        "lmk_face_idx": np.asarray(face_idx, dtype=np.int64),
        "lmk_b_coords": np.clip(np.asarray(bary, dtype=np.float64), 0, 1),
        "landmark_indices": indices,
    }


# ---- landmarks from known parameters -------------------------------------------------------------

def random_parameters(count: int, seed: int, num_shape: int = 300, num_expression: int = 100) -> dict[str, np.ndarray]:
    """Known FLAME parameters for `count` faces: coefficients from FLAME's unit Gaussian priors (clipped at
    ±2.5σ), head turns up to ±23° yaw, ±9° pitch, ±5° roll, the jaw open up to 11°, and a camera that puts
    the face in a 512 crop with ~150 px between the eyes (scale px/m, tx, ty)."""
    rng = np.random.default_rng(seed)
    return {
        "shape": np.clip(rng.normal(size=(count, num_shape)), -2.5, 2.5),
        "expression": np.clip(rng.normal(size=(count, num_expression)), -2.5, 2.5),
        "global_pose": np.stack([rng.uniform(-0.15, 0.15, count), rng.uniform(-0.4, 0.4, count),
                                 rng.uniform(-0.08, 0.08, count)], axis=1),
        "jaw_pose": np.stack([rng.uniform(0.0, 0.2, count), np.zeros(count), np.zeros(count)], axis=1),
        "camera": np.stack([rng.uniform(2200, 2600, count), rng.uniform(236, 276, count),
                            rng.uniform(250, 290, count)], axis=1),
    }


def synthetic_landmarks(assets, embedding, *, shape: np.ndarray, expression: np.ndarray, global_pose: np.ndarray,
                        jaw_pose: np.ndarray, camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe-style (B, 478, 3) landmarks and the (B, V, 3) posed mesh for known parameters.

    Embedded landmarks: x, y = weak-perspective projection (see `fitter`), z = −s·Z (pixel-scale depth);
    468/473 (iris centres): the projected eye joints; every other row: the mean of the embedded ones.
    Arrays: shape (B, S), expression (B, E), poses (B, 3), camera (B, 3) = scale px/m, tx, ty. Float64.
    """
    import torch

    from actors.reconstruct3d.flame.camera import project_points
    from actors.reconstruct3d.flame.fitter import LEFT_IRIS, RIGHT_IRIS
    from actors.reconstruct3d.flame.model import FlameModel

    model = FlameModel(assets, dtype=torch.float64)
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
    batch = len(camera)
    pose = torch.zeros(batch, assets.num_joints, 3, dtype=torch.float64)
    pose[:, 0], pose[:, 2] = t(global_pose), t(jaw_pose)
    with torch.no_grad():
        vertices, joints = model(t(shape), t(expression), pose)
    vertices, joints = vertices.numpy(), joints.numpy()
    corners = vertices[:, assets.faces[embedding.face_idx]]  # (B, L, 3, 3)
    points = (corners * embedding.barycentric[None, :, :, None]).sum(2)
    projected = project_points(points, camera)
    eyes = project_points(joints[:, 3:5], camera)  # joint 3: subject's left eye (+x, image right)
    landmarks = np.repeat(projected.mean(axis=1, keepdims=True), 478, axis=1)
    landmarks[:, embedding.landmark_indices] = projected
    landmarks[:, LEFT_IRIS], landmarks[:, RIGHT_IRIS] = eyes[:, 1], eyes[:, 0]
    return landmarks, vertices


# ---- writing FLAME's file formats ----------------------------------------------------------------

class Pickled:
    """An object pickled as the global `module.name` with a state dict (as chumpy objects are)."""

    def __init__(self, state: dict) -> None:
        self.state = state

    def __reduce_ex__(self, protocol):
        if protocol >= 2:
            return copyreg.__newobj__, (type(self),), self.state
        return copyreg._reconstructor, (type(self), object, None), self.state


class ChumpyCh(Pickled):
    pass


class ChumpyReshape(Pickled):
    pass


def chumpy_state(**terms) -> dict:
    # What chumpy's Ch.__getstate__ keeps (its weak-reference caches are dropped).
    return {**terms, "_dirty_vars": set(terms), "_itr": None, "_depends_on_deps": {},
            "_make_dense": False, "_make_sparse": False}


class AliasPickler(pickle._Pickler):
    """Pure-Python pickler that writes some classes under another module path (no import needed)."""

    def __init__(self, file, protocol: int, aliases: dict[type, tuple[str, str]]) -> None:
        super().__init__(file, protocol=protocol)
        self.aliases = aliases

    def save_global(self, obj, name=None):
        alias = self.aliases.get(obj) if isinstance(obj, type) else None
        if alias is None:
            return super().save_global(obj, name)
        module, qualname = alias
        if self.proto >= 4:
            self.save(module)
            self.save(qualname)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode("ascii"))
        self.memoize(obj)


def flame_pickle_bytes(model: SyntheticFlame, *, protocol: int = 2, sparse_module: str = "scipy.sparse.csc",
                       extra: dict | None = None) -> bytes:
    """The model serialised as FLAME's pickle (chumpy objects and a scipy csc `J_regressor`)."""
    import scipy.sparse

    regressor = scipy.sparse.csc_matrix(model.J_regressor)
    joints = model.J_regressor @ model.v_template
    content = {
        "v_template": ChumpyCh(chumpy_state(x=model.v_template)),
        "shapedirs": ChumpyCh(chumpy_state(x=model.shapedirs)),
        "posedirs": model.posedirs,
        "J_regressor": regressor,
        "kintree_table": model.kintree_table,
        "weights": model.weights,
        "f": model.f,
        "J": ChumpyReshape(chumpy_state(a=ChumpyCh(chumpy_state(x=joints.ravel())), newshape=(NUM_JOINTS, 3))),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        **(extra or {}),
    }
    aliases = {ChumpyCh: ("chumpy.ch", "Ch"), ChumpyReshape: ("chumpy.reordering", "Reshape"),
               type(regressor): (sparse_module, "csc_matrix")}
    buffer = io.BytesIO()
    AliasPickler(buffer, protocol, aliases).dump(content)
    return buffer.getvalue()


def write_flame_pickle(model: SyntheticFlame, path: str | Path, **kwargs) -> Path:
    path = Path(path)
    path.write_bytes(flame_pickle_bytes(model, **kwargs))
    return path


def write_embedding(model: SyntheticFlame, path: str | Path) -> Path:
    path = Path(path)
    np.savez(path, **build_embedding(model))
    return path
