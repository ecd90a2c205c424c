"""2D stylisation speed: the offline engine per style on one core, and the diffusers engine on CUDA.

    python -m bench.stylize [--runs 20] [--json bench/results/stylize.json]
    python -m bench.stylize --sheets docs/images        # before/after sheets for the README, no timing

Offline rows: milliseconds per 512×512 avatar per style, on one core (this process pinned to one CPU,
OpenCV and BLAS single-threaded), mean over `--runs` renders after warm-up, alternating the two package
photos (alignment is done once beforehand and not timed). Target: ≤ 300 ms. When CUDA is available and
`bench.stylize_diffusers` is importable, its rows (engine path vs bare pipeline) are appended.
"""
from __future__ import annotations

import os

# Single-threaded numeric libraries for this process only (set before numpy/OpenCV start their pools).
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from bench.common import RESULTS_DIR, package_photos, print_table, write_json  # noqa: E402

TARGET_MS = 300.0
STYLES = ("anime", "cartoon", "realistic", "sketch")


def aligned_package_faces() -> dict:
    from actors.align.aligner import FaceAligner

    with FaceAligner() as aligner:
        return {name: aligner.align(rgb) for name, rgb in package_photos().items()}


def pin_to_one_core() -> str:
    """Pin this process to one CPU; returns a description (or why it could not)."""
    import cv2

    cv2.setNumThreads(1)
    if not hasattr(os, "sched_setaffinity"):
        return "cv2 threads=1 (no CPU pinning on this OS)"
    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {allowed[-1]})
    return f"pinned to CPU {allowed[-1]}, cv2 threads=1"


def time_offline(faces: dict, runs: int, warmup: int = 2) -> list[dict]:
    from actors.request import AvatarRequest
    from actors.stylize2d.offline import OfflineStylizer

    engine = OfflineStylizer()
    items = list(faces.values())
    rows = []
    for style in STYLES:
        request = AvatarRequest(styles=(style,), size=512)
        for i in range(warmup):
            engine.stylize([items[i % len(items)]], style, request, [i])
        times = []
        for i in range(runs):
            face = items[i % len(items)]
            start = time.perf_counter()
            engine.stylize([face], style, request, [i])
            times.append((time.perf_counter() - start) * 1000.0)
        mean = statistics.fmean(times)
        rows.append({
            "style": style,
            "mean_ms": round(mean, 1),
            "median_ms": round(statistics.median(times), 1),
            "p90_ms": round(float(np.percentile(times, 90)), 1),
            "min_ms": round(min(times), 1),
            "runs": runs,
            "target_ms": TARGET_MS,
            "meets_target": mean <= TARGET_MS,
        })
    return rows


def diffusers_rows() -> tuple[list[dict], str]:
    """(rows, "") from bench.stylize_diffusers on CUDA, or ([], why it was skipped)."""
    if importlib.util.find_spec("torch") is None:
        return [], "torch is not installed"
    import torch

    if not torch.cuda.is_available():
        return [], "no CUDA device on this machine"
    if importlib.util.find_spec("bench.stylize_diffusers") is None:
        return [], "bench.stylize_diffusers is not available"
    from bench import stylize_diffusers

    return stylize_diffusers.run(), ""


def label(image: np.ndarray, text: str) -> np.ndarray:
    """The image with a caption strip above it."""
    import cv2

    strip = np.full((28, image.shape[1], 3), 250, np.uint8)
    cv2.putText(strip, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (40, 40, 40), 1, cv2.LINE_AA)
    return np.concatenate([strip, image], axis=0)


