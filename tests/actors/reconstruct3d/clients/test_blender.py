"""The rigged GLB and the OBJ in a real client: Debian's Blender (3.4) imports them headless.

Blender's own importer builds the armature, shape keys, materials and images; its evaluated
(armature + shape key) mesh is compared with rigged_mesh.skinned_positions, at the default
expression and posed. One Cycles frame of each is rendered (view transform Standard) to look at.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.spatial import cKDTree

from actors.reconstruct3d.export import encode_images, write_glb, write_obj
from tests.actors.reconstruct3d.rigged_mesh import (
    ARKIT_NAMES,
    DEFAULT_WEIGHTS,
    JOINT_NAMES,
    JOINT_PARENTS,
    rigged_head,
    rotation_x,
    rotation_y,
    skinned_positions,
)

SCRIPT = Path(__file__).with_name("blender_check.py")
BLENDER = shutil.which("blender")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(BLENDER is None, reason="Blender is not installed (apt-get install blender python3-numpy)")]


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    """(mesh, report, out dir): what Blender built from the rigged head's GLB and OBJ."""
    mesh, textures = rigged_head()
    out = tmp_path_factory.mktemp("blender")
    encoded = encode_images(mesh, textures)
    glb = write_glb(mesh, textures, out / "head.glb", encoded=encoded)
    obj = write_obj(mesh, textures, out, encoded=encoded)["obj"]
    done = subprocess.run(
        [BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(SCRIPT), "--", str(glb), str(obj), str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return mesh, json.loads((out / "blender_report.json").read_text()), out


def test_blender_builds_the_armature(seen):
    mesh, report, _ = seen
    (armature,) = report["armatures"]
    assert armature["bones"] == list(JOINT_NAMES)
    assert armature["parents"] == {name: (JOINT_NAMES[p] if p >= 0 else None) for name, p in zip(JOINT_NAMES, JOINT_PARENTS)}
    np.testing.assert_allclose([armature["heads"][name] for name in JOINT_NAMES], mesh.skin.bind_positions, atol=1e-5)
    (head,) = report["meshes"]
    assert head["vertex_groups"] == list(JOINT_NAMES)
    assert head["armature_modifiers"] == [armature["name"]]


def test_blender_shape_keys_carry_the_arkit_names_and_default_weights(seen):
    _, report, _ = seen
    (head,) = report["meshes"]
    assert head["shape_keys"] == ["Basis", *ARKIT_NAMES]
    np.testing.assert_allclose(head["shape_key_values"][1:], [DEFAULT_WEIGHTS.get(n, 0.0) for n in ARKIT_NAMES], atol=1e-6)


def test_blender_materials_have_their_images(seen):
    _, report, _ = seen
    (head,) = report["meshes"]
    materials = {m["name"]: m for m in head["materials"]}
    assert set(materials) == {"skin", "eyes", "eyelashes", "teeth"}
    assert [size for _, size in materials["skin"]["images"]] == [[256, 256]]
    assert [size for _, size in materials["eyes"]["images"]] == [[64, 64]]
    assert materials["eyelashes"]["images"] and materials["eyelashes"]["blend_method"] == "CLIP"
    assert not materials["eyelashes"]["backface_culling"]  # doubleSided
    assert materials["teeth"]["images"] == []


def _compare(mesh, rest, posed, expected, atol):
    distance, ids = cKDTree(mesh.vertices).query(np.asarray(rest))
    assert distance.max() < 1e-5
    np.testing.assert_allclose(np.asarray(posed), expected[ids], atol=atol)


def test_blender_deforms_like_the_glTF_skinning(seen):
    mesh, report, _ = seen
    (head,) = report["meshes"]
    _compare(mesh, head["rest"], head["default"], skinned_positions(mesh, DEFAULT_WEIGHTS), 1e-5)
    posed = skinned_positions(mesh, dict(DEFAULT_WEIGHTS, jawOpen=1.0), {"jaw": rotation_x(20), "head": rotation_y(25)})
    _compare(mesh, head["rest"], head["posed"], posed, 1e-4)


def test_blender_opens_the_obj_with_its_materials(seen):
    mesh, report, _ = seen
    (obj,) = report["obj"]
    assert obj["polygons"] == len(mesh.faces)
    materials = {m["name"]: m for m in obj["materials"]}
    assert set(materials) == {"skin", "eyes", "eyelashes", "teeth"}
    assert materials["skin"]["images"][0] == ["head_texture.png", [256, 256]]
    assert materials["eyelashes"]["blend_method"] in ("BLEND", "CLIP")  # map_d: the lashes' alpha is used


def test_blender_renders_the_head(seen):
    _, _, out = seen
    for name in ("blender_render.png", "blender_posed.png"):
        image = np.asarray(Image.open(out / name).convert("RGB")).astype(float)
        background = image[2, 2]
        drawn = np.abs(image - background).sum(axis=2) > 30
        assert 0.08 < drawn.mean() < 0.7, name  # a head fills part of the frame
