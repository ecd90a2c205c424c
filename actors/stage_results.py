"""Typed results of the avatar stages, and the one way they enter a results row.

A stage returns, per face, either its result (`Avatars2D`, `Head3D`) or a `Failure` (a reason code and
a one-line detail). `merge_columns` writes a result's columns into a `dataset.schema.RESULTS_SCHEMA`
row and fails loudly on a column the schema does not have, so a mistyped name cannot vanish.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol

from dataset.reasons import Reason, Status


@dataclass(frozen=True)
class Failure:
    """One face that a stage could not finish."""

    reason: Reason
    detail: str


class ToneColumns(Protocol):
    def columns(self) -> dict[str, Any]: ...


@dataclass
class StyleAvatar:
    """One 2D avatar as written: its style, file, skin-tone report and identity score."""

    style: str
    path: Path
    tone: ToneColumns  # actors.stylize2d.tone_guard.ToneReport
    identity: float | None  # SFace cosine input vs avatar; None when no face was found on one side
    identity_reason: str  # why identity is None ("" otherwise)


@dataclass
class Avatars2D:
    """Every style of one face."""

    avatars: list[StyleAvatar] = field(default_factory=list)
    ms: float = 0.0

    def columns(self) -> dict[str, Any]:
        columns: dict[str, Any] = {"styles": [], "avatar_paths": [], "identity": [], "identity_reason": []}
        for avatar in self.avatars:
            columns["styles"].append(avatar.style)
            columns["avatar_paths"].append(avatar.path)
            columns["identity"].append(None if avatar.identity is None else float(avatar.identity))
            columns["identity_reason"].append(avatar.identity_reason)
            for name, value in avatar.tone.columns().items():
                columns.setdefault(name, []).append(value)
        columns["ms_2d"] = self.ms
        return columns


@dataclass
class Head3D:
    """The head files of one face and how well the head fits its landmarks."""

    head_engine: str
    glb_path: Path
    obj_path: Path
    texture_path: Path
    params_path: Path
    views_path: Path | None
    nme: float
    ms: float

    def columns(self) -> dict[str, Any]:
        return {
            "head_engine": self.head_engine, "glb_path": self.glb_path, "obj_path": self.obj_path,
            "texture_path": self.texture_path, "params_path": self.params_path, "views_path": self.views_path,
            "nme": float(self.nme), "ms_3d": self.ms,
        }


def fail(row: dict, reason: Reason, detail: str) -> None:
    """Mark a results row failed (an already rejected or failed row keeps its first reason)."""
    if row["status"] == Status.OK.value:
        row.update(status=Status.FAILED.value, reason=reason.value, detail=detail)


def merge_columns(row: dict, columns: Mapping[str, Any], root: Path) -> None:
    """Write `columns` into `row`; paths become relative to `root` (the output folder). KeyError on a
    column the row (the results schema) does not have."""
    unknown = sorted(set(columns) - set(row))
    if unknown:
        raise KeyError(f"result columns not in the results schema: {', '.join(unknown)}")
    for name, value in columns.items():
        row[name] = _relative(value, root)


def apply(row: dict, outcome: "Avatars2D | Head3D | Failure", root: Path) -> None:
    """A stage's outcome for one face into its results row."""
    if isinstance(outcome, Failure):
        fail(row, outcome.reason, outcome.detail)
    else:
        merge_columns(row, outcome.columns(), root)


def _relative(value: Any, root: Path) -> Any:
    if isinstance(value, Path):
        try:
            return str(value.relative_to(root))
        except ValueError:
            return str(value)
    if isinstance(value, list):
        return [_relative(v, root) for v in value]
    return value
