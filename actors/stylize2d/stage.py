"""`Avatar2DStage`: the 2D part of a generate run for a batch of aligned faces.

For each requested style: stylise the batch (one seed per item from `request.item_seed(id)`), guard
the skin tone, measure identity (SFace cosine input vs avatar), write `out_dir/avatar_<style>.png`.
Returns one `Avatars2D` per face, or a `Failure` for a face whose stylisation failed (the others are
kept); a face that fails one style is not drawn in the next.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from actors.batching import ItemError, batch_then_items
from actors.request import AvatarRequest
from actors.stage_results import Avatars2D, Failure, StyleAvatar
from actors.stylize2d.protocol import StylizedImage, Stylizer
from actors.stylize2d.tone_guard import guard_tone
from dataset.face import AlignedFace
from dataset.images import write_png
from dataset.reasons import Reason


def check_avatar(avatar: StylizedImage, size: int) -> None:
    """Raise ValueError unless the engine returned a (size, size, 3) uint8 image."""
    image = getattr(avatar, "image", None)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != (size, size, 3):
        shape = getattr(image, "shape", None)
        raise ValueError(f"The engine returned {type(image).__name__} {shape}, expected ({size}, {size}, 3) uint8.")


class Avatar2DStage:
    """Runs one request's 2D styles over batches of faces. Not thread-safe (the engine and models are not)."""

    def __init__(self, request: AvatarRequest, engine: Stylizer, identity,
                 landmarks_fn: Callable[[np.ndarray], np.ndarray | None] | None = None) -> None:
        if "2d" not in request.modes:
            raise ValueError(f"Avatar2DStage needs '2d' in request.modes, got {request.modes}.")
        for style in request.styles:
            if style not in engine.styles:
                raise ValueError(f"Engine {engine.name!r} has no style {style!r}: it offers {engine.styles}.")
        self.request = request
        self.engine = engine
        self.identity = identity  # actors.metrics.identity.IdentityModel
        self.landmarks_fn = landmarks_fn

    def _finish(self, style: str, avatar: StylizedImage, face: AlignedFace, out_dir: Path) -> StyleAvatar:
        check_avatar(avatar, self.request.size)
        image, tone = guard_tone(avatar, face, max_ita=self.request.tone_max_ita, max_hue=self.request.tone_max_hue,
                                 enabled=self.request.tone_lock, landmarks_fn=self.landmarks_fn)
        cosine, reason = self.identity.similarity(face.crop, image)
        path = write_png(out_dir / f"avatar_{style}.png", image)
        return StyleAvatar(style, path, tone, cosine, reason or "")

    def run(self, faces: Sequence[AlignedFace], ids: Sequence[str],
            out_dirs: Sequence[Path]) -> list[Avatars2D | Failure]:
        """One `Avatars2D` or `Failure` per face, in order."""
        if not len(faces) == len(ids) == len(out_dirs):
            raise ValueError(f"faces, ids and out_dirs must have the same length, got {len(faces)}, {len(ids)}, {len(out_dirs)}.")
        seeds = [self.request.item_seed(item_id) for item_id in ids]
        outcomes: list[Avatars2D | Failure] = [Avatars2D() for _ in faces]
        for style in self.request.styles:
            alive = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, Avatars2D)]
            if not alive:
                break
            started = time.perf_counter()
            drawn = batch_then_items(
                lambda batch: self.engine.stylize([faces[i] for i in batch], style, self.request, [seeds[i] for i in batch]),
                alive,
            )
            share = (time.perf_counter() - started) * 1000.0 / len(alive)
            for i, avatar in zip(alive, drawn):
                item_started = time.perf_counter()
                if isinstance(avatar, ItemError):
                    outcomes[i] = Failure(Reason.ENGINE_ERROR, f"{style}: {avatar.detail}")
                    continue
                try:
                    finished = self._finish(style, avatar, faces[i], Path(out_dirs[i]))
                except Exception as error:  # noqa: BLE001 - recorded per item
                    outcomes[i] = Failure(Reason.ENGINE_ERROR, f"{style}: {ItemError.of(error).detail}")
                    continue
                outcomes[i].avatars.append(finished)
                outcomes[i].ms += share + (time.perf_counter() - item_started) * 1000.0
        return outcomes
