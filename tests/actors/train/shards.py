"""Training shards for the LoRA tests: real aligned crops, jittered into a few rows, in SHARD_SCHEMA."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np

from tests.tiny_sd import build_tiny_sd

# (face, flip, shift px, brightness, gender, age, expression, mst, yaw, face size px)
ROWS = (
    ("astronaut", False, 0, 1.00, "FEMALE", "YOUNG", "HAPPINESS", 3, 2.0, 180.0),
    ("astronaut", True, 6, 0.90, "FEMALE", "YOUNG", "NEUTRAL", 3, -4.0, 176.0),
    ("astronaut", False, -6, 0.80, "FEMALE", "MIDDLE", "HAPPINESS", 6, 8.0, 150.0),
    ("astronaut", True, 10, 1.10, None, None, None, 6, 12.0, 40.0),  # small face
    ("grace_hopper", False, 0, 1.00, "FEMALE", "OLD", "NEUTRAL", 2, -3.0, 220.0),
    ("grace_hopper", True, -8, 0.85, "FEMALE", "OLD", "HAPPINESS", 2, 5.0, 210.0),
    ("grace_hopper", False, 8, 0.70, "FEMALE", "OLD", "SADNESS", 8, -10.0, 200.0),
    ("grace_hopper", True, 4, 0.95, "FEMALE", "OLD", "NEUTRAL", 8, 48.0, 205.0),  # turned away
)


def jitter(crop: np.ndarray, flip: bool, shift: int, brightness: float) -> np.ndarray:
    out = crop[:, ::-1] if flip else crop
    out = np.roll(out, shift, axis=1)
    return np.clip(out.astype(np.float32) * brightness, 0, 255).astype(np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def shard_rows(aligned_faces) -> list[dict]:
    """Eight `ok` rows from the package photos' aligned crops plus one `rejected` row."""
    from dataset.schema import SHARD_SCHEMA, empty_row

    rows = []
    for i, (name, flip, shift, brightness, gender, age, expression, mst, yaw, size) in enumerate(ROWS):
        face = aligned_faces[name]
        row = empty_row(SHARD_SCHEMA)
        row.update(
            id=f"{i:02d}" + "ab" * 31, source=f"{name}_{i}.png", status="ok", reason="", detail="",
            width=512, height=512, num_faces=1, crop=png_bytes(jitter(face.crop, flip, shift, brightness)),
            landmarks=face.landmarks.reshape(-1).astype(np.float32).tolist(),
            source_to_crop=face.source_to_crop.reshape(-1).tolist(), bbox=[10.0, 20.0, 10.0 + size, 20.0 + size * 1.2],
            yaw=yaw, pitch=0.0, roll=0.0, ita=30.0, mst=mst, gender=gender, age=age, expression=expression,
        )
        rows.append(row)
    rejected = empty_row(SHARD_SCHEMA)
    rejected.update(id="ff" * 32, source="not_a_face.png", status="rejected", reason="no_face",
                    detail="no face found", width=64, height=64, num_faces=0)
    rows.append(rejected)
    return rows


def write_shards(folder: Path, aligned_faces) -> Path:
    """Write DIR/shards/part-0.parquet as the preprocess job does (`dataset.shards.write_shard`,
    pyarrow Parquet in SHARD_SCHEMA) and return DIR."""
    from dataset.shards import write_shard

    write_shard(shard_rows(aligned_faces), Path(folder) / "shards" / "part-0.parquet")
    return Path(folder)


def build_overfit_sd(path: Path, output_scale: float = 4.0) -> Path:
    """The tiny pipeline with its UNet's output conv scaled by `output_scale`.

    The toy UNet's random `conv_out` caps its output near 0.4 std, so no attention LoRA can take the
    noise-prediction loss much below 1 (predicting zeros); scaled, the output reaches the target's
    scale and the start loss is well above what training can reach, which the overfit test measures.
    """
    import torch
    from diffusers import UNet2DConditionModel

    build_tiny_sd(path)
    unet = UNet2DConditionModel.from_pretrained(Path(path) / "unet")
    with torch.no_grad():
        unet.conv_out.weight.mul_(output_scale)
        unet.conv_out.bias.mul_(output_scale)
    shutil.rmtree(Path(path) / "unet")
    unet.save_pretrained(Path(path) / "unet")
    return Path(path)
