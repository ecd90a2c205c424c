"""The rigged GLB in a real client: three.js (npm `three`) in Debian's chromium, driven by playwright-core."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.spatial import cKDTree

from actors.reconstruct3d.export import write_glb
from tests.actors.reconstruct3d.rigged_mesh import ARKIT_NAMES, DEFAULT_WEIGHTS, JOINT_NAMES, rigged_head, rotation_x, rotation_y, skinned_positions
from tests.browser_tools import ROOT, missing_browser_tools

SCRIPT = Path(__file__).with_name("threejs_check.mjs")


MISSING = missing_browser_tools(("playwright-core", "three"))
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=f"three.js test skipped: {MISSING}")]


@pytest.fixture(scope="module", params=[False, True], ids=["default", "morph-normals"])
def seen(request, tmp_path_factory):
    """(mesh, report): what the page saw of the rigged head's GLB (as shipped, and with NORMAL deltas)."""
    mesh, textures = rigged_head()
    out = tmp_path_factory.mktemp("threejs")
    path = write_glb(mesh, textures, out / "head.glb", morph_normals=request.param)
    done = subprocess.run(["node", str(SCRIPT), str(path), str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert (out / "threejs_report.json").is_file(), done.stderr
    report = json.loads((out / "threejs_report.json").read_text())
    assert done.returncode == 0 and "error" not in report, report.get("error", done.stderr)
    report["morphNormalsWritten"] = request.param
    return mesh, report


def test_three_builds_skinned_meshes_with_the_skeleton(seen):
    mesh, report = seen
    info = report["info"]
    assert report["consoleErrors"] == [] and report["failedRequests"] == []
    assert info["sceneRoots"] == ["avatar"]
    assert info["skinnedMeshes"] == len(mesh.parts)
    assert info["sameSkeleton"]
    assert all(names == list(JOINT_NAMES) for names in info["boneNames"])  # no bone renamed to avoid a clash


def test_three_reads_52_named_morphs_with_the_default_weights(seen):
    _, report = seen
    info = report["info"]
    expected = [DEFAULT_WEIGHTS.get(name, 0.0) for name in ARKIT_NAMES]
    for names, influences, normals in zip(info["dictionaries"], info["influences"], info["morphNormals"]):
        assert names == list(ARKIT_NAMES)
        np.testing.assert_allclose(influences, expected, atol=1e-7)
        assert normals == (52 if report["morphNormalsWritten"] else 0)


def test_three_materials_and_textures(seen):
    _, report = seen
    materials = {m["name"]: m for m in report["info"]["materials"]}
    assert materials["skin"]["map"] == [256, 256] and materials["eyes"]["map"] == [64, 64]
    assert materials["eyelashes"]["map"] == [64, 16]
    assert materials["eyelashes"]["alphaTest"] == pytest.approx(0.5) and materials["eyelashes"]["doubleSided"]
    assert materials["teeth"]["map"] is None and not materials["skin"]["doubleSided"]


def _compare(mesh, meshes, expected):
    tree = cKDTree(mesh.vertices)
    for part in meshes:
        rest = np.asarray(part["rest"]).reshape(-1, 3)
        distance, ids = tree.query(rest)
        assert distance.max() < 1e-6
        np.testing.assert_allclose(np.asarray(part["posed"]).reshape(-1, 3), expected[ids], atol=2e-5, err_msg=part["material"])


def test_three_skinning_at_rest_is_the_morphed_mesh(seen):
    """three.js's own CPU morph + skinning at the rest pose puts every vertex where the default
    expression puts it: inverse bind matrices and joint transforms agree."""
    mesh, report = seen
    _compare(mesh, report["defaultVertices"], skinned_positions(mesh, DEFAULT_WEIGHTS))


def test_three_skinning_of_a_posed_skeleton(seen):
    mesh, report = seen
    expected = skinned_positions(mesh, dict(DEFAULT_WEIGHTS, jawOpen=1.0), {"jaw": rotation_x(20), "head": rotation_y(25)})
    _compare(mesh, report["posedVertices"], expected)


def test_renders_are_drawn_and_move(seen):
    _, report = seen
    total = report["default"]["total"]
    assert 0.15 * total < report["default"]["drawn"] < 0.6 * total  # a head, not a blank or a full frame
    assert report["jawOpenChanged"] > 1000  # jawOpen from 0.35 to 1 moves the chin
    assert report["posedChanged"] > 5000  # the head turns
    assert report["eyesChanged"] > 200  # the eyes turn
    for path in report["screenshots"]:
        image = np.asarray(Image.open(path).convert("RGB"))
        assert image.shape == (512, 512, 3) and image.std() > 20
