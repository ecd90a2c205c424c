"""478 face-mesh landmarks for one detected face, in source pixels.

The mesh runs on a small upright "canvas" cut around the detection rather than on the whole photo:
the face is brought to a fixed size (so small faces in large photos are found and large ones cost
no more), turned so its eye line is level (so faces tilted up to ±90° fit as well as upright ones),
and centred (so with several people the mesh fits the face that was chosen). Landmarks are mapped
back through the inverse of that similarity; depth is scaled by the same factor.
"""
from __future__ import annotations

import cv2
import numpy as np

from actors.align.detection import Detection
from actors.align.warp import transform_points, warp_similarity

NUM_LANDMARKS = 478


def canvas_transform(detection: Detection, canvas_size: int, face_size: float) -> np.ndarray:
    """(2, 3) similarity from source pixels to the canvas: face box centred, `face_size` px, eyes level."""
    centre = detection.centre
    scale = face_size / max(detection.box[2] - detection.box[0], detection.box[3] - detection.box[1], 1e-6)
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), -detection.eye_line_angle, scale)
    matrix[:, 2] += canvas_size / 2.0 - centre
    return matrix


def _landmark_array(face, size: int) -> np.ndarray:
    # MediaPipe: x, y normalised by width and height; z by width (same scale as x).
    return np.array([[p.x * size, p.y * size, p.z * size] for p in face.landmark], dtype=np.float64)


def fit_landmarks(face_mesh, rgb: np.ndarray, detection: Detection, canvas_size: int = 384,
                  face_size: float = 160.0) -> np.ndarray | None:
    """(478, 3) landmarks of the detected face in source pixels (z: MediaPipe depth, smaller = closer,
    in the same pixel scale), or None when the mesh finds no face at the canvas centre.

    face_mesh: a `mediapipe.solutions.face_mesh.FaceMesh` with refine_landmarks=True.
    """
    to_canvas = canvas_transform(detection, canvas_size, face_size)
    canvas = warp_similarity(rgb, to_canvas, canvas_size, border="constant")
    result = face_mesh.process(canvas)
    faces = [_landmark_array(face, canvas_size) for face in result.multi_face_landmarks or []]
    faces = [face for face in faces if len(face) == NUM_LANDMARKS]
    if not faces:
        return None
    centre = np.array([canvas_size / 2.0, canvas_size / 2.0])
    distances = [np.linalg.norm(face[:, :2].mean(axis=0) - centre) for face in faces]
    best = int(np.argmin(distances))
    if distances[best] > 0.5 * face_size:  # only a neighbour's face was fitted
        return None
    return transform_points(faces[best], cv2.invertAffineTransform(to_canvas))
