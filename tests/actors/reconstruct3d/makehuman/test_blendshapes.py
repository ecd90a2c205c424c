"""ARKit blendshape scores from MediaPipe's FaceLandmarker (Tasks API) on aligned crops."""
import numpy as np
import pytest

from actors.align.blendshapes import BlendshapeEstimator
from actors.reconstruct3d.makehuman.expressions import ARKIT_NAMES


@pytest.fixture(scope="module")
def estimator():
    with BlendshapeEstimator() as estimator:
        yield estimator


def test_scores_for_the_package_photos(estimator, aligned_faces):
    smiling = estimator.estimate(aligned_faces["astronaut"].crop)
    calm = estimator.estimate(aligned_faces["grace_hopper"].crop)
    assert set(smiling) == set(ARKIT_NAMES) - {"tongueOut"}  # MediaPipe scores 51 of ARKit's 52
    assert all(0.0 <= v <= 1.0 for v in smiling.values())
    assert min(smiling["mouthSmileLeft"], smiling["mouthSmileRight"]) > 0.6
    assert max(calm["mouthSmileLeft"], calm["mouthSmileRight"]) < 0.3


def test_left_is_the_subjects_left(estimator, aligned_faces):
    """Covering the subject's left eye (image right, landmark 473) with cheek skin raises eyeBlinkLeft."""
    face = aligned_faces["astronaut"]
    before = estimator.estimate(face.crop)
    x, y = face.landmarks[473, :2].astype(int)
    covered = face.crop.copy()
    covered[y - 12 : y + 18, x - 30 : x + 30] = face.crop[y + 30 : y + 60, x - 30 : x + 30]
    after = estimator.estimate(covered)
    assert after["eyeBlinkLeft"] - before["eyeBlinkLeft"] > 2 * (after["eyeBlinkRight"] - before["eyeBlinkRight"])
    assert after["eyeBlinkLeft"] - before["eyeBlinkLeft"] > 0.05


def test_no_face_and_bad_input(estimator):
    assert estimator.estimate(np.zeros((256, 256, 3), np.uint8)) is None
    with pytest.raises(ValueError, match="uint8"):
        estimator.estimate(np.zeros((256, 256, 3), np.float32))
    with pytest.raises(ValueError, match="at least 32"):
        estimator.estimate(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="min_confidence"):
        BlendshapeEstimator(min_confidence=1.5)


def test_close_releases_and_rebuilds(aligned_faces):
    estimator = BlendshapeEstimator()
    assert estimator._landmarker is None  # nothing loads in the constructor
    first = estimator.estimate(aligned_faces["grace_hopper"].crop)
    estimator.close()
    assert estimator._landmarker is None
    again = estimator.estimate(aligned_faces["grace_hopper"].crop)
    estimator.close()
    assert first == pytest.approx(again)
