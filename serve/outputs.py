"""Turn a pipeline row into the files a client may download, under fixed public names.

Public names: `avatar_<style>.png` per 2D style, `head.glb`, `head_obj.zip` (OBJ + MTL + texture,
built here), `head_texture.png`, `views.png` (contact sheet) and `view_<yaw>.png` per rendered view.
Every path must stay inside the job folder; anything else is left out.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from serve.store import FILE_NAME_PATTERN

BUNDLE_NAME = "head_obj.zip"
MEDIA_TYPES = {".png": "image/png", ".glb": "model/gltf-binary", ".zip": "application/zip"}
_VIEW_FILE = re.compile(r"view_[+\-]?\d{1,3}\.png")


def collect_files(row: dict[str, Any], job_dir: Path) -> dict[str, str]:
    """Public name -> path relative to `job_dir` for every output in `row` that exists in the folder."""
    job_dir = job_dir.resolve()
    files: dict[str, str] = {}

    def add(name: str, relative: str | None) -> Path | None:
        if not relative or FILE_NAME_PATTERN.fullmatch(name) is None:
            return None
        path = (job_dir / relative).resolve()
        if not path.is_relative_to(job_dir) or not path.is_file():
            return None
        files[name] = path.relative_to(job_dir).as_posix()
        return path

    for style, relative in zip(row.get("styles") or [], row.get("avatar_paths") or []):
        add(f"avatar_{style}.png", relative)
    add("head.glb", row.get("glb_path"))
    add("head_texture.png", row.get("texture_path"))
    views = add("views.png", row.get("views_path"))
    if views is not None:
        for view in sorted(views.parent.glob("view_*.png")):
            if _VIEW_FILE.fullmatch(view.name):
                add(view.name, view.relative_to(job_dir).as_posix())
    obj = row.get("obj_path")
    if obj:
        obj_path = (job_dir / obj).resolve()
        if obj_path.is_relative_to(job_dir) and obj_path.is_file():
            bundle = job_dir / BUNDLE_NAME
            write_obj_bundle(obj_path, bundle)
            add(BUNDLE_NAME, BUNDLE_NAME)
    return files


def view_sort_key(name: str) -> int:
    """Yaw of a `view_<yaw>.png` name, for left-to-right ordering."""
    return int(name[len("view_") : -len(".png")])


def write_obj_bundle(obj_path: Path, bundle_path: Path) -> list[str]:
    """Zip the OBJ with the MTL files it names and the textures those name; return the member names.

    Members are stored under their base names, flat, as the OBJ and MTL refer to them. A reference
    that is not a plain file name next to the OBJ (a path, `..`, a missing file) is skipped.
    """
    folder = obj_path.parent
    members = [obj_path.name]
    for mtl in _references(obj_path, "mtllib"):
        if _plain_file(folder, mtl):
            members.append(mtl)
            members += [t for t in _references(folder / mtl, "map_") if _plain_file(folder, t)]
    members = list(dict.fromkeys(members))  # keep order, drop repeats
    with zipfile.ZipFile(bundle_path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name in members:
            bundle.write(folder / name, arcname=name)
    return members


def _references(path: Path, keyword: str) -> list[str]:
    """File names after `keyword` lines (`mtllib a.mtl`, `map_Kd tex.png`); the last token is the name."""
    names = []
    for line in path.read_text(errors="replace").splitlines():
        tokens = line.strip().split()
        if len(tokens) >= 2 and tokens[0].startswith(keyword):
            names.append(tokens[-1])
    return names


def _plain_file(folder: Path, name: str) -> bool:
    return "/" not in name and "\\" not in name and name not in (".", "..") and (folder / name).is_file()
