"""The exporters' byte-level helpers against independent implementations: PNG (decoded by Pillow and
OpenCV) and OBJ number rows (Python's printf-style formatting)."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from actors.reconstruct3d.obj_text import Column, format_rows
from actors.reconstruct3d.export import encode_png


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 5, 3), (64, 33, 4), (256, 256, 3), (3, 300, 4)])
def test_png_decodes_losslessly_in_pillow_and_opencv(shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    half = shape[0] // 2
    if half:
        image[:half] = image[:half].mean(axis=(0, 1)).astype(np.uint8)  # flat rows above noisy ones
    data = encode_png(image)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), image)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded, image[..., [2, 1, 0, 3][: shape[2]]])  # OpenCV gives BGR(A)


def test_png_of_a_smooth_texture_is_compressed():
    y, x = np.mgrid[0:512, 0:512]
    image = np.stack([x // 2, y // 2, (x + y) // 4], axis=2).astype(np.uint8)
    assert len(encode_png(image)) < image.nbytes / 5


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8), np.zeros((4, 4, 2), np.uint8),
                                 np.zeros((0, 4, 3), np.uint8)])
def test_png_refuses_what_it_cannot_write(bad):
    with pytest.raises(ValueError):
        encode_png(bad)


TRICKY = [0.0, -0.0, 1e-9, -1e-9, 0.5, -0.5, 9.9999995, 99.99999949999, -0.0000005, 0.0000005, 0.0000015, 0.0000025,
          123456.1234565, -1.0000005, 2.5e-7, 1, 10, 100, 0.1, 0.2, 0.3, 1e-7, -1e-7, 5e-7, 0.0000045, 0.0000055, 3, -3]


@pytest.mark.parametrize("decimals", [5, 6])
@pytest.mark.parametrize("source", ["float64", "float32"])
def test_fixed_point_rows_equal_printf(decimals, source):
    rng = np.random.default_rng(decimals)
    values = np.concatenate([TRICKY * 3, *(rng.normal(scale=10.0**e, size=600) for e in range(-8, 4))]).reshape(-1, 3)
    values = values.astype(source).astype(np.float64)
    pattern = f"v %.{decimals}f %.{decimals}f %.{decimals}f"
    expected = ("\n".join([pattern] * len(values)) % tuple(values.reshape(-1).tolist()) + "\n").encode()
    assert format_rows("v ", [Column(values[:, i], decimals) for i in range(3)], [" ", " "]) == expected


@pytest.mark.parametrize("high", [2, 9, 10, 11, 99_999, 250_000])
def test_integer_rows_equal_printf(high):
    faces = np.random.default_rng(high).integers(1, high + 1, size=(500, 9))
    faces[0] = high
    expected = ("\n".join(["f %d/%d/%d %d/%d/%d %d/%d/%d"] * len(faces)) % tuple(faces.reshape(-1).tolist()) + "\n").encode()
    got = format_rows("f ", [Column(faces[:, i]) for i in range(9)], ["/", "/", " ", "/", "/", " ", "/", "/"])
    assert got == expected


def test_negative_integers_and_empty_rows():
    values = np.array([[-12, 0], [7, -1], [100, 5]])
    assert format_rows("x ", [Column(values[:, 0]), Column(values[:, 1])], [" "]) == b"x -12 0\nx 7 -1\nx 100 5\n"
    assert format_rows("x ", [Column(np.zeros(0))], []) == b""
    with pytest.raises(ValueError, match="separator"):
        format_rows("x ", [Column(values[:, 0]), Column(values[:, 1])], [])
