"""3D reconstruction cost per stage, per image, on one CPU thread.

    python -m bench.reconstruct [--repeats 5] [--texture-size 1024] [--json bench/results/reconstruct.json]

Default engine (canonical head) on the package photos: mesh (fit + closed head), bake (UV texture),
export (PNG encode + OBJ/MTL + GLB) and render (7 views at 512 px), each the best of `--repeats`
runs, as CPU time of this process (`time.process_time`: on a shared machine the wall clock also
counts other processes' turns; with one thread, CPU time is what one free core would take) and as
wall time. torch and OpenCV are held to one thread while it runs. FLAME rows come from `bench.reconstruct_flame.run()` when that
module is importable (synthetic FLAME-format model: fit at batch 1 and 64 on the CPU, batch 256 on
CUDA when available). Target: default engine ≤ 300 ms per image without the views.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS_DIR, print_table, write_json

TARGET_MS = 300.0


def canonical_rows(repeats: int, texture_size: int) -> list[dict]:
    from actors.align.aligner import FaceAligner
    from actors.reconstruct3d.bake import TextureBaker
    from actors.reconstruct3d.export import encode_png, write_glb, write_obj
    from actors.reconstruct3d.head import CanonicalHeadEngine
    from actors.reconstruct3d.render import render_views
    from bench.common import package_photos

    with FaceAligner() as aligner:
        faces = {name: aligner.align(photo) for name, photo in package_photos().items()}
    engine = CanonicalHeadEngine()
    baker = TextureBaker(texture_size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, face in faces.items():
            mesh = engine.reconstruct_one(face)  # warm-up: template build and UV raster are one-off costs
            texture = baker.bake(mesh, face.crop, face.mask, face.skin_mask)

            def export():
                png = encode_png(texture)
                write_obj(mesh, texture, Path(tmp) / name, png=png)
                write_glb(mesh, texture, Path(tmp) / name / "head.glb", png=png)

            timings = {}
            for stage, function, count in (
                ("mesh", lambda: engine.reconstruct_one(face), repeats),
                ("bake", lambda: baker.bake(mesh, face.crop, face.mask, face.skin_mask), repeats),
                ("export", export, repeats),
                ("render", lambda: render_views(mesh, texture), max(1, repeats // 2)),
            ):
                timings[f"{stage}_ms"], timings[f"{stage}_wall_ms"] = _best_ms(function, count)
            total = timings["mesh_ms"] + timings["bake_ms"] + timings["export_ms"]
            wall = timings["mesh_wall_ms"] + timings["bake_wall_ms"] + timings["export_wall_ms"]
            rows.append({"engine": "canonical", "case": name, "device": "cpu", "threads": 1, "batch": 1,
                         **timings, "total_no_views_ms": total, "total_no_views_wall_ms": wall, "target_ms": TARGET_MS,
                         "meets_target": bool(total <= TARGET_MS), "nme": float(mesh.landmark_nme),
                         "texture": f"{texture_size}²"})
    return rows


def flame_rows() -> list[dict]:
    try:
        from bench import reconstruct_flame
    except ImportError as exc:
        print(f"(FLAME rows skipped: {exc})")
        return []
    import torch

    batch_sizes = [1, 64]
    rows = list(reconstruct_flame.run(batch_sizes, "cpu"))
    if torch.cuda.is_available():
        rows += list(reconstruct_flame.run([256], "cuda"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--texture-size", type=int, default=1024)
    parser.add_argument("--no-flame", action="store_true", help="skip the FLAME rows")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "reconstruct.json")
    args = parser.parse_args(argv)

    import cv2
    import torch

    threads = (cv2.getNumThreads(), torch.get_num_threads())
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        load_before = os.getloadavg()[0]
        rows = canonical_rows(args.repeats, args.texture_size)
        flame = [] if args.no_flame else flame_rows()
    finally:
        cv2.setNumThreads(threads[0])
        torch.set_num_threads(threads[1])

    print_table("Default engine (canonical head), CPU ms per image, 1 thread, best of repeats (wall ms in the JSON)",
                rows, ["case", "mesh_ms", "bake_ms", "export_ms", "render_ms", "total_no_views_ms", "total_no_views_wall_ms",
                       "meets_target", "nme"])
    if flame:
        columns = sorted({key for row in flame for key in row}, key=lambda k: (k not in ("engine", "device", "batch"), k))
        print_table("FLAME fitting (synthetic FLAME-format model)", flame, columns)
    write_json(args.json, {"load_average_at_start": load_before, "canonical": rows, "flame": flame})
    return 0


def _best_ms(function, repeats: int) -> tuple[float, float]:
    """(CPU ms, wall ms), each the best of `repeats` calls."""
    best_cpu = best_wall = float("inf")
    for _ in range(max(1, repeats)):
        cpu, wall = time.process_time(), time.perf_counter()
        function()
        best_cpu = min(best_cpu, (time.process_time() - cpu) * 1000)
        best_wall = min(best_wall, (time.perf_counter() - wall) * 1000)
    return best_cpu, best_wall


if __name__ == "__main__":
    raise SystemExit(main())
