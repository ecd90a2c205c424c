"""Shard rows: `AlignedFace` ⇄ `SHARD_SCHEMA` row, and atomic Parquet shard files.

A row is a plain dict keyed by `SHARD_SCHEMA` column names (missing keys are null). Images are PNG
bytes; `landmarks`, `source_to_crop` and `bbox` are flat float arrays (numpy or lists). Build tables
with `rows_to_table`, which is the one place rows become schema-exact Arrow data.

Shard files are written to a hidden temporary name in the same folder, then renamed: a killed
writer leaves no half-written `*.parquet`, so `done_sources` (used by `--resume`) only sees
complete shards.

On disk the fixed-size list columns (`landmarks`, `source_to_crop`, `bbox`) are stored as plain
Parquet lists (``list<float>``), null for rejected rows. pyarrow before 26 cannot read a null
fixed-size list back from Parquet ("Expected all lists to be of size=1434 but index 1 had
size=0", apache/arrow#35692) nor write one between valid rows. `read_shards` restores the exact
`SHARD_SCHEMA` types; pandas (pyarrow and fastparquet engines) reads the lists as arrays either way.
"""
from __future__ import annotations

import os
import uuid
from enum import Enum
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa

from dataset.face import AlignedFace
from dataset.images import decode_png, encode_png
from dataset.reasons import Reason, Status
from dataset.schema import IMFDB_COLUMNS, NUM_LANDMARKS, SHARD_SCHEMA, empty_row
from dataset.sources import printable_source

_REASON_CODES = {reason.value for reason in Reason}
_FIXED_COLUMNS = ("id", "source", "status", "reason", "detail")
# What the aligner records in `AlignedFace.extras` about the face's size and its super-resolution.
UPSCALE_COLUMNS = ("eye_distance_px", "upscale_factor", "ms_upscale")


# ----------------------------------------------------------------------------------------------- rows


def face_to_row(
    id: str | None, source: str, face: AlignedFace, width: int, height: int, extra: dict | None = None
) -> dict:
    """The `ok` row for one aligned face of a `width`×`height` source photo."""
    _check_face(face)
    row = _base_row(id, source, Status.OK, "", "", width, height, face.num_faces)
    row.update(
        crop=encode_png(face.crop),
        mask=encode_png(face.mask),
        skin_mask=encode_png(np.asarray(face.skin_mask, dtype=bool)),
        landmarks=np.asarray(face.landmarks, dtype=np.float32).reshape(-1),
        source_to_crop=np.asarray(face.source_to_crop, dtype=np.float64).reshape(-1),
        bbox=np.asarray(face.bbox, dtype=np.float32).reshape(-1),
        yaw=float(face.pose[0]),
        pitch=float(face.pose[1]),
        roll=float(face.pose[2]),
        ita=float(face.ita),
        mst=int(face.mst),
        **{name: face.extras.get(name) for name in UPSCALE_COLUMNS},
    )
    return _with_extra(row, extra)


def rejection_row(
    id: str | None,
    source: str,
    status: Status | str,
    reason: Reason | str,
    detail: str,
    width: int = 0,
    height: int = 0,
    num_faces: int = 0,
    extra: dict | None = None,
) -> dict:
    """The row for an input that did not go through (`rejected` or `failed`, with a reason code)."""
    status = _value(status)
    reason = _value(reason)
    if status not in (Status.REJECTED.value, Status.FAILED.value):
        raise ValueError(f"A rejection row needs status 'rejected' or 'failed', got {status!r}.")
    if reason not in _REASON_CODES:
        raise ValueError(f"Unknown reason code {reason!r}: use dataset.reasons.Reason.")
    row = _base_row(id, source, status, reason, detail, width, height, num_faces)
    return _with_extra(row, extra)


def row_to_face(row: dict) -> AlignedFace:
    """The `AlignedFace` stored in an `ok` row (as a dict, e.g. from `Table.to_pylist()`)."""
    if row.get("status") != Status.OK.value:
        raise ValueError(f"Row for {row.get('source')!r} has status {row.get('status')!r}: only 'ok' rows hold a face.")
    crop = decode_png(row["crop"])
    mask = decode_png(row["mask"])
    skin = decode_png(row["skin_mask"]) > 127
    return AlignedFace(
        crop=crop,
        mask=mask,
        landmarks=np.asarray(row["landmarks"], dtype=np.float32).reshape(NUM_LANDMARKS, 3),
        skin_mask=skin,
        source_to_crop=np.asarray(row["source_to_crop"], dtype=np.float64).reshape(2, 3),
        bbox=tuple(float(v) for v in row["bbox"]),
        pose=(float(row["yaw"]), float(row["pitch"]), float(row["roll"])),
        num_faces=int(row["num_faces"]),
        ita=float(row["ita"]),
        mst=int(row["mst"]),
        extras={name: row[name] for name in UPSCALE_COLUMNS if row.get(name) is not None},
    )