def write_sheets(faces: dict, folder: Path, tile: int = 320) -> list[Path]:
    """One before/after PNG per style (input beside avatar, one row per photo) and an overview of all styles."""
    import cv2
    from PIL import Image

    from actors.request import AvatarRequest
    from actors.stylize2d.offline import OfflineStylizer
    from actors.stylize2d.tone_guard import guard_tone

    folder.mkdir(parents=True, exist_ok=True)
    engine = OfflineStylizer()
    request = AvatarRequest(styles=STYLES)
    gap = np.full((tile + 28, 6, 3), 255, np.uint8)

    def small(image):
        return cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA)

    avatars = {}
    for name, face in faces.items():
        for style in STYLES:
            [avatar] = engine.stylize([face], style, request, [7])
            avatars[(name, style)], _ = guard_tone(avatar, face, threshold=request.tone_threshold, enabled=True)
    written = []
    for style in STYLES:
        rows = [np.concatenate([label(small(face.crop), f"input: {name}"), gap,
                                label(small(avatars[(name, style)]), f"offline / {style}")], axis=1)
                for name, face in faces.items()]
        sheet = np.concatenate([np.concatenate([row, np.full((6, row.shape[1], 3), 255, np.uint8)]) for row in rows])
        path = folder / f"stylize_{style}.png"
        Image.fromarray(sheet).save(path, optimize=True)
        written.append(path)
    overview_rows = []
    for name, face in faces.items():
        cells = [label(small(face.crop), "input")]
        for style in STYLES:
            cells += [gap, label(small(avatars[(name, style)]), style)]
        overview_rows.append(np.concatenate(cells, axis=1))
    overview = np.concatenate(overview_rows, axis=0)
    path = folder / "stylize_overview.png"
    Image.fromarray(overview).save(path, optimize=True)
    written.append(path)
    written.append(write_tone_sheet(faces, folder, tile))
    return written


def write_tone_sheet(faces: dict, folder: Path, tile: int, tones=(2, 5, 7, 9)) -> Path:
    """Rungs of the test skin-tone ladder (one photo recoloured to several Monk tones) through every
    style with the guard on, captioned with the measured ITA° in and out."""
    import cv2
    from PIL import Image

    from actors.request import AvatarRequest
    from actors.stylize2d.offline import OfflineStylizer
    from actors.stylize2d.tone_guard import guard_tone
    from tests.skin_ladder import recolour_skin

    engine = OfflineStylizer()
    request = AvatarRequest(styles=STYLES)
    gap = np.full((tile + 28, 6, 3), 255, np.uint8)
    rows = []
    for tone in tones:
        face = recolour_skin(faces["astronaut"], tone)
        cells = [label(cv2.resize(face.crop, (tile, tile), interpolation=cv2.INTER_AREA),
                       f"MST {face.mst}, ITA {face.ita:.0f}")]
        for style in STYLES:
            [avatar] = engine.stylize([face], style, request, [7])
            image, report = guard_tone(avatar, face, threshold=request.tone_threshold, enabled=True)
            cells += [gap, label(cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA),
                                 f"{style}: MST {report.mst_out}, ITA {report.ita_out:.0f}")]
        rows.append(np.concatenate(cells, axis=1))
    path = folder / "stylize_tone_ladder.png"
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, optimize=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed renders per style (after warm-up)")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "stylize.json")
    parser.add_argument("--sheets", type=Path, default=None, help="write before/after PNGs to this folder and exit")
    parser.add_argument("--no-gpu", action="store_true", help="skip the diffusers (CUDA) part")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    faces = aligned_package_faces()
    if args.sheets is not None:
        for path in write_sheets(faces, args.sheets):
            print(f"wrote {path}")
        return 0

    affinity = None
    if hasattr(os, "sched_getaffinity"):
        affinity = os.sched_getaffinity(0)
    setting = pin_to_one_core()
    offline = time_offline(faces, args.runs)
    if affinity is not None:
        os.sched_setaffinity(0, affinity)  # the GPU part may use every core
    print_table(f"offline engine, 512x512, one core ({setting})", offline,
                ["style", "mean_ms", "median_ms", "p90_ms", "min_ms", "runs", "meets_target"])

    payload = {"offline": {"setting": setting, "rows": offline}}
    if args.no_gpu:
        rows, skipped = [], "--no-gpu given"
    else:
        rows, skipped = diffusers_rows()
    if rows:
        columns = [c for c in ("path", "gpu", "batch_size", "steps", "size", "seconds_per_batch", "images_per_s",
                               "peak_gpu_gib", "engine_vs_bare") if c in rows[0]]
        print_table("diffusers engine vs bare pipeline (CUDA)", rows, columns)
        payload["diffusers"] = {"rows": rows}
    else:
        print(f"\nGPU part skipped: {skipped}.")
        payload["diffusers"] = {"skipped": skipped}
    write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
