"""Similarity transforms: least-squares fit, image warp, landmark mapping."""
from __future__ import annotations

import cv2
import numpy as np

BORDERS = {"reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}


def estimate_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(2, 3) rotation + uniform scale + translation mapping `source` points onto `target` in the
    least-squares sense (Umeyama 1991; no reflection). Both (N ≥ 2, 2)."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 2 or len(source) < 2:
        raise ValueError(f"source and target must both be (N >= 2, 2), got {source.shape} and {target.shape}.")
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    centred_s, centred_t = source - mean_s, target - mean_t
    variance = (centred_s**2).sum() / len(source)
    if variance <= 1e-12:
        raise ValueError("source points coincide: no transform is defined.")
    u, sigma, vt = np.linalg.svd(centred_t.T @ centred_s / len(source))
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(sigma) @ sign) / variance)
    translation = mean_t - scale * rotation @ mean_s
    return np.hstack([scale * rotation, translation[:, None]])


def similarity_scale(matrix: np.ndarray) -> float:
    """The uniform scale of a (2, 3) similarity."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, dtype=np.float64)[:, :2]))))


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(2, 3) affine equal to applying `inner` first, then `outer`."""
    as3 = lambda m: np.vstack([np.asarray(m, dtype=np.float64), [0.0, 0.0, 1.0]])  # noqa: E731
    return (as3(outer) @ as3(inner))[:2]


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (N, 2 or 3) points through a (2, 3) similarity; a third column (depth) is multiplied by its scale."""
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    out = points.copy()
    out[:, :2] = points[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    if points.shape[1] > 2:
        out[:, 2:] = points[:, 2:] * similarity_scale(matrix)
    return out


def warp_similarity(image: np.ndarray, matrix: np.ndarray, size: int, border: str = "reflect") -> np.ndarray:
    """Warp `image` by a (2, 3) similarity into a `size`×`size` image.

    When the warp shrinks, the region that lands in the output is first resized with INTER_AREA
    (no aliasing on large photos), then warped with INTER_LINEAR. Pixels from outside the photo
    follow `border`: "reflect" (mirror without repeating the edge, the default: no hard black
    wedges for the later stages to stylise), "replicate" or "constant" (black).
    """
    if border not in BORDERS:
        raise ValueError(f"Unknown border {border!r}: choose from {tuple(BORDERS)}.")
    matrix = np.asarray(matrix, dtype=np.float64)
    scale = similarity_scale(matrix)
    if scale < 1.0:
        image, matrix = _shrink_source(image, matrix, size, scale)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=BORDERS[border], borderValue=0)


def _shrink_source(image: np.ndarray, matrix: np.ndarray, size: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Cut the part of `image` that the warp samples, resize it by `scale`, and adjust the matrix."""
    height, width = image.shape[:2]
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
    source_corners = transform_points(corners, cv2.invertAffineTransform(matrix))
    x0, y0 = np.floor(source_corners.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(source_corners.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image, matrix  # the output lies (almost) wholly outside the photo
    region = image[y0:y1, x0:x1]
    new_w, new_h = max(int(round((x1 - x0) * scale)), 1), max(int(round((y1 - y0) * scale)), 1)
    small = cv2.resize(region, (new_w, new_h), interpolation=cv2.INTER_AREA)
    fx, fy = new_w / (x1 - x0), new_h / (y1 - y0)
    # small pixel (u, v) ↔ source ((u + 0.5) / fx - 0.5 + x0, ...): pixel centres line up under resize.
    small_to_source = np.array([[1 / fx, 0, x0 + 0.5 / fx - 0.5], [0, 1 / fy, y0 + 0.5 / fy - 0.5]])
    return small, compose(matrix, small_to_source)
