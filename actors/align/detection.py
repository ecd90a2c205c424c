"""Face detection with MediaPipe's full-range BlazeFace, in source pixels.

BlazeFace is trained on roughly upright faces; a face turned a quarter turn (a sideways photo with
no EXIF tag) is often missed. `detect_faces` can look again at the photo turned ±90° and map what
it finds back to the original pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# MediaPipe's keypoint order: eyes (image-left first on an upright photo), nose tip, mouth centre, ear tragions.
EYE_A, EYE_B = 0, 1


@dataclass(frozen=True)
class Detection:
    """One detected face. Coordinates are source pixels (x right, y down)."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    keypoints: np.ndarray  # (6, 2): eye, eye, nose tip, mouth centre, ear, ear

    @property
    def size(self) -> float:
        """Shorter side of the box."""
        return min(self.box[2] - self.box[0], self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])

    @property
    def eye_line_angle(self) -> float:
        """Angle of the eye line in degrees, counter-clockwise as displayed (0 for an upright face)."""
        dx, dy = self.keypoints[EYE_B] - self.keypoints[EYE_A]
        return float(np.degrees(np.arctan2(-dy, dx)))


def _rotation_back(k: int, height: int, width: int) -> np.ndarray:
    """(2, 3) affine from pixels of `np.rot90(image, k)` back to pixels of `image` (H×W)."""
    if k == 1:  # turned counter-clockwise: rotated (x', y') came from (W - 1 - y', x')
        return np.array([[0.0, -1.0, width - 1.0], [1.0, 0.0, 0.0]])
    if k == 3:  # turned clockwise: rotated (x', y') came from (y', H - 1 - x')
        return np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, height - 1.0]])
    raise ValueError(f"k must be 1 or 3, got {k}.")


def _run(detector, rgb: np.ndarray) -> list[Detection]:
    height, width = rgb.shape[:2]
    result = detector.process(rgb)
    found = []
    for item in result.detections or []:
        rel = item.location_data.relative_bounding_box
        x0, y0 = rel.xmin * width, rel.ymin * height
        box = (x0, y0, x0 + rel.width * width, y0 + rel.height * height)
        keypoints = np.array([[p.x * width, p.y * height] for p in item.location_data.relative_keypoints])
        found.append(Detection(box=box, score=float(item.score[0]), keypoints=keypoints))
    return found


def _map(detection: Detection, matrix: np.ndarray) -> Detection:
    x0, y0, x1, y1 = detection.box
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]) @ matrix[:, :2].T + matrix[:, 2]
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    keypoints = detection.keypoints @ matrix[:, :2].T + matrix[:, 2]
    return Detection(box=(lo[0], lo[1], hi[0], hi[1]), score=detection.score, keypoints=keypoints)


def detect_faces(detector, rgb: np.ndarray, try_rotations: bool = True) -> list[Detection]:
    """All faces `detector` (a `mediapipe.solutions.face_detection.FaceDetection`) finds, largest first.

    With `try_rotations`, a photo with no upright face is searched again turned 90° each way.
    """
    found = _run(detector, rgb)
    if not found and try_rotations:
        height, width = rgb.shape[:2]
        for k in (1, 3):
            turned = _run(detector, np.ascontiguousarray(np.rot90(rgb, k)))
            if turned:
                back = _rotation_back(k, height, width)
                found = [_map(d, back) for d in turned]
                break
    return sorted(found, key=lambda d: d.area, reverse=True)
