"""FaceAligner on real photos with the real MediaPipe models."""
from __future__ import annotations

import numpy as np
import pytest

from actors.align.aligner import AlignerOptions, FaceAligner
from actors.align.template import CROP_SIZE, LEFT_IRIS, RIGHT_IRIS, TEMPLATE_POINTS
from dataset.reasons import InputRejected, Reason
from tests.actors.align.photos import rotate, scale, side_by_side

PHOTOS = ("astronaut", "grace_hopper")


@pytest.mark.parametrize("name", PHOTOS)
def test_aligned_face_fields(aligned_faces, package_photos, name):
    face = aligned_faces[name]
    assert face.crop.shape == (CROP_SIZE, CROP_SIZE, 3) and face.crop.dtype == np.uint8
    assert face.mask.shape == (CROP_SIZE, CROP_SIZE) and face.mask.dtype == np.uint8
    assert face.landmarks.shape == (478, 3) and face.landmarks.dtype == np.float32
    assert face.skin_mask.shape == (CROP_SIZE, CROP_SIZE) and face.skin_mask.dtype == bool
    assert face.source_to_crop.shape == (2, 3)
    assert face.num_faces == 1
    assert 1 <= face.mst <= 10 and -90 <= face.ita <= 90
    # The person fills the crop's centre; the corners of a portrait are background.
    assert face.mask[256, 256] > 200
    # The bbox is inside the photo and contains the eyes mapped back to the source.
    height, width = package_photos[name].shape[:2]
    x0, y0, x1, y1 = face.bbox
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    inverse = np.linalg.inv(np.vstack([face.source_to_crop, [0, 0, 1]]))[:2]
    for eye in TEMPLATE_POINTS[:2]:
        sx, sy = inverse @ [eye[0], eye[1], 1.0]
        assert x0 <= sx <= x1 and y0 <= sy <= y1


def _eye_errors(aligner, crop) -> np.ndarray:
    redetected = aligner.landmarks(crop)
    assert redetected is not None, "no face found again in the aligned crop"
    return np.linalg.norm(redetected[[LEFT_IRIS, RIGHT_IRIS], :2] - TEMPLATE_POINTS[:2], axis=1)


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize(
    "variant",
    [
        ("as is", lambda im: im),
        ("rotated +30°", lambda im: rotate(im, 30)),
        ("rotated -30°", lambda im: rotate(im, -30)),
        ("rotated 90°", lambda im: np.ascontiguousarray(np.rot90(im))),
        ("scaled ×0.5", lambda im: scale(im, 0.5)),
        ("scaled ×2.5", lambda im: scale(im, 2.5)),
    ],
    ids=lambda v: v[0],
)
def test_redetected_eyes_land_on_the_template(aligner, package_photos, name, variant):
    face = aligner.align(variant[1](package_photos[name]))
    errors = _eye_errors(aligner, face.crop)
    assert errors.max() < 3.0, f"eye centres {errors.round(2)} px from the template"
    # The landmarks the aligner carried through the warp agree with the re-detection.
    assert np.linalg.norm(face.landmarks[[LEFT_IRIS, RIGHT_IRIS], :2] - TEMPLATE_POINTS[:2], axis=1).max() < 0.5


def test_least_squares_alignment_shares_the_error(package_photos):
    # Grace Hopper's mouth sits far lower than the template's: least squares spreads that miss
    # over all three points, the default pins the eyes.
    with FaceAligner(AlignerOptions(alignment="least_squares")) as aligner:
        face = aligner.align(package_photos["grace_hopper"])
    offsets = np.linalg.norm(face.extras["anchor_offsets_px"], axis=1)
    assert offsets[:2].min() > 3.0 and offsets[2] > 3.0


def test_crop_size_option_scales_the_template(package_photos):
    with FaceAligner(AlignerOptions(crop_size=256)) as aligner:
        face = aligner.align(package_photos["astronaut"])
    assert face.crop.shape == (256, 256, 3) and face.mask.shape == (256, 256)
    eyes = face.landmarks[[LEFT_IRIS, RIGHT_IRIS], :2]
    np.testing.assert_allclose(eyes, TEMPLATE_POINTS[:2] / 2, atol=0.5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8),
        lambda: np.full((300, 300, 3), 200, np.uint8),
        lambda: __import__("skimage.data").data.chelsea(),  # a cat
        lambda: __import__("skimage.data").data.coffee(),
    ],
    ids=["noise", "flat", "cat", "coffee"],
)
def test_no_face_is_rejected(aligner, make):
    with pytest.raises(InputRejected) as caught:
        aligner.align(make())
    assert caught.value.reason is Reason.NO_FACE
    assert aligner.landmarks(make()) is None


