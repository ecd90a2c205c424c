"""Which shard rows train the LoRA: status, face size and pose filters, Monk Skin Tone balance.

The filters work on column batches (dict of arrays or a pandas DataFrame, as Ray Data hands them
to `map_batches`); the balance works on the kept rows' MST values once they are collected.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dataset.reasons import Status


@dataclass(frozen=True)
class RowFilter:
    """Keep `ok` rows whose face is at least `min_face_size` source pixels (shorter bbox side) and
    whose |yaw| is at most `max_yaw` degrees. `None` turns a rule off."""

    min_face_size: float | None = None
    max_yaw: float | None = None

    def __post_init__(self) -> None:
        if self.min_face_size is not None and not float(self.min_face_size) >= 0:
            raise ValueError(f"`min_face_size` must be non-negative pixels, got {self.min_face_size!r}.")
        if self.max_yaw is not None and not 0 <= float(self.max_yaw) <= 90:
            raise ValueError(f"`max_yaw` must be in [0, 90] degrees, got {self.max_yaw!r}.")

    def keep(self, batch) -> np.ndarray:
        """Boolean mask over the batch's rows."""
        return self.reasons(batch) == ""

    def reasons(self, batch) -> np.ndarray:
        """Per row: "" when kept, else why not ("status", "face_size", "yaw"); the first rule that fails."""
        ok = np.array([status == Status.OK.value if isinstance(status, str) else False for status in batch["status"]],
                      dtype=bool)
        out = np.where(ok, "", "status").astype(object)
        if self.min_face_size is not None:
            small = face_sizes(batch["bbox"]) < float(self.min_face_size)
            out = np.where((out == "") & small, "face_size", out)
        if self.max_yaw is not None:
            yaw = np.array([np.nan if is_missing(v) else float(v) for v in batch["yaw"]], dtype=np.float64)
            wide = ~(np.abs(yaw) <= float(self.max_yaw))  # NaN yaw (unknown pose) is dropped too
            out = np.where((out == "") & wide, "yaw", out)
        return out


def is_missing(value) -> bool:
    """None, NaN or pandas' NA (what a null cell becomes, depending on the column and reader)."""
    if value is None:
        return True
    if np.ndim(value) > 0:
        return False
    try:
        return bool(value != value)
    except TypeError:  # pd.NA refuses bool()
        return True


def face_sizes(bboxes) -> np.ndarray:
    """Shorter side of each x0, y0, x1, y1 box in source pixels; 0 for a missing box."""
    sizes = np.zeros(len(bboxes), dtype=np.float64)
    for i, box in enumerate(bboxes):
        if is_missing(box) or len(box) != 4:
            continue
        x0, y0, x1, y1 = (float(v) for v in box)
        sizes[i] = max(0.0, min(x1 - x0, y1 - y0))
    return sizes


def balance_by_mst(mst: Sequence[int | None], seed: int = 0) -> np.ndarray:
    """Row indices that give every Monk Skin Tone group as many rows as the largest group.

    Each group keeps all its rows once and fills up with draws (without replacement while rows
    last) from itself; rows with no MST form their own group. The order is grouped by MST; the
    trainer shuffles. Deterministic for a seed.
    """
    groups: dict[int, list[int]] = {}
    for index, value in enumerate(mst):
        key = -1 if is_missing(value) else int(value)
        groups.setdefault(key, []).append(index)
    if not groups:
        return np.zeros(0, dtype=np.int64)
    target = max(len(rows) for rows in groups.values())
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for key in sorted(groups):
        rows = np.asarray(groups[key], dtype=np.int64)
        extra = target - len(rows)
        full, rest = divmod(extra, len(rows))
        fill = [rows] * (1 + full) + [rng.choice(rows, size=rest, replace=False)]
        picked.extend(np.concatenate(fill).tolist())
    return np.asarray(picked, dtype=np.int64)
