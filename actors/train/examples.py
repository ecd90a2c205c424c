"""Training examples: a decoded, resized face crop with its caption.

`prepare_batch` is the Ray Data step (`map_batches`, pandas batches): it marks the rows the
`RowFilter` rejects, decodes the other crops and builds their captions. `examples_from_rows`
turns the collected rows into `TrainingExample`s for the trainer.
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from actors.train.captions import DEFAULT_TEMPLATE, build_caption
from actors.train.selection import RowFilter, is_missing

MAX_CROP_PIXELS = 4096 * 4096  # decompression-bomb guard: shard crops are 512×512
READ_COLUMNS = ("id", "status", "crop", "bbox", "yaw", "mst", "gender", "age", "expression")


@dataclass(frozen=True)
class TrainingExample:
    """One training image: `image` is (resolution, resolution, 3) uint8 RGB."""

    id: str
    image: np.ndarray
    caption: str
    mst: int | None = None


def decode_crop(data: bytes, resolution: int) -> np.ndarray:
    """PNG/JPEG bytes → (resolution, resolution, 3) uint8 RGB. Raises ValueError on bad bytes."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ValueError("Crop is empty: no image bytes.")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ("PNG", "JPEG"):
                raise ValueError(f"Crop must be PNG or JPEG, got {image.format}.")
            width, height = image.size
            if width * height > MAX_CROP_PIXELS:
                raise ValueError(f"Crop of {width}×{height} pixels exceeds the {MAX_CROP_PIXELS}-pixel limit.")
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"Crop bytes are not a readable image: {error}.") from None
    if rgb.size != (resolution, resolution):
        rgb = rgb.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8)


def prepare_batch(batch, *, resolution: int, row_filter: RowFilter, trigger: str, template: str = DEFAULT_TEMPLATE):
    """Ray Data step over a pandas batch: decode and caption the rows the filter keeps.

    Every input row comes out (so the job can count why rows were dropped), with columns id,
    image (raw RGB bytes, resolution² × 3; empty when dropped), caption, mst and `dropped`: "" for
    a training row, else the filter's reason or "bad_crop" for a crop that does not decode (one
    bad row must not fail the dataset).
    """
    import pandas as pd

    reasons = row_filter.reasons(batch)
    out = {"id": [], "image": [], "caption": [], "mst": [], "dropped": []}
    for reason, row in zip(reasons, batch.to_dict("records")):
        image = b""
        if not reason:
            try:
                image = decode_crop(row["crop"], resolution).tobytes()
            except ValueError:
                reason = "bad_crop"
        out["id"].append(str(row["id"]))
        out["image"].append(image)
        out["caption"].append(build_caption(row, trigger, template) if not reason else "")
        out["mst"].append(_optional_int(row.get("mst")))
        out["dropped"].append(str(reason))
    return pd.DataFrame(out, columns=list(out))


def examples_from_rows(rows: Iterable[Mapping], resolution: int) -> list[TrainingExample]:
    """`TrainingExample`s from collected `prepare_batch` rows (dropped rows are left out)."""
    shape = (resolution, resolution, 3)
    return [
        TrainingExample(id=row["id"], image=np.frombuffer(row["image"], dtype=np.uint8).reshape(shape).copy(),
                        caption=row["caption"], mst=_optional_int(row.get("mst")))
        for row in rows
        if not row["dropped"]
    ]


def _optional_int(value) -> int | None:
    if is_missing(value):
        return None
    return int(value)
