"""`Avatar2DStage`: the 2D part of a generate run for a batch of aligned faces.

For each requested style: stylise the batch (one seed per item from `request.item_seed(id)`), guard
the skin tone, measure identity (SFace cosine input vs avatar), write `out_dir/avatar_<style>.png`.
Returns one dict per item holding the 2D columns of `dataset.schema.RESULTS_SCHEMA` plus `ms_2d`, or
`{"error": "..."}` for an item whose stylisation failed (the others are kept).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from dataset.face import AlignedFace
from actors.request import AvatarRequest
from actors.stylize2d.protocol import StylizedImage, Stylizer
from actors.stylize2d.tone_guard import guard_tone

RESULT_KEYS = ("styles", "avatar_paths", "ita_raw", "mst_raw", "ita_out", "mst_out", "tone_correction",
               "identity", "identity_reason", "ms_2d")


def _empty_result() -> dict:
    result = {key: [] for key in RESULT_KEYS}
    result["ms_2d"] = 0.0
    return result


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def check_avatar(avatar: StylizedImage, size: int) -> None:
    """Raise ValueError unless the engine returned a (size, size, 3) uint8 image."""
    image = getattr(avatar, "image", None)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != (size, size, 3):
        shape = getattr(image, "shape", None)
        raise ValueError(f"The engine returned {type(image).__name__} {shape}, expected ({size}, {size}, 3) uint8.")


def save_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")


class Avatar2DStage:
    """Runs one request's 2D styles over batches of faces. Not thread-safe (the engine and models are not)."""

    def __init__(
        self,
        request: AvatarRequest,
        engine: Stylizer | None = None,
        identity=None,
        landmarks_fn: Callable[[np.ndarray], np.ndarray | None] | None = None,
    ) -> None:
        request.check_inputs()
        if "2d" not in request.modes:
            raise ValueError(f"Avatar2DStage needs '2d' in request.modes, got {request.modes}.")
        if engine is None:
            from actors.stylize2d.registry import create_engine

            engine = create_engine(request.engine, **request.engine_options)
        for style in request.styles:
            if style not in engine.styles:
                raise ValueError(f"Engine {engine.name!r} has no style {style!r}: it offers {engine.styles}.")
        if identity is None:
            from actors.metrics.identity import IdentityModel

            identity = IdentityModel()
        self.request = request
        self.engine = engine
        self.identity = identity
        self.landmarks_fn = landmarks_fn

    def _stylize(self, faces: list[AlignedFace], style: str, seeds: list[int]) -> list[StylizedImage | BaseException]:
        """The batch through the engine; when the batch fails, item by item so one bad item loses nothing else."""
        try:
            avatars = list(self.engine.stylize(faces, style, self.request, seeds))
            if len(avatars) != len(faces):
                raise RuntimeError(f"engine returned {len(avatars)} images for {len(faces)} faces")
            return avatars
        except Exception:  # noqa: BLE001 - retried one by one below to find the failing items
            if len(faces) == 1:
                raise
        outcomes: list[StylizedImage | BaseException] = []
        for face, seed in zip(faces, seeds):
            try:
                outcomes.append(self.engine.stylize([face], style, self.request, [seed])[0])
            except Exception as error:  # noqa: BLE001 - recorded per item
                outcomes.append(error)
        return outcomes

    def _finish(self, avatar: StylizedImage, face: AlignedFace, path: Path) -> tuple:
        check_avatar(avatar, self.request.size)
        image, tone = guard_tone(avatar, face, threshold=self.request.tone_threshold,
                                 enabled=self.request.tone_lock, landmarks_fn=self.landmarks_fn)
        cosine, reason = self.identity.similarity(face.crop, image)
        save_png(image, path)
        return tone, cosine, reason

    def run(self, faces: Sequence[AlignedFace], ids: Sequence[str], out_dirs: Sequence[Path]) -> list[dict]:
        """One dict per face, in order: the 2D result columns and `ms_2d`, or {"error": ...}."""
        if not len(faces) == len(ids) == len(out_dirs):
            raise ValueError(f"faces, ids and out_dirs must have the same length, got {len(faces)}, {len(ids)}, {len(out_dirs)}.")
        seeds = [self.request.item_seed(item_id) for item_id in ids]
        results = [_empty_result() for _ in faces]
        errors: list[str | None] = [None] * len(faces)
        for style in self.request.styles:
            alive = [i for i, error in enumerate(errors) if error is None]
            if not alive:
                break
            start = time.perf_counter()
            try:
                outcomes = self._stylize([faces[i] for i in alive], style, [seeds[i] for i in alive])
            except Exception as error:  # noqa: BLE001 - a one-item batch that failed
                outcomes = [error]
            share = (time.perf_counter() - start) * 1000.0 / len(alive)
            for i, outcome in zip(alive, outcomes):
                item_start = time.perf_counter()
                if isinstance(outcome, BaseException):
                    errors[i] = f"{style}: {_describe(outcome)}"
                    continue
                path = Path(out_dirs[i]) / f"avatar_{style}.png"
                try:
                    tone, cosine, reason = self._finish(outcome, faces[i], path)
                except Exception as error:  # noqa: BLE001 - recorded per item
                    errors[i] = f"{style}: {_describe(error)}"
                    continue
                result = results[i]
                result["styles"].append(style)
                result["avatar_paths"].append(str(path))
                result["ita_raw"].append(float(tone.ita_raw))
                result["mst_raw"].append(int(tone.mst_raw))
                result["ita_out"].append(float(tone.ita_out))
                result["mst_out"].append(int(tone.mst_out))
                result["tone_correction"].append(float(tone.correction))
                result["identity"].append(None if cosine is None else float(cosine))
                result["identity_reason"].append(reason)
                result["ms_2d"] += share + (time.perf_counter() - item_start) * 1000.0
        return [{"error": errors[i]} if errors[i] else results[i] for i in range(len(faces))]
