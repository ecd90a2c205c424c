"""Shared by the benchmarks: a photo folder built from package photos, a table printer, a JSON writer."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def package_photos() -> dict[str, np.ndarray]:
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.array(Image.open(f).convert("RGB"))
    return {"astronaut": skimage.data.astronaut(), "grace_hopper": hopper}


def write_photo_folder(folder: Path, count: int, seed: int = 0) -> Path:
    """`count` distinct JPEGs: package photos flipped, scaled, shifted and re-lit (different bytes, same faces)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    bases = [cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) for rgb in package_photos().values()]
    for index in range(count):
        image = bases[index % len(bases)]
        if rng.random() < 0.5:
            image = cv2.flip(image, 1)
        scale = rng.uniform(0.8, 1.4)
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        image = np.clip(image.astype(np.float32) * rng.uniform(0.85, 1.15), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"photo_{index:05d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


def machine() -> dict:
    import os

    return {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def best_ms(function, repeats: int) -> tuple[float, float]:
    """(CPU ms, wall ms) of `function()`, each the best of `repeats` calls."""
    best_cpu = best_wall = float("inf")
    for _ in range(max(1, repeats)):
        cpu, wall = time.process_time(), time.perf_counter()
        function()
        best_cpu = min(best_cpu, (time.process_time() - cpu) * 1000)
        best_wall = min(best_wall, (time.perf_counter() - wall) * 1000)
    return best_cpu, best_wall


def print_table(title: str, rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print(f"\n{title}")
    print(" | ".join(c.ljust(widths[c]) for c in columns))
    print("-|-".join("-" * widths[c] for c in columns))
    for row in rows:
        print(" | ".join(_fmt(row.get(c)).ljust(widths[c]) for c in columns))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return "" if value is None else str(value)


def write_json(path: Path, payload: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    print(f"\nwrote {path}")
    return path