def _base_row(id, source, status, reason, detail, width, height, num_faces) -> dict:
    for name, value in (("width", width), ("height", height), ("num_faces", num_faces)):
        if int(value) < 0:
            raise ValueError(f"`{name}` must be non-negative, got {value}.")
    row = empty_row(SHARD_SCHEMA)
    row.update(
        id=id,
        source=source,
        status=_value(status),
        reason=_value(reason),
        detail=detail,
        width=int(width),
        height=int(height),
        num_faces=int(num_faces),
    )
    return row


def _with_extra(row: dict, extra: dict | None) -> dict:
    for name, value in (extra or {}).items():
        if name not in SHARD_SCHEMA.names:
            raise ValueError(f"Extra column {name!r} is not in SHARD_SCHEMA.")
        if name in _FIXED_COLUMNS:
            raise ValueError(f"Extra column {name!r} is set by the row builder, not by `extra`.")
        row[name] = value
    return row


def _check_face(face: AlignedFace) -> None:
    crop = np.asarray(face.crop)
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
        raise ValueError(f"`face.crop` must be (H, W, 3) uint8, got {crop.shape} {crop.dtype}.")
    if np.asarray(face.mask).shape != crop.shape[:2]:
        raise ValueError(f"`face.mask` must be {crop.shape[:2]}, got {np.asarray(face.mask).shape}.")
    if np.asarray(face.skin_mask).shape != crop.shape[:2]:
        raise ValueError(f"`face.skin_mask` must be {crop.shape[:2]}, got {np.asarray(face.skin_mask).shape}.")
    if np.asarray(face.landmarks).shape != (NUM_LANDMARKS, 3):
        raise ValueError(f"`face.landmarks` must be ({NUM_LANDMARKS}, 3), got {np.asarray(face.landmarks).shape}.")
    if np.asarray(face.source_to_crop).shape != (2, 3):
        raise ValueError(f"`face.source_to_crop` must be (2, 3), got {np.asarray(face.source_to_crop).shape}.")
    if len(face.bbox) != 4:
        raise ValueError(f"`face.bbox` must have 4 values, got {len(face.bbox)}.")
    if len(face.pose) != 3:
        raise ValueError(f"`face.pose` must be (yaw, pitch, roll), got {len(face.pose)} values.")


def _value(value):
    return value.value if isinstance(value, Enum) else value


# ---------------------------------------------------------------------------------------------- table


def rows_to_table(rows: Iterable[dict]) -> pa.Table:
    """A `SHARD_SCHEMA` table from rows; unknown keys and wrongly sized lists raise ValueError."""
    rows = list(rows)
    for index, row in enumerate(rows):
        unknown = set(row) - set(SHARD_SCHEMA.names)
        if unknown:
            raise ValueError(f"Row {index} has columns not in SHARD_SCHEMA: {sorted(unknown)}.")
    arrays = [_column([row.get(field.name) for row in rows], field) for field in SHARD_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=SHARD_SCHEMA)


def _column(values: list, field: pa.Field) -> pa.Array:
    kind = field.type
    if pa.types.is_fixed_size_list(kind):
        return _fixed_size_list(values, field)
    if pa.types.is_string(kind):
        values = [None if v is None else printable_source(str(_value(v))) for v in values]
    return pa.array(values, type=kind)


def _fixed_size_list(values: list, field: pa.Field) -> pa.Array:
    size = field.type.list_size
    dtype = field.type.value_type.to_pandas_dtype()
    flat = np.zeros((len(values), size), dtype=dtype)
    missing = np.zeros(len(values), dtype=bool)
    for index, value in enumerate(values):
        if value is None:
            missing[index] = True
            continue
        array = np.asarray(value, dtype=dtype).reshape(-1)
        if array.size != size:
            raise ValueError(f"Row {index}: column {field.name!r} needs {size} values, got {array.size}.")
        flat[index] = array
    return pa.FixedSizeListArray.from_arrays(
        pa.array(flat.reshape(-1), type=field.type.value_type), type=field.type, mask=pa.array(missing)
    )


