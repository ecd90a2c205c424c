"""The Parquet schemas: preprocessing shards and generation results, in one place.

Shards (`DIR/shards/*.parquet`, written by `jobs.preprocess`): one row per input photo.

| column | type | meaning |
|---|---|---|
| id | string | sha256 of the input's bytes (hex) |
| source | string | where the input came from: a path, or `archive.zip!member/name.jpg` |
| status | string | `ok` / `rejected` / `failed` (dataset.reasons.Status) |
| reason | string | reason code when not ok, else "" (dataset.reasons.Reason) |
| detail | string | human-readable explanation of the reason |
| width, height | int32 | decoded size of the source photo (0 when not decoded) |
| num_faces | int32 | faces detected (the largest is kept) |
| crop | binary | aligned 512×512 face, PNG bytes |
| mask | binary | person segmentation of the crop, 8-bit PNG bytes |
| skin_mask | binary | skin region of the crop, 1-bit-as-8-bit PNG bytes |
| landmarks | fixed_size_list<float32>[1434] | 478×3 landmarks in crop pixels, flattened row-major |
| source_to_crop | fixed_size_list<float64>[6] | 2×3 similarity transform, flattened |
| bbox | fixed_size_list<float32>[4] | face box in source pixels x0, y0, x1, y1 |
| yaw, pitch, roll | float32 | head pose in degrees |
| ita | float32 | skin ITA° of the crop |
| mst | int8 | Monk Skin Tone 1..10 |
| ms_align | float32 | time spent reading, decoding and aligning this input, milliseconds |
| eye_distance_px | float32 | face size the aligner saw: eye distance in source pixels that the alignment scaled to the template's (null for rows written before it existed) |
| upscale_factor | int8 | Real-ESRGAN factor the face's region was super-resolved by before the warp; 1 when the crop came from the photo's own pixels (actors.align.upscale) |
| ms_upscale | float32 | of ms_align, the time spent super-resolving, milliseconds (0 when not upscaled) |
| actor, movie, gender, age, expression, pose, illumination, occlusion, makeup | string | IMFDB annotations, null when unknown |

Landmarks are flat (not nested lists): a nested fixed-size list reads back as all-None through
fastparquet. Every column is readable through pandas with both the pyarrow and fastparquet engines.
"""
from __future__ import annotations

import pyarrow as pa

NUM_LANDMARKS = 478
IMFDB_COLUMNS = ("actor", "movie", "gender", "age", "expression", "pose", "illumination", "occlusion", "makeup")

SHARD_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("num_faces", pa.int32()),
        ("crop", pa.binary()),
        ("mask", pa.binary()),
        ("skin_mask", pa.binary()),
        ("landmarks", pa.list_(pa.float32(), NUM_LANDMARKS * 3)),
        ("source_to_crop", pa.list_(pa.float64(), 6)),
        ("bbox", pa.list_(pa.float32(), 4)),
        ("yaw", pa.float32()),
        ("pitch", pa.float32()),
        ("roll", pa.float32()),
        ("ita", pa.float32()),
        ("mst", pa.int8()),
        ("ms_align", pa.float32()),
        ("eye_distance_px", pa.float32()),
        ("upscale_factor", pa.int8()),
        ("ms_upscale", pa.float32()),
        *[(name, pa.string()) for name in IMFDB_COLUMNS],
    ]
)

