"""The project's skin-tone measurement: colour maths against scikit-image, signs, masks, landmark sources."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab

from actors.metrics.skin_tone import skin_tone, srgb8_to_lab, srgb_to_lab
from actors.metrics.tone_compare import (
    HUE_CHROMA_FLOOR, angle_difference, avatar_landmarks, compare_tone, detect_landmarks, face_regions, hue_error,
    hue_from_lab, measure_input, region_mask, scaled_landmarks,
)


def shifted(image: np.ndarray, d_lightness: float = 0.0, b_scale: float = 1.0, d_a: float = 0.0) -> np.ndarray:
    """`image` moved in CIELAB (whole image): L* + d_lightness, b* × b_scale, a* + d_a."""
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab[..., 0] = np.clip(lab[..., 0] + d_lightness, 0, 100)
    lab[..., 1] += d_a
    lab[..., 2] *= b_scale
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)


class TestColourMaths:
    def test_srgb8_to_lab_equals_scikit_image(self):
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, (5000, 3), dtype=np.uint8)
        pixels[:256] = np.arange(256)[:, None]  # every code on the grey axis (both branches of the sRGB curve)
        expected = rgb2lab(pixels[:, None, :].astype(np.float64) / 255.0)[:, 0, :]
        np.testing.assert_allclose(srgb8_to_lab(pixels), expected, atol=1e-9)
        np.testing.assert_allclose(srgb8_to_lab(pixels), srgb_to_lab(pixels), atol=1e-9)

    def test_srgb8_to_lab_rejects_floats(self):
        with pytest.raises(ValueError, match="uint8"):
            srgb8_to_lab(np.zeros((4, 3), np.float32))

    def test_hue_and_its_differences(self):
        assert hue_from_lab(np.array([50.0, 10.0, 10.0])) == pytest.approx(45.0)
        assert hue_from_lab(np.array([50.0, -10.0, 0.0])) == pytest.approx(180.0)
        assert angle_difference(179.0, -179.0) == pytest.approx(-2.0)  # wraps, never 358
        assert angle_difference(-179.0, 179.0) == pytest.approx(2.0)
        assert hue_error(6.0, 20.0, 30.0) == pytest.approx(6.0)  # chroma above the floor: the angle itself
        assert hue_error(6.0, HUE_CHROMA_FLOOR / 2, HUE_CHROMA_FLOOR / 2) == pytest.approx(3.0)


class TestMeasurement:
    def test_input_tone_matches_the_aligners_ita_and_mst(self, aligned_faces):
        for face in aligned_faces.values():
            reference = measure_input(face.crop, face.landmarks)
            assert reference.ita == pytest.approx(face.ita, abs=0.5)
            assert reference.mst == face.mst
            assert reference.regions["oval"].pixels > reference.regions["skin"].pixels
            # the median colour and the tone the rest of the project reads agree
            ita, _ = skin_tone(face.crop, face.skin_mask)
            assert reference.ita == pytest.approx(ita, abs=0.5)

    def test_the_oval_holds_the_skin_mask(self, aligned_faces):
        face = aligned_faces["astronaut"]
        skin, oval = (region_mask(face.landmarks, face.crop.shape, m) for m in ("skin", "oval"))
        assert skin.sum() > 20000 and not (skin & ~oval).any()
        with pytest.raises(ValueError, match="mask"):
            region_mask(face.landmarks, face.crop.shape, "cheeks")

    def test_identical_avatar_has_no_difference(self, aligned_faces):
        face = aligned_faces["grace_hopper"]
        reference = measure_input(face.crop, face.landmarks)
        landmarks = {"carried": face.landmarks, "detected": face.landmarks}
        comparison = compare_tone(face.crop, face_regions(face.crop.shape, landmarks), reference)
        assert len(comparison.deltas) == 4
        assert all(d.ita == pytest.approx(0.0, abs=1e-9) and d.hue == pytest.approx(0.0, abs=1e-9)
                   and d.delta_e == pytest.approx(0.0, abs=1e-9) for d in comparison.deltas)
        assert comparison.within(0.01, 0.01)

    @pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
    def test_lighter_and_cooler_avatar_reads_positive_ita_and_lower_hue(self, aligned_faces, name):
        face = aligned_faces[name]
        reference = measure_input(face.crop, face.landmarks)
        drifted = shifted(face.crop, d_lightness=6.0, b_scale=0.8)  # lighter, less yellow: the generative drift
        comparison = compare_tone(drifted, face_regions(drifted.shape, {"carried": face.landmarks}), reference)
        for d in comparison.deltas:
            assert d.ita > 3.0 and d.ita_of_median > 3.0  # both ITA readings: lighter
            assert d.hue < -1.0  # less b*: the hue angle turns toward red (cooler, greyer brown)
            assert d.delta_e > 3.0
        assert comparison.lightening > 3.0 and comparison.worst_ita > 3.0
        assert not comparison.within(2.0, 3.0)

    def test_redder_avatar_reads_lower_hue_and_same_ita(self, aligned_faces):
        face = aligned_faces["astronaut"]
        reference = measure_input(face.crop, face.landmarks)
        redder = shifted(face.crop, d_a=5.0)
        comparison = compare_tone(redder, face_regions(redder.shape, {"carried": face.landmarks}), reference)
        skin = comparison.get("skin", "carried")
        assert skin.hue < -4.0 and abs(skin.ita) < 1.0

    def test_avatar_at_another_size_is_measured_with_scaled_landmarks(self, aligned_faces):
        face = aligned_faces["astronaut"]
        reference = measure_input(face.crop, face.landmarks)
        small = cv2.resize(face.crop, (256, 256), interpolation=cv2.INTER_AREA)
        landmarks = avatar_landmarks(small, None, None, reference)
        assert list(landmarks) == ["input"]
        np.testing.assert_allclose(landmarks["input"][:, :2], face.landmarks[:, :2] / 2.0, atol=1e-4)
        comparison = compare_tone(small, face_regions(small.shape, landmarks), reference)
        assert abs(comparison.worst_ita) < 1.0 and abs(comparison.worst_hue) < 1.5

    def test_landmark_sources_in_order_and_unusable_ones_dropped(self, aligned_faces):
        face = aligned_faces["astronaut"]
        reference = measure_input(face.crop, face.landmarks)
        assert list(avatar_landmarks(face.crop, face.landmarks, face.landmarks, reference)) == ["carried", "detected"]
        assert list(avatar_landmarks(face.crop, None, face.landmarks, reference)) == ["detected"]
        collapsed = np.zeros_like(face.landmarks)  # a degenerate face: no skin to measure
        assert list(avatar_landmarks(face.crop, collapsed, None, reference)) == ["input"]
        np.testing.assert_allclose(scaled_landmarks(face.landmarks, (512, 512), (1024, 1024))[:, :2],
                                   face.landmarks[:, :2] * 2.0, rtol=1e-6)

    def test_detector_output_is_checked(self):
        image = np.zeros((64, 64, 3), np.uint8)
        assert detect_landmarks(image, None) is None
        assert detect_landmarks(image, lambda rgb: None) is None
        with pytest.raises(ValueError, match="478"):
            detect_landmarks(image, lambda rgb: np.zeros((68, 2)))

    def test_bad_inputs(self, aligned_faces):
        face = aligned_faces["astronaut"]
        with pytest.raises(ValueError, match="uint8 RGB"):
            measure_input(face.crop.astype(np.float32), face.landmarks)
        with pytest.raises(ValueError, match="478"):
            measure_input(face.crop, face.landmarks[:100])
        reference = measure_input(face.crop, face.landmarks)
        regions = face_regions(face.crop.shape, {"carried": face.landmarks})
        with pytest.raises(ValueError, match="same size"):
            compare_tone(face.crop[:256], regions, reference)


def test_delta_e_is_scikit_images_ciede2000(aligned_faces):
    face = aligned_faces["astronaut"]
    reference = measure_input(face.crop, face.landmarks)
    drifted = shifted(face.crop, d_lightness=3.0, b_scale=0.9)
    comparison = compare_tone(drifted, face_regions(drifted.shape, {"carried": face.landmarks}), reference)
    for d in comparison.deltas:
        expected = deltaE_ciede2000(np.array(d.reference.lab)[None], np.array(d.avatar.lab)[None])[0]
        assert d.delta_e == pytest.approx(float(expected), abs=1e-9)
