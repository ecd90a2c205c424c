"""Head pose (yaw, pitch, roll in degrees) from the 3D face-mesh landmarks.

Method: least-squares rigid fit (Kabsch/Umeyama with scale) of a frontal reference to the observed
landmarks, then Euler angles of the fitted rotation. The reference is 25 rigid points of MediaPipe's
canonical face mesh (forehead, nose ridge, eye corners, cheekbones, face sides — no mouth, jaw or
brows, which move with expression), copied from `geometry_pipeline_metadata_landmarks.binarypb`.

Frame: x to image right, y up, z toward the camera (the canonical mesh's own frame); landmarks in
image pixels (x right, y down, z smaller = closer, MediaPipe's convention) are flipped into it.
R = Rz(roll) · Ry(yaw) · Rx(-pitch), so roll is the in-plane part and rotating the photo changes
roll alone. Signs:
  yaw   > 0: the nose points toward image right (the subject turns to their left);
  pitch > 0: the face looks up;
  roll  > 0: the face is turned counter-clockwise as the image is displayed — the eye line's angle
             above the horizontal, from the image-left eye to the image-right eye. Rotating a photo by
             +θ with `cv2.getRotationMatrix2D` (counter-clockwise) adds θ to roll.
A mirrored photo negates yaw and roll and keeps pitch.
"""
from __future__ import annotations

import numpy as np

# Landmark index -> canonical mesh vertex (cm).
FRONTAL_REFERENCE = {
    10: (0.000, 8.262, 4.482),
    151: (0.000, 6.545, 5.027),
    9: (0.000, 4.886, 5.385),
    168: (0.000, 3.271, 5.236),
    6: (0.000, 2.473, 5.789),
    197: (0.000, 1.728, 6.317),
    195: (0.000, 1.059, 6.775),
    5: (0.000, 0.366, 7.243),
    4: (0.000, -0.463, 7.587),
    1: (0.000, -1.127, 7.476),
    2: (0.000, -2.089, 6.058),
    98: (-1.406, -1.714, 5.241),
    327: (1.406, -1.714, 5.241),
    33: (-4.446, 2.664, 3.173),
    133: (-1.856, 2.585, 3.758),
    362: (1.856, 2.585, 3.758),
    263: (4.446, 2.664, 3.173),
    234: (-7.664, 0.673, -2.436),
    454: (7.664, 0.673, -2.436),
    127: (-7.743, 2.365, -2.005),
    356: (7.743, 2.365, -2.005),
    116: (-6.465, 0.937, 1.690),
    345: (6.465, 0.937, 1.690),
    50: (-4.766, -0.702, 3.535),
    280: (4.766, -0.702, 3.535),
}
REFERENCE_INDICES = np.array(list(FRONTAL_REFERENCE), dtype=np.int64)
REFERENCE_POINTS = np.array(list(FRONTAL_REFERENCE.values()), dtype=np.float64)


def fit_rotation(landmarks: np.ndarray) -> np.ndarray:
    """3×3 rotation taking the frontal reference onto the landmarks (image pixels, z smaller = closer)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 2 or landmarks.shape[0] < 468 or landmarks.shape[1] != 3:
        raise ValueError(f"landmarks must be (468 or 478, 3), got {landmarks.shape}.")
    observed = landmarks[REFERENCE_INDICES] * np.array([1.0, -1.0, -1.0])  # into x right, y up, z toward camera
    observed = observed - observed.mean(axis=0)
    reference = REFERENCE_POINTS - REFERENCE_POINTS.mean(axis=0)
    u, _, vt = np.linalg.svd(reference.T @ observed)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def euler_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees for R = Rz(roll) · Ry(yaw) · Rx(-pitch)."""
    r = np.asarray(rotation, dtype=np.float64)
    yaw = np.arcsin(np.clip(-r[2, 0], -1.0, 1.0))
    pitch = -np.arctan2(r[2, 1], r[2, 2])
    roll = np.arctan2(r[1, 0], r[0, 0])
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))


def head_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from (478, 3) landmarks in image pixels; conventions above."""
    return euler_from_rotation(fit_rotation(landmarks))
