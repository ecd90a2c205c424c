"""An open-mouth photo gives jawOpen > 0.3, and the head carries it as its default morph weight."""
import numpy as np
import pytest

from actors.align.aligner import FaceAligner

from .mouth_warp import open_mouth


@pytest.fixture(scope="module")
def open_mouth_face(aligned_faces):
    """Grace Hopper's crop with the mouth warped open, aligned again from scratch."""
    face = aligned_faces["grace_hopper"]
    photo = open_mouth(face.crop, face.landmarks, opening=0.6)
    with FaceAligner() as aligner:
        return aligner.align(photo)


def test_open_mouth_photo_opens_the_jaw(makehuman_engine, package_heads, open_mouth_face):
    mesh = makehuman_engine.reconstruct([open_mouth_face])[0]
    scores = dict(zip(mesh.params["blendshape_names"], mesh.params["blendshape_scores"]))
    assert scores["jawOpen"] > 0.3  # MediaPipe's own score on the photo
    assert mesh.morph_weights["jawOpen"] > 0.3  # the head's default expression
    assert package_heads["grace_hopper"].morph_weights["jawOpen"] < 0.2  # the same face, mouth closed
    assert mesh.landmark_nme <= 0.02
    # The posed head really has its lips apart in the photo (crop pixels between the inner lips' centres).
    lips = makehuman_engine.model.landmarks(mesh.image_points)
    assert lips[14, 1] - lips[13, 1] > 0.25 * np.linalg.norm(lips[61, :2] - lips[291, :2])
    mesh.check_inputs()
