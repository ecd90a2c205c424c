"""Demo photos written only from photos that ship inside installed packages (no download).

    python -m dataset.samples --dest DIR

Writes: the astronaut (scikit-image) as JPEG, Grace Hopper (matplotlib) as PNG, a copy stored
rotated with an EXIF orientation tag that puts it upright again, a greyscale copy, and a photo
without a face (scikit-image's coffee cup) that shows a rejection row.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

EXIF_ORIENTATION = 0x0112


def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


def grace_hopper() -> np.ndarray:
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.array(Image.open(handle).convert("RGB"))


def no_face() -> np.ndarray:
    import skimage.data

    return skimage.data.coffee()


def save_with_orientation(image: np.ndarray, path: str | Path, orientation: int = 6) -> None:
    """Store `image` rotated so that EXIF `orientation` (6: turn 90° clockwise) shows it upright."""
    from PIL import Image

    turns = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    if orientation not in turns:
        raise ValueError(f"`orientation` must be one of {sorted(turns)}, got {orientation}.")
    stored = Image.fromarray(image)
    if turns[orientation] is not None:
        stored = stored.transpose(turns[orientation])
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    stored.save(path, quality=95, exif=exif.tobytes())


def write_samples(dest: str | Path) -> list[Path]:
    """Write the demo photos into `dest`; returns their paths."""
    from PIL import Image

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    face_a, face_b = astronaut(), grace_hopper()
    written = []

    path = dest / "astronaut.jpg"
    Image.fromarray(face_a).save(path, quality=95)
    written.append(path)
    path = dest / "grace_hopper.png"
    Image.fromarray(face_b).save(path)
    written.append(path)
    path = dest / "astronaut_exif_rotated.jpg"
    save_with_orientation(face_a, path, orientation=6)
    written.append(path)
    path = dest / "grace_hopper_grey.jpg"
    Image.fromarray(face_b).convert("L").save(path, quality=95)
    written.append(path)
    path = dest / "coffee_no_face.jpg"
    Image.fromarray(no_face()).save(path, quality=95)
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dataset.samples", description=__doc__.splitlines()[0])
    parser.add_argument("--dest", required=True, help="folder to write the demo photos into")
    args = parser.parse_args(argv)
    for path in write_samples(args.dest):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
