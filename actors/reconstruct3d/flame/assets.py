"""FLAME's model files, read safely into plain numpy arrays.

- `load_flame_model(path)`: FLAME 2020 `generic_model.pkl` or FLAME 2023 `flame2023*.pkl`, through the
  restricted unpickler in `safe_pickle`. Keys used: `v_template` (V, 3), `shapedirs` (V, 3, S) — FLAME
  puts the 300 identity components first and the expression components after them (100 in FLAME
  2020/2023) —, `posedirs` (V, 3, 9·(J−1)), `J_regressor` (J, V) dense or scipy sparse, `kintree_table`
  (2, J) whose first row holds the parents (root = 2³²−1 or −1), `weights` (V, J), `f` (F, 3).
  FLAME's space: metres, +x to the subject's left, +y up, +z out of the face.
- `load_flame_texture(path)`: FLAME's `FLAME_texture.npz` UV layout: `vt` (T, 2) in [0, 1] with v up,
  `ft` (F, 3) indices into `vt`, one row per face of `f`. Only `vt`/`ft` are read.
"""
from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actors.reconstruct3d.flame.safe_pickle import FlameFileError, UnsafePickleError, restricted_loads

FLAME_NUM_SHAPE = 300  # FLAME's identity components come first in `shapedirs`
REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")
MAX_MODEL_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class FlameAssets:
    """FLAME's arrays, ready for `FlameModel`. Geometry float32, indices int64."""

    v_template: np.ndarray  # (V, 3)
    shapedirs: np.ndarray  # (V, 3, S) identity components
    exprdirs: np.ndarray  # (V, 3, E) expression components
    posedirs: np.ndarray  # (V, 3, P) pose-corrective components, P = 9·(J−1)
    J_regressor: np.ndarray  # (J, V) dense
    parents: np.ndarray  # (J,) parent joint per joint, −1 for the root
    weights: np.ndarray  # (V, J) skinning weights
    faces: np.ndarray  # (F, 3)
    uvs: np.ndarray | None = None  # (T, 2) FLAME_texture.npz `vt`
    uv_faces: np.ndarray | None = None  # (F, 3) FLAME_texture.npz `ft`

    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    @property
    def num_joints(self) -> int:
        return self.J_regressor.shape[0]

    @property
    def num_shape(self) -> int:
        return self.shapedirs.shape[2]

    @property
    def num_expression(self) -> int:
        return self.exprdirs.shape[2]

    def with_texture(self, uvs: np.ndarray, uv_faces: np.ndarray) -> "FlameAssets":
        if uv_faces.shape != self.faces.shape:
            raise FlameFileError(f"FLAME_texture ft is {uv_faces.shape}, but the model has faces {self.faces.shape}.")
        return FlameAssets(**{**self.__dict__, "uvs": uvs, "uv_faces": uv_faces})


def _read_model_bytes(path: Path) -> bytes:
    if not path.exists():
        raise FileNotFoundError(f"FLAME model not found: {path} (pass your copy of generic_model.pkl or flame2023.pkl).")
    if not path.is_file():
        raise FlameFileError(f"FLAME model path is not a file: {path}.")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise FlameFileError(f"{path} is {path.stat().st_size} bytes, too large for a FLAME model.")
    data = path.read_bytes()
    if not data:
        raise FlameFileError(f"{path} is empty.")
    if data[:4] == b"PK\x03\x04" or zipfile.is_zipfile(path):
        raise FlameFileError(
            f"{path} is a zip/npz archive, not FLAME's model pickle (did you pass FLAME_texture.npz or the "
            "landmark embedding as the model?)."
        )
    if data[:6] == b"\x93NUMPY":
        raise FlameFileError(f"{path} is a .npy array, not FLAME's model pickle.")
    return data


def _unpickle_model(path: Path, data: bytes) -> dict:
    try:
        content = restricted_loads(data, encoding="latin1")
    except UnsafePickleError:
        raise
    except FlameFileError as error:
        raise FlameFileError(f"{path}: {error}") from error
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, UnicodeDecodeError, OverflowError) as error:
        raise FlameFileError(
            f"{path} is not a readable FLAME pickle (truncated or corrupt?): {type(error).__name__}: {error}"
        ) from error
    if not isinstance(content, dict):
        raise FlameFileError(f"{path} holds a {type(content).__name__}, expected FLAME's dict of arrays.")
    return content


def _array(content: dict, key: str, path: Path, ndim: int, dtype: type) -> np.ndarray:
    value = content[key]
    try:
        array = np.asarray(value)
    except Exception as error:  # noqa: BLE001 - any conversion failure is a format error
        raise FlameFileError(f"{path}: '{key}' is not an array ({type(value).__name__}).") from error
    if array.dtype.kind not in "biuf":
        raise FlameFileError(f"{path}: '{key}' must be numeric, got dtype {array.dtype}.")
    if array.ndim != ndim:
        raise FlameFileError(f"{path}: '{key}' must have {ndim} dimensions, got shape {array.shape}.")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise FlameFileError(f"{path}: '{key}' contains NaN or infinite values.")
    return np.ascontiguousarray(array, dtype=dtype)


