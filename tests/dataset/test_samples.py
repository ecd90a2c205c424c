"""dataset.samples: demo photos from package photos, readable by the project's own decoder."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dataset.decode import decode_image
from dataset.samples import save_with_orientation, write_samples
from dataset.sources import list_inputs, read_bytes

REPO = Path(__file__).resolve().parents[2]


def test_write_samples_writes_decodable_photos(tmp_path, package_photos):
    written = write_samples(tmp_path)
    assert [p.name for p in written] == [
        "astronaut.jpg", "grace_hopper.png", "astronaut_exif_rotated.jpg", "grace_hopper_grey.jpg", "coffee_no_face.jpg"
    ]
    assert sorted(list_inputs(tmp_path)) == sorted(str(p) for p in written)
    decoded = {p.name: decode_image(read_bytes(str(p))) for p in written}
    np.testing.assert_array_equal(decoded["grace_hopper.png"], package_photos["grace_hopper"])
    grey = decoded["grace_hopper_grey.jpg"]
    assert np.abs(grey[..., 0].astype(int) - grey[..., 2]).max() == 0  # stored greyscale, replicated


def test_exif_rotated_sample_decodes_upright(tmp_path, package_photos):
    write_samples(tmp_path)
    upright = decode_image((tmp_path / "astronaut.jpg").read_bytes()).astype(int)
    rotated = decode_image((tmp_path / "astronaut_exif_rotated.jpg").read_bytes()).astype(int)
    assert rotated.shape == upright.shape
    assert np.abs(rotated - upright).mean() < 3.0
    assert np.abs(np.rot90(rotated) - upright).mean() > 30.0  # it really was stored turned


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_save_with_orientation_round_trips(tmp_path, orientation):
    image = np.zeros((40, 64, 3), np.uint8)
    image[:10, :20] = 255  # a bright corner shows which way is up
    save_with_orientation(image, tmp_path / "o.jpg", orientation)
    decoded = decode_image((tmp_path / "o.jpg").read_bytes())
    assert decoded.shape == image.shape
    assert decoded[:10, :20].mean() > 200 and decoded[-10:, -20:].mean() < 50


def test_save_with_orientation_rejects_unknown_values(tmp_path):
    with pytest.raises(ValueError, match="orientation"):
        save_with_orientation(np.zeros((8, 8, 3), np.uint8), tmp_path / "x.jpg", 5)


def test_cli_prints_what_it_wrote(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dataset.samples", "--dest", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    printed = result.stdout.split()
    assert len(printed) == 5 and all(Path(p).is_file() for p in printed)