# Skin-tone audit of each 2D avatar (`actors.stylize2d.tone_guard.ToneReport.columns()`), one entry per
# style. The guard compares the avatar with the aligned input under two masks (tight skin; whole face
# oval, 10–90% L* band) and every landmark source (carried through the style, detected on the avatar);
# "worst" is the measurement of largest magnitude, signed (avatar − input: +ΔITA = lighter, −Δhue =
# redder); "raw" is before the guard, the others as written. Hue is atan2(b*, a*) (Thong et al. 2023).
TONE_AUDIT_FIELDS = (
    ("hue_in", pa.list_(pa.float32())),  # input skin hue angle°, tight skin mask
    ("hue_raw", pa.list_(pa.float32())),  # avatar skin hue° before the guard
    ("hue_out", pa.list_(pa.float32())),  # avatar skin hue° as written
    ("delta_ita_raw", pa.list_(pa.float32())),  # worst ΔITA° before the guard
    ("delta_hue_raw", pa.list_(pa.float32())),  # worst Δhue° before the guard
    ("delta_e_raw", pa.list_(pa.float32())),  # worst CIEDE2000 of the median skin colours before the guard
    ("delta_ita", pa.list_(pa.float32())),  # worst ΔITA° as written
    ("delta_hue", pa.list_(pa.float32())),  # worst Δhue° as written
    ("delta_e", pa.list_(pa.float32())),  # worst CIEDE2000 as written
    ("lightening_raw", pa.list_(pa.float32())),  # largest ΔITA° over the measurements before the guard (> 3: lightened)
    ("lightening", pa.list_(pa.float32())),  # the same as written
    ("tone_ok", pa.list_(pa.bool_())),  # every measurement within the bounds (|ΔITA| ≤ 2°, |Δhue| ≤ 3° by default)
    ("tone_skin_ok", pa.list_(pa.bool_())),  # every tight-skin-mask measurement within the bounds
    ("tone_worst", pa.list_(pa.string())),  # the measurement furthest out: "mask/source", e.g. "oval/detected"
    ("tone_passes", pa.list_(pa.int8())),  # correction passes the guard ran (0: none needed, or guard off)
    ("tone_mask_source", pa.list_(pa.string())),  # landmark sources measured: carried+detected, carried, detected, input
)
# Every per-style column the tone guard reports (its `ToneReport.columns()` keys, in order).
TONE_COLUMNS = ("ita_raw", "mst_raw", "ita_out", "mst_out", "tone_correction", *(name for name, _ in TONE_AUDIT_FIELDS))

# Results (`DIR/results.parquet`, written by `jobs.generate`): one row per input photo. Avatar
# files live under DIR/avatars/<id>/; paths here are relative to DIR. 2D columns are per style:
# the job writes one row per input, with list columns holding one entry per requested style.
RESULTS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("modes", pa.string()),  # e.g. "2d,3d"
        ("engine", pa.string()),
        ("seed", pa.int64()),
        ("num_faces", pa.int32()),
        ("ita_in", pa.float32()),
        ("mst_in", pa.int8()),
        ("eye_distance_px", pa.float32()),  # face size in the photo (see SHARD_SCHEMA)
        ("upscale_factor", pa.int8()),  # 1: not super-resolved before alignment (see SHARD_SCHEMA)
        # 2D, one entry per style (same order as `styles`).
        ("styles", pa.list_(pa.string())),
        ("avatar_paths", pa.list_(pa.string())),
        ("ita_raw", pa.list_(pa.float32())),  # avatar skin before the tone guard
        ("mst_raw", pa.list_(pa.int8())),
        ("ita_out", pa.list_(pa.float32())),  # avatar skin as written
        ("mst_out", pa.list_(pa.int8())),
        ("tone_correction", pa.list_(pa.float32())),  # ΔITA the guard applied (0 when none)
        *TONE_AUDIT_FIELDS,
        ("identity", pa.list_(pa.float32())),  # SFace cosine input vs avatar, null when no face found
        ("identity_reason", pa.list_(pa.string())),
        # 3D.
        ("head_engine", pa.string()),
        ("glb_path", pa.string()),
        ("obj_path", pa.string()),
        ("texture_path", pa.string()),
        ("views_path", pa.string()),
        ("params_path", pa.string()),  # head_params.npz: the engine's fitted parameters
        ("nme", pa.float32()),  # landmark reprojection error / inter-ocular distance
        # Timings in milliseconds.
        ("ms_align", pa.float32()),
        ("ms_2d", pa.float32()),
        ("ms_3d", pa.float32()),
        ("finished_at", pa.float64()),  # unix time the row was produced (report's throughput plot)
        # Identical bytes under another name (same id) are computed once per run: the source of the row that
        # computed them; the other columns are that row's (timings 0). Null when computed for this row.
        ("duplicate_of", pa.string()),
    ]
)


def empty_row(schema: pa.Schema) -> dict:
    """A row of nulls for `schema` (callers fill what they know)."""
    return {name: None for name in schema.names}
