"""The independent tone checker (tests/independent_tone.py): its own colour maths against scikit-image and
colour-science, its own detection and masks, and that it shares no code with the project."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from tests import independent_tone as it

CHECKER_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "checker"

# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula", table 1: pairs 1, 2, 3, 7, 10, 17.
SHARMA_PAIRS = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.5, 0.0), (50.0, 0.0, -2.5), 4.3065),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
]


@pytest.fixture(scope="module")
def random_rgb() -> np.ndarray:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (4000, 3), dtype=np.uint8)
    pixels[:256] = np.arange(256)[:, None]
    return pixels


@pytest.fixture(scope="module")
def random_lab_pairs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    a = np.column_stack([rng.uniform(0, 100, 3000), rng.uniform(-60, 60, 3000), rng.uniform(-60, 60, 3000)])
    b = a + rng.normal(0, 6, a.shape)
    # nearly opposite hues, both ways round: the 180° wrap of the mean hue (exactly opposite hues are
    # ambiguous in floating point, and scikit-image and colour-science take different branches there)
    for rows, turn in ((slice(0, 250), 170.0), (slice(250, 500), 190.0)):
        angle = np.radians(turn)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        b[rows, 1:] = a[rows, 1:] @ rotation.T
    b[500:600, 1:] = 0.0  # achromatic partners
    return a, b


class TestColourMathsAgainstScikitImage:
    def test_rgb_to_lab(self, random_rgb):
        from skimage.color import rgb2lab

        expected = rgb2lab(random_rgb[:, None, :].astype(np.float64) / 255.0)[:, 0, :]
        # scikit-image rounds the sRGB matrix to 6 digits: agreement to far below a visible difference
        np.testing.assert_allclose(it.rgb_to_lab(random_rgb), expected, atol=5e-3)
        np.testing.assert_allclose(it.rgb_to_lab(random_rgb.astype(np.float64) / 255.0), expected, atol=5e-3)

    def test_ciede2000(self, random_lab_pairs):
        from skimage.color import deltaE_ciede2000

        a, b = random_lab_pairs
        np.testing.assert_allclose(it.delta_e_2000(a, b), deltaE_ciede2000(a, b), atol=1e-6)

    def test_ciede2000_published_pairs(self):
        for lab1, lab2, expected in SHARMA_PAIRS:
            assert float(it.delta_e_2000(np.array(lab1), np.array(lab2))) == pytest.approx(expected, abs=5e-4)
            assert float(it.delta_e_2000(np.array(lab2), np.array(lab1))) == pytest.approx(expected, abs=5e-4)


class TestColourMathsAgainstColourScience:
    colour = pytest.importorskip("colour")

    def test_rgb_to_lab(self, random_rgb):
        colour = self.colour
        expected = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(random_rgb.astype(np.float64) / 255.0))
        # colour-science derives the D65 white from its chromaticity (0.3127, 0.3290): Z differs in the
        # 4th digit from the tabulated 1.08883, a few hundredths of a b* unit at most
        np.testing.assert_allclose(it.rgb_to_lab(random_rgb), expected, atol=3e-2)

    def test_ciede2000(self, random_lab_pairs):
        a, b = random_lab_pairs
        np.testing.assert_allclose(it.delta_e_2000(a, b), self.colour.delta_E(a, b, method="CIE 2000"), atol=1e-6)


def test_ita_and_hue_formulas():
    lab = np.array([[60.0, 10.0, 20.0], [40.0, 15.0, 15.0]])
    np.testing.assert_allclose(it.ita_degrees(lab), np.degrees(np.arctan((lab[:, 0] - 50.0) / lab[:, 2])))
    np.testing.assert_allclose(it.hue_degrees(lab), [np.degrees(np.arctan2(20, 10)), 45.0])
    assert it.angle_difference(-170.0, 170.0) == pytest.approx(20.0)


def test_it_shares_no_code_with_the_project():
    """Only the standard library, numpy, OpenCV and MediaPipe: nothing from actors/, dataset/, jobs/, serve/."""
    tree = ast.parse(Path(it.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "importlib", "dataclasses", "pathlib", "cv2", "numpy", "mediapipe"}, imported


def test_box_overlap_and_mesh_agreement():
    assert it.box_overlap((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert it.box_overlap((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert it.box_overlap((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    face_box = (100.0, 80.0, 400.0, 480.0)
    rng = np.random.default_rng(0)
    whole_face = rng.uniform([110, 90], [390, 470], (478, 2))
    one_eye = rng.uniform([110, 150], [235, 265], (478, 2))
    assert it.mesh_agrees_with_box(whole_face, face_box)
    assert not it.mesh_agrees_with_box(one_eye, face_box)
    assert it.mesh_agrees_with_box(one_eye, None)  # nothing to check against: the mesh stands


class TestDetectionAndMasks:
    @pytest.fixture(scope="class")
    def checker(self):
        checker = it.IndependentToneChecker()
        yield checker
        checker.close()

    def test_finds_the_package_faces_with_its_own_landmarker(self, checker, aligned_faces):
        for face in aligned_faces.values():
            geometry = checker.detector(face.crop)
            assert geometry is not None and geometry.source == "landmarker" and geometry.points.shape == (478, 2)
            # the same face as the project's aligner found: eye corners within a few pixels
            for index in (33, 133, 263, 362):
                assert np.linalg.norm(geometry.points[index] - face.landmarks[index, :2]) < 12.0

    def test_masks(self, checker, aligned_faces):
        face = aligned_faces["astronaut"]
        masks = it.face_masks(checker.detector(face.crop), face.crop.shape[:2])
        assert masks["skin"].sum() > 20000 and not (masks["skin"] & ~masks["oval"]).any()
        # eyes and mouth are out of the skin mask
        for index in (468, 473, 13):
            x, y = np.round(face.landmarks[index, :2]).astype(int)
            assert not masks["skin"][y, x] and masks["oval"][y, x]

    def test_falls_back_to_yunet_points(self, checker, aligned_faces):
        face = aligned_faces["astronaut"]
        found = checker.detector._yunet
        assert found is not None
        geometry = it.FaceGeometry(it.np.array([[181, 215], [331, 215], [256, 290], [200, 350], [312, 350]], float), "yunet")
        masks = it.face_masks(geometry, face.crop.shape[:2])
        assert masks["skin"].sum() > 2000 and masks["oval"].sum() > masks["skin"].sum()

    def test_an_image_against_itself_and_against_a_lighter_copy(self, checker, aligned_faces):
        from tests.actors.metrics.test_tone_compare import shifted

        face = aligned_faces["grace_hopper"]
        same = checker.compare(face.crop, face.crop)
        assert all(m.ita == 0.0 and m.hue == 0.0 and m.delta_e == 0.0 for m in same.masks.values())
        lighter = checker.compare(face.crop, shifted(face.crop, d_lightness=6.0, b_scale=0.8))
        assert lighter.lightening > 3.0 and all(m.hue < -1.0 for m in lighter.masks.values())
        assert not lighter.within()

    def test_one_region_for_both_images(self, checker, aligned_faces):
        """Four readings (skin and oval, from the input's and from the avatar's landmarks), each with both
        images under the same pixels: zero against itself, all lighter against a lighter copy; a shifted
        face moves the avatar's region, not what the input's region reads on the input."""
        from tests.actors.metrics.test_tone_compare import shifted

        face = aligned_faces["grace_hopper"]
        same = checker.compare_same_region(face.crop, face.crop)
        assert sorted(same.masks) == ["oval@avatar", "oval@input", "skin@avatar", "skin@input"]
        assert all(m.ita == 0.0 and m.hue == 0.0 and m.delta_e == 0.0 for m in same.masks.values())
        lighter = checker.compare_same_region(face.crop, shifted(face.crop, d_lightness=6.0, b_scale=0.8))
        assert all(m.ita > 3.0 for m in lighter.masks.values()) and not lighter.within()
        moved = np.roll(face.crop, 30, axis=1)
        reading = checker.compare_same_region(face.crop, moved)
        assert reading.masks["skin@input"].input.lab == pytest.approx(same.masks["skin@input"].input.lab)
        assert reading.masks["skin@avatar"].input.lab != pytest.approx(same.masks["skin@avatar"].input.lab)
        with pytest.raises(ValueError, match="same shape"):
            checker.compare_same_region(face.crop, face.crop[:-1])

    def test_a_mesh_fitted_around_one_eye_is_not_taken_for_the_face(self, checker):
        """On this dark sketch avatar the landmarker fits its whole mesh around the left eye and glasses.
        Its "face oval" held eye, lid and frame, not skin, and read the avatar's hue 3.4° off the input's
        under that region; the checker now takes YuNet's five points there."""
        import mediapipe as mp
        from PIL import Image

        rgb = np.asarray(Image.open(CHECKER_FIXTURES / "mesh_on_one_eye.jpg").convert("RGB")).copy()
        detector = checker.detector
        detector._load()
        mesh = detector._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)).face_landmarks
        face = detector._largest_yunet_face(rgb)
        assert mesh and face is not None  # the fixture still shows the false find
        points = np.array([[p.x * rgb.shape[1], p.y * rgb.shape[0]] for p in mesh[0]])
        box = it.yunet_box(face)
        assert it.box_overlap(it.points_box(points), box) < 0.2
        geometry = detector(rgb)
        assert geometry.source == "yunet"
        eyes, mouth = geometry.points[:2], geometry.points[3:]
        assert np.all((geometry.points >= [box[0], box[1]]) & (geometry.points <= [box[2], box[3]]))
        assert mouth[:, 1].mean() - eyes[:, 1].mean() > 0.25 * face[3]  # a face, not an eye

    def test_no_face(self, checker):
        assert checker.measure(np.full((256, 256, 3), 128, np.uint8)) is None