def conform(table: pa.Table, columns: list[str] | None = None) -> pa.Table:
    """`table` with exactly the `SHARD_SCHEMA` columns (or `columns`), in order; missing ones null."""
    names = list(SHARD_SCHEMA.names if columns is None else columns)
    arrays = []
    for name in names:
        field = SHARD_SCHEMA.field(name)
        if name in table.column_names:
            arrays.append(table.column(name).cast(field.type))
        else:
            arrays.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema([SHARD_SCHEMA.field(n) for n in names]))


# ---------------------------------------------------------------------------------------------- files


def write_shard(rows: Iterable[dict] | pa.Table, path: str | os.PathLike) -> Path:
    """Write rows (or a `SHARD_SCHEMA` table) to `path` atomically; returns the path."""
    path = Path(path)
    if path.suffix != ".parquet":
        raise ValueError(f"Shard path must end in .parquet, got {path.name!r}.")
    if path.name.startswith("."):
        raise ValueError(f"Shard name must not be hidden (hidden names are temporary files): {path.name!r}.")
    table = conform(rows) if isinstance(rows, pa.Table) else rows_to_table(rows)
    return write_table_atomic(parquet_ready(table), path)


def write_table_atomic(table: pa.Table, path: str | os.PathLike) -> Path:
    """Write `table` to `path` through a hidden temporary file and a rename: readers never see half a file."""
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def parquet_ready(table: pa.Table) -> pa.Table:
    """`table` with fixed-size list columns turned into plain lists (null rows empty), for Parquet."""
    arrays, fields = [], []
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_fixed_size_list(field.type):
            column = pa.chunked_array(
                [_as_list(chunk) for chunk in column.chunks], type=pa.list_(field.type.value_type)
            )
            field = pa.field(field.name, column.type, nullable=field.nullable)
        arrays.append(column)
        fields.append(field)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _as_list(chunk: pa.FixedSizeListArray) -> pa.ListArray:
    valid = chunk.is_valid().to_numpy(zero_copy_only=False)
    lengths = np.where(valid, chunk.type.list_size, 0)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), chunk.flatten(), mask=pa.array(~valid))


def shard_files(shards_dir: str | os.PathLike) -> list[Path]:
    """Complete shard files in `shards_dir`, sorted (temporary hidden files excluded)."""
    folder = Path(shards_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith(".") and p.is_file())


def read_shards(shards_dir: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """All shards in `shards_dir` as one `SHARD_SCHEMA` table (or just `columns`); empty when none."""
    import pyarrow.parquet as pq

    if columns is not None:
        unknown = [name for name in columns if name not in SHARD_SCHEMA.names]
        if unknown:
            raise ValueError(f"Columns not in SHARD_SCHEMA: {unknown}.")
    tables = []
    for path in shard_files(shards_dir):
        try:
            present = pq.read_schema(path).names
            wanted = [n for n in (columns or SHARD_SCHEMA.names) if n in present]
            tables.append(conform(pq.read_table(path, columns=wanted), columns))
        except (pa.ArrowException, OSError) as error:
            raise ValueError(f"Shard {str(path)!r} is not a readable Parquet file: {error}") from error
    if not tables:
        return conform(SHARD_SCHEMA.empty_table(), columns)
    return pa.concat_tables(tables)


def done_sources(shards_dir: str | os.PathLike) -> set[str]:
    """Sources that already have a row in `shards_dir` (any status), as stored (`printable_source`)."""
    table = read_shards(shards_dir, columns=["source"])
    return {s for s in table.column("source").to_pylist() if s is not None}


def done_ids(shards_dir: str | os.PathLike) -> set[str]:
    """Input ids (sha256) that already have a row in `shards_dir`."""
    table = read_shards(shards_dir, columns=["id"])
    return {i for i in table.column("id").to_pylist() if i is not None}


def pending_sources(sources: Iterable[str], shards_dir: str | os.PathLike) -> list[str]:
    """`sources` without those already in `shards_dir`, order kept (what `--resume` still has to do)."""
    done = done_sources(shards_dir)
    return [s for s in sources if printable_source(s) not in done]


def imfdb_extra(annotations: dict | None) -> dict:
    """The IMFDB columns of a row from one `imfdb_annotations_by_path` entry (empty when unknown)."""
    if not annotations:
        return {}
    return {name: annotations.get(name) for name in IMFDB_COLUMNS}