def load_flame_model(path: str | Path, *, num_shape: int = FLAME_NUM_SHAPE) -> FlameAssets:
    """Read a FLAME model pickle safely. `num_shape`: identity components before the expression ones."""
    path = Path(path)
    content = _unpickle_model(path, _read_model_bytes(path))
    missing = [key for key in REQUIRED_KEYS if key not in content]
    if missing:
        raise FlameFileError(f"{path} lacks FLAME keys {missing} (found {sorted(map(str, content))}).")

    v_template = _array(content, "v_template", path, 2, np.float32)
    num_vertices = v_template.shape[0]
    if v_template.shape[1] != 3 or num_vertices < 4:
        raise FlameFileError(f"{path}: v_template must be (V, 3), got {v_template.shape}.")
    dirs = _array(content, "shapedirs", path, 3, np.float32)
    if dirs.shape[:2] != (num_vertices, 3):
        raise FlameFileError(f"{path}: shapedirs must be ({num_vertices}, 3, S), got {dirs.shape}.")
    if dirs.shape[2] <= num_shape:
        raise FlameFileError(
            f"{path}: shapedirs has {dirs.shape[2]} components; FLAME stores {num_shape} identity components "
            "followed by the expression components."
        )
    J_regressor = _array(content, "J_regressor", path, 2, np.float32)
    num_joints = J_regressor.shape[0]
    if J_regressor.shape[1] != num_vertices or num_joints < 1:
        raise FlameFileError(f"{path}: J_regressor must be (J, {num_vertices}), got {J_regressor.shape}.")
    posedirs = _array(content, "posedirs", path, 3, np.float32)
    if posedirs.shape != (num_vertices, 3, 9 * (num_joints - 1)):
        raise FlameFileError(
            f"{path}: posedirs must be ({num_vertices}, 3, {9 * (num_joints - 1)}) for {num_joints} joints, "
            f"got {posedirs.shape}."
        )
    weights = _array(content, "weights", path, 2, np.float32)
    if weights.shape != (num_vertices, num_joints):
        raise FlameFileError(f"{path}: weights must be ({num_vertices}, {num_joints}), got {weights.shape}.")
    parents = _parents(_array(content, "kintree_table", path, 2, np.int64), num_joints, path)
    faces = _array(content, "f", path, 2, np.int64)
    if faces.shape[1] != 3 or len(faces) == 0:
        raise FlameFileError(f"{path}: f must be (F, 3), got {faces.shape}.")
    if faces.min() < 0 or faces.max() >= num_vertices:
        raise FlameFileError(f"{path}: f indexes vertices outside 0..{num_vertices - 1}.")
    return FlameAssets(
        v_template=v_template,
        shapedirs=np.ascontiguousarray(dirs[:, :, :num_shape]),
        exprdirs=np.ascontiguousarray(dirs[:, :, num_shape:]),
        posedirs=posedirs,
        J_regressor=J_regressor,
        parents=parents,
        weights=weights,
        faces=faces,
    )


def _parents(kintree: np.ndarray, num_joints: int, path: Path) -> np.ndarray:
    if kintree.shape != (2, num_joints):
        raise FlameFileError(f"{path}: kintree_table must be (2, {num_joints}), got {kintree.shape}.")
    parents = kintree[0].copy()
    parents[0] = -1  # FLAME stores the root's parent as 2**32 - 1
    for joint in range(1, num_joints):
        if not 0 <= parents[joint] < joint:
            raise FlameFileError(f"{path}: kintree_table gives joint {joint} the parent {parents[joint]}; "
                                 "parents must come before their children.")
    return parents


def read_npz_arrays(path: str | Path, keys: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """The named members of an .npz archive, read without unpickling anything."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}.")
    if not path.is_file():
        raise FlameFileError(f"{what} path is not a file: {path}.")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise FlameFileError(f"{path} is not a readable .npz file ({what}): {error}") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise FlameFileError(f"{path} is a single .npy array, expected an .npz archive ({what}) with {list(keys)}.")
    with archive:
        missing = [key for key in keys if key not in archive.files]
        if missing:
            raise FlameFileError(f"{path} lacks {missing} (found {archive.files}); expected {what}.")
        try:
            return {key: archive[key] for key in keys}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise FlameFileError(f"{path}: a member of {what} is unreadable: {error}") from error


def load_flame_texture(path: str | Path, num_faces: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(vt (T, 2) float32, ft (F, 3) int64) from FLAME_texture.npz; nothing pickled is loaded."""
    arrays = read_npz_arrays(path, ("vt", "ft"), "FLAME texture layout (FLAME_texture.npz)")
    vt, ft = arrays["vt"], arrays["ft"]
    if vt.ndim != 2 or vt.shape[1] != 2 or vt.dtype.kind != "f" or not np.isfinite(vt).all():
        raise FlameFileError(f"{path}: vt must be finite (T, 2) floats, got {vt.shape} {vt.dtype}.")
    if ft.ndim != 2 or ft.shape[1] != 3 or ft.dtype.kind not in "iu":
        raise FlameFileError(f"{path}: ft must be (F, 3) integers, got {ft.shape} {ft.dtype}.")
    if ft.size and (ft.min() < 0 or ft.max() >= len(vt)):
        raise FlameFileError(f"{path}: ft indexes texture coordinates outside 0..{len(vt) - 1}.")
    if num_faces is not None and len(ft) != num_faces:
        raise FlameFileError(f"{path}: ft has {len(ft)} faces, the model has {num_faces}.")
    return vt.astype(np.float32), ft.astype(np.int64)
