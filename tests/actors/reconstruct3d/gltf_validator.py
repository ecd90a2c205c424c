"""Run the Khronos glTF validator (npm `gltf-validator`, through validate_gltf.mjs) on a file."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
VALIDATOR = ROOT / "node_modules" / "gltf-validator"
SCRIPT = Path(__file__).with_name("validate_gltf.mjs")


def validate(path: Path) -> dict:
    """The validator's JSON report; skips the test when node or node_modules/gltf-validator is missing."""
    if shutil.which("node") is None or not VALIDATOR.is_dir():
        pytest.skip("the Khronos glTF validator needs node and node_modules/gltf-validator (npm install)")
    done = subprocess.run(["node", str(SCRIPT), str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