@pytest.mark.parametrize("name", PHOTOS)
def test_tiny_face_is_rejected(aligner, package_photos, name):
    tiny = scale(package_photos[name], 0.2)  # faces of ~20-40 px
    with pytest.raises(InputRejected) as caught:
        aligner.align(tiny)
    assert caught.value.reason is Reason.FACE_TOO_SMALL
    assert "48 px" in caught.value.detail
    # Lowering the limit lets the same face through.
    with FaceAligner(AlignerOptions(min_face_size=16)) as permissive:
        assert permissive.align(tiny).num_faces == 1


def test_two_faces_keep_the_larger(aligner, package_photos):
    astronaut, hopper = package_photos["astronaut"], package_photos["grace_hopper"]
    # Hopper at 0.7 (face ~145 px) beats the astronaut (~105 px): the right-hand face is kept.
    face = aligner.align(side_by_side(astronaut, scale(hopper, 0.7)))
    assert face.num_faces == 2
    assert face.bbox[0] > astronaut.shape[1]
    # Hopper at 0.5 (face ~100 px) loses: the left-hand face is kept.
    face = aligner.align(side_by_side(astronaut, scale(hopper, 0.5)))
    assert face.num_faces == 2
    assert face.bbox[2] < astronaut.shape[1]
    # The kept face is the one aligned: its eyes are where the astronaut's are alone.
    alone = aligner.align(astronaut)
    np.testing.assert_allclose(face.source_to_crop, alone.source_to_crop, atol=0.05 * np.abs(alone.source_to_crop).max())


def test_landmarks_are_in_the_given_image_pixels(aligner, package_photos):
    photo = package_photos["astronaut"]
    points = aligner.landmarks(photo)
    assert points.shape == (478, 3) and points.dtype == np.float32
    doubled = aligner.landmarks(scale(photo, 2.0))
    np.testing.assert_allclose(doubled[:, :2], points[:, :2] * 2, atol=4.0)


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((100, 100, 3), np.float32), "uint8"),
        (np.zeros((100, 100), np.uint8), "(H, W, 3)"),
        (np.zeros((100, 100, 4), np.uint8), "(H, W, 3)"),
        (np.zeros((8, 100, 3), np.uint8), "at least"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_bad_arrays_get_a_clear_error(aligner, image, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        aligner.align(image)


@pytest.mark.parametrize(
    "field, value",
    [
        ("min_detection_confidence", 0.0),
        ("min_face_size", 0),
        ("max_faces", 0),
        ("crop_size", 32),
        ("border", "wrap"),
        ("alignment", "affine"),
        ("segmentation_model", 2),
        ("skin_trim", 0.5),
        ("mesh_face_size", 400.0),
    ],
)
def test_options_are_checked(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        FaceAligner(AlignerOptions(**{field: value}))


def test_graphs_are_lazy_and_released(package_photos):
    aligner = FaceAligner()
    assert aligner._detector is None  # nothing built in the constructor
    with aligner:
        assert aligner._detector is not None
    assert aligner._detector is None and aligner._mesh is None and aligner._segmenter is None
    # A closed aligner builds its graphs again on the next call.
    try:
        assert aligner.align(package_photos["astronaut"]).num_faces == 1
    finally:
        aligner.close()


class _MeshResult:
    def __init__(self, faces):
        self.multi_face_landmarks = faces


class _FakeMesh:
    """Stands in for MediaPipe's face mesh: returns canned faces (normalised canvas coordinates)."""

    def __init__(self, faces):
        self.faces = faces

    def process(self, image):
        return _MeshResult(self.faces)

    def close(self):
        pass


def _normalised_face(cx, cy, spread=0.1):
    from types import SimpleNamespace

    rng = np.random.default_rng(0)
    points = rng.normal([cx, cy], spread / 3, (478, 2))
    return SimpleNamespace(landmark=[SimpleNamespace(x=x, y=y, z=0.0) for x, y in points])


@pytest.mark.parametrize("faces", [None, [_normalised_face(0.05, 0.05)]], ids=["mesh finds nothing", "only a neighbour"])
def test_mesh_failure_is_rejected(package_photos, faces):
    with FaceAligner() as aligner:
        aligner._mesh.close()
        aligner._mesh = _FakeMesh(faces)
        with pytest.raises(InputRejected) as caught:
            aligner.align(package_photos["astronaut"])
        assert caught.value.reason is Reason.LANDMARKS_FAILED
        assert aligner.landmarks(package_photos["astronaut"]) is None


def test_the_centred_mesh_face_is_kept(package_photos):
    # A neighbour listed first and the chosen face at the canvas centre: the centre one is mapped back.
    with FaceAligner() as aligner:
        detection = aligner.detect(package_photos["astronaut"])[0]
        aligner._mesh.close()
        aligner._mesh = _FakeMesh([_normalised_face(0.1, 0.1), _normalised_face(0.5, 0.5)])
        points = aligner.landmarks(package_photos["astronaut"])
    np.testing.assert_allclose(points[:, :2].mean(axis=0), detection.centre, atol=3.0)
