"""3D reconstruction cost per stage, per image, on one CPU thread.

    OMP_NUM_THREADS=1 python -m bench.reconstruct [--repeats 5] [--texture-size 1024] [--json bench/results/reconstruct.json]
    OMP_NUM_THREADS=1 LP_NUM_THREADS=1 python -m bench.reconstruct --views-only [--sheets DIR]   # → bench/results/render.json
    python -m bench.reconstruct --head-sheets docs/images   # the README's head sheets (no timing)

Default engine (makehuman) on the package photos, per face (`makehuman_rows`): fit (`reconstruct`
with the photo's ARKit scores stored with the face, as a batch job has them: landmark fit, residual,
hair and eye UVs), the blendshape model when no scores are stored, bake (1024² atlas, eye and hair
images), export (PNG encode once + GLB + OBJ/MTL) and the 7 views at 512² — each the best of
`--repeats` runs — and the whole 3D stage with views (`Reconstruct3DStage.run`, files written), with
stored and with estimated scores. Targets: fit ≤ 100 ms, 7 views at 512² ≤ 150 ms, the whole stage
with views ≤ 400 ms. The canonical engine's rows (mesh, bake, export, render) follow for comparison.
Times are CPU time of this process (`time.process_time`: on a shared machine the wall clock also
counts other processes' turns; with one thread, CPU time is what one free core would take), wall
time beside it in the JSON. torch and OpenCV are held to one thread while it runs. FLAME rows come
from `bench.reconstruct_flame.run()` when that module is importable (synthetic FLAME-format model:
fit at batch 1 and 64 on the CPU, batch 256 on CUDA when available).

Views (`view_rows`): 7 views at 512² per head and renderer backend — numpy (the first renderer, the
reference), numba (the default), gl (moderngl over EGL; llvmpipe here) with 4× MSAA and without — for
the canonical heads and a 20k-vertex, five-part synthetic head with morph weights. CPU ms of this
process (llvmpipe's threads included), best of repeats. Target: ≤ 150 ms with anti-aliasing.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # read by numpy's BLAS when it loads: before any numpy import

from bench.common import RESULTS_DIR, best_ms, print_table, write_json  # noqa: E402

TARGET_MS = 300.0  # canonical engine, without views
VIEWS_TARGET_MS = 150.0
FIT_TARGET_MS = 100.0
STAGE_TARGET_MS = 400.0  # the whole 3D stage with views
SWEEP = (("neutral", {}), ("smile", {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0}), ("jawOpen", {"jawOpen": 0.7}),
         ("blink", {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}))
SHEET_PHOTOS = ("obama_smiling", "man_santa_hat", "older_man")  # real fixtures beside the package photos
VIEW_BACKENDS = (("numpy", {}), ("numba", {}), ("gl", {"samples": 4}), ("gl", {"samples": 1}))


def canonical_rows(repeats: int, texture_size: int) -> list[dict]:
    from actors.align.aligner import FaceAligner
    from actors.reconstruct3d.bake import TextureBaker
    from actors.reconstruct3d.export import encode_png, write_glb, write_obj
    from actors.reconstruct3d.head import CanonicalHeadEngine
    from actors.reconstruct3d.render import ViewRenderer
    from bench.common import package_photos

    with FaceAligner() as aligner:
        faces = {name: aligner.align(photo) for name, photo in package_photos().items()}
    engine = CanonicalHeadEngine()
    baker = TextureBaker(texture_size)
    renderer = ViewRenderer(512)  # the default backend, held across heads as the 3D stage should
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
                ("render", lambda: renderer.render_views(mesh, texture), repeats),
            ):
                timings[f"{stage}_ms"], timings[f"{stage}_wall_ms"] = best_ms(function, count)
            total = timings["mesh_ms"] + timings["bake_ms"] + timings["export_ms"]
            wall = timings["mesh_wall_ms"] + timings["bake_wall_ms"] + timings["export_wall_ms"]
            rows.append({"engine": "canonical", "case": name, "device": "cpu", "threads": 1, "batch": 1,
                         **timings, "total_no_views_ms": total, "total_no_views_wall_ms": wall,
                         "total_with_views_ms": total + timings["render_ms"], "views_backend": renderer.backend_name,
                         "target_ms": TARGET_MS,
                         "meets_target": bool(total <= TARGET_MS), "nme": float(mesh.landmark_nme),
                         "texture": f"{texture_size}²"})
    return rows


def view_rows(repeats: int, sheets: Path | None = None) -> list[dict]:
    """7 views at 512² per head and backend (see the module docstring); contact sheets into `sheets`."""
    import numpy as np

    from actors.align.aligner import FaceAligner
    from actors.reconstruct3d.bake import TextureBaker
    from actors.reconstruct3d.head import CanonicalHeadEngine
    from actors.reconstruct3d.mesh import HeadTextures
    from actors.reconstruct3d.render import VIEW_YAWS, ViewRenderer, contact_sheet, yaw_label
    from bench.common import package_photos
    from tests.actors.reconstruct3d.synthetic_heads import multipart_head

    cases = {}
    with FaceAligner() as aligner:
        engine, baker = CanonicalHeadEngine(), TextureBaker(1024)
        for name, photo in package_photos().items():
            face = aligner.align(photo)
            mesh = engine.reconstruct_one(face)
            cases[f"canonical {name}"] = (mesh, HeadTextures.single(baker.bake(mesh, face.crop, face.mask, face.skin_mask)))
    mesh, textures = multipart_head()
    mesh.morph_weights = {"jawOpen": 0.35, "mouthSmileLeft": 0.8, "mouthSmileRight": 0.8, "eyeBlinkRight": 0.6}
    cases["synthetic 5-part 20k"] = (mesh, textures)

    rows = []
    for case, (mesh, textures) in cases.items():
        numpy_ms = None
        for backend, settings in VIEW_BACKENDS:
            with ViewRenderer(512, backend=backend, **settings) as renderer:
                try:
                    views = renderer.render_views(mesh, textures)  # warm-up: context, shader or kernel compile
                except RuntimeError as exc:
                    print(f"({case}, {backend} skipped: {exc})")
                    continue
                count = 1 if backend == "numpy" else repeats
                cpu_ms, wall_ms = best_ms(lambda: renderer.render_views(mesh, textures), count)
                device = renderer.device
            numpy_ms = cpu_ms if backend == "numpy" else numpy_ms
            anti_aliasing = {"numpy": "2×2 supersampling", "numba": "4× coverage (2×2 samples), shaded once per pixel",
                             "gl": f"{settings.get('samples', 1)}× MSAA" if settings.get("samples", 1) > 1 else "none"}[backend]
            label = backend if backend != "gl" else f"gl msaa{settings['samples']}"
            rows.append({"case": case, "backend": label, "device": device, "vertices": len(mesh.vertices),
                         "triangles": len(mesh.faces), "parts": len(mesh.part_list()), "morphs": len(mesh.morph_targets),
                         "views_ms": cpu_ms, "views_wall_ms": wall_ms,
                         "speedup_vs_numpy": numpy_ms / cpu_ms if numpy_ms else None, "anti_aliasing": anti_aliasing,
                         "target_ms": VIEWS_TARGET_MS,
                         "meets_target": bool(cpu_ms <= VIEWS_TARGET_MS) if anti_aliasing != "none" else None})
            if sheets is not None:
                import cv2

                sheets.mkdir(parents=True, exist_ok=True)
                sheet = contact_sheet(views, [yaw_label(y) for y in VIEW_YAWS])
                cv2.imwrite(str(sheets / f"{case.replace(' ', '_')}__{label.replace(' ', '_')}.png"),
                            np.ascontiguousarray(sheet[..., ::-1]))
    return rows


def _aligned_faces(with_fixtures: bool = False) -> dict:
    from actors.align.aligner import FaceAligner
    from bench.common import package_photos

    photos = package_photos()
    if with_fixtures:
        from tests.real_faces import FACES_DIR, load_rgb

        photos.update({name: load_rgb(FACES_DIR / f"{name}.jpg") for name in SHEET_PHOTOS if (FACES_DIR / f"{name}.jpg").is_file()})
    with FaceAligner() as aligner:
        return {name: aligner.align(photo) for name, photo in photos.items()}


def makehuman_rows(repeats: int, texture_size: int) -> list[dict]:
    """Per package photo: fit, blendshapes, bake, export, 7 views and the whole stage (module docstring)."""
    import dataclasses

    from actors.reconstruct3d.export import encode_images, write_glb, write_obj
    from actors.reconstruct3d.makehuman.engine import MakeHumanHeadEngine
    from actors.reconstruct3d.render import ViewRenderer
    from actors.reconstruct3d.stage import Reconstruct3DStage
    from actors.request import AvatarRequest

    engine = MakeHumanHeadEngine()
    renderer = ViewRenderer(512)
    request = AvatarRequest(modes=("3d",), texture_size=texture_size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, face in _aligned_faces().items():
            scores, _ = engine.blendshapes(face)  # warm-up: assets and the blendshape graph load once
            stored = dataclasses.replace(face, extras={**face.extras, "blendshapes": scores})
            mesh = engine.reconstruct([stored])[0]
            textures = engine.bake(mesh, stored, texture_size)
            renderer.render_views(mesh, textures)  # kernels compile (or load from numba's cache)

            def export():
                encoded = encode_images(mesh, textures)
                write_glb(mesh, textures, Path(tmp) / name / "head.glb", encoded=encoded)
                write_obj(mesh, textures, Path(tmp) / name, name="head", encoded=encoded)

            stage = Reconstruct3DStage(request, engine, view_size=512)
            timings = {}
            for step, function in (
                ("fit", lambda: engine.reconstruct([stored])),
                ("blendshapes", lambda: engine.blendshapes(face)),
                ("bake", lambda: engine.bake(mesh, stored, texture_size)),
                ("export", export),
                ("views", lambda: renderer.render_views(mesh, textures)),
                ("stage", lambda: stage.run([stored], [name], [Path(tmp) / "stage" / name])),
                ("stage_estimated", lambda: stage.run([face], [name], [Path(tmp) / "stage" / name])),
            ):
                timings[f"{step}_ms"], timings[f"{step}_wall_ms"] = best_ms(function, repeats)
            rows.append({"engine": "makehuman", "case": name, "device": "cpu", "threads": 1, "batch": 1, **timings,
                         "views_backend": renderer.backend_name, "texture": f"{texture_size}²", "nme": float(mesh.landmark_nme),
                         "hair": any(part.name == "hair" for part in mesh.part_list()), "vertices": len(mesh.vertices),
                         "triangles": len(mesh.faces),
                         "fit_meets_target": bool(timings["fit_ms"] <= FIT_TARGET_MS),
                         "views_meet_target": bool(timings["views_ms"] <= VIEWS_TARGET_MS),
                         "stage_meets_target": bool(timings["stage_ms"] <= STAGE_TARGET_MS)})
    engine.close()
    return rows


def head_sheets(folder: Path, size: int = 384) -> list[Path]:
    """The README's sheets, one per photo (package photos and real fixtures): the input, the head at
    yaw 0, 45 and 90, then the expression sweep (neutral, smile, jawOpen, blink via morph weights)
    from the front — one framing per sheet (the neutral head's)."""
    import dataclasses

    import cv2
    import numpy as np

    from actors.reconstruct3d.makehuman.engine import MakeHumanHeadEngine
    from actors.reconstruct3d.render import ViewRenderer, portrait_framing

    engine = MakeHumanHeadEngine()
    written = []
    with ViewRenderer(size) as renderer:
        for name, face in _aligned_faces(with_fixtures=True).items():
            mesh = engine.reconstruct([face])[0]
            textures = engine.bake(mesh, face, 1024)
            framing = portrait_framing(mesh)
            turns = renderer.render_views(mesh, textures, yaws=(0, 45, 90), framing=framing)
            sweep = []
            for _, weights in SWEEP:
                posed = dataclasses.replace(mesh, morph_weights={key: 0.0 for key in mesh.morph_weights} | weights)
                sweep.append(renderer.render_views(posed, textures, yaws=(0,), framing=framing)[0])
            tiles = [cv2.resize(face.crop, (size, size), interpolation=cv2.INTER_AREA), *turns, *sweep]
            labels = ["photo", "yaw 0", "yaw 45", "yaw 90", *(label for label, _ in SWEEP)]
            for tile, label in zip(tiles, labels):
                cv2.putText(tile, label, (10, size - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (70, 70, 70), 1, cv2.LINE_AA)
            blank = np.full_like(tiles[0], 238)
            sheet = np.concatenate([np.concatenate(tiles[:4], axis=1), np.concatenate([*tiles[4:], blank][:4], axis=1)], axis=0)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"head_views_{name}.png"
            cv2.imwrite(str(path), np.ascontiguousarray(sheet[..., ::-1]))
            written.append(path)
    engine.close()
    return written


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
    parser.add_argument("--views-only", action="store_true",
                        help="only the 7-view renderer comparison, written to bench/results/render.json")
    parser.add_argument("--sheets", type=Path, default=None, help="also write each backend's contact sheet here")
    parser.add_argument("--head-sheets", type=Path, default=None,
                        help="only write the README's makehuman head sheets (views and expression sweep) into this folder")
    parser.add_argument("--no-canonical", action="store_true", help="skip the canonical engine's rows")
    args = parser.parse_args(argv)
    if args.views_only:
        return views_main(args.repeats, args.sheets)
    if args.head_sheets is not None:
        for path in head_sheets(args.head_sheets):
            print(path)
        return 0

    import cv2
    import torch

    threads = (cv2.getNumThreads(), torch.get_num_threads())
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        load_before = os.getloadavg()[0]
        makehuman = makehuman_rows(args.repeats, args.texture_size)
        rows = [] if args.no_canonical else canonical_rows(args.repeats, args.texture_size)
        flame = [] if args.no_flame else flame_rows()
    finally:
        cv2.setNumThreads(threads[0])
        torch.set_num_threads(threads[1])

    print_table("Default engine (makehuman), CPU ms per face, 1 thread, best of repeats (wall ms in the JSON); "
                "stage = fit + bake + export + params + 7 views at 512² + PNG writes",
                makehuman, ["case", "fit_ms", "blendshapes_ms", "bake_ms", "export_ms", "views_ms", "stage_ms", "stage_estimated_ms",
                            "fit_meets_target", "views_meet_target", "stage_meets_target", "nme", "hair"])
    print_table("Canonical engine, CPU ms per image, 1 thread, best of repeats (wall ms in the JSON)",
                rows, ["case", "mesh_ms", "bake_ms", "export_ms", "render_ms", "total_no_views_ms", "total_no_views_wall_ms",
                       "meets_target", "nme"])
    if flame:
        columns = sorted({key for row in flame for key in row}, key=lambda k: (k not in ("engine", "device", "batch"), k))
        print_table("FLAME fitting (synthetic FLAME-format model)", flame, columns)
    write_json(args.json, {"load_average_at_start": load_before, "targets_ms": {"fit": FIT_TARGET_MS, "views": VIEWS_TARGET_MS,
               "stage_with_views": STAGE_TARGET_MS, "canonical_without_views": TARGET_MS},
               "makehuman": makehuman, "canonical": rows, "flame": flame})
    return 0


def views_main(repeats: int, sheets: Path | None) -> int:
    """The views comparison on one core: OMP and llvmpipe held to one thread unless the caller says otherwise."""
    for variable in ("OMP_NUM_THREADS", "LP_NUM_THREADS"):
        os.environ.setdefault(variable, "1")  # read by OpenCV/numpy and Mesa when they start: set before any import
    import cv2

    cv2.setNumThreads(1)
    load_before = os.getloadavg()[0]
    rows = view_rows(repeats, sheets)
    print_table("7 views at 512² per head, CPU ms on one core (OMP_NUM_THREADS=1, LP_NUM_THREADS=1), best of repeats",
                rows, ["case", "backend", "triangles", "parts", "views_ms", "views_wall_ms", "speedup_vs_numpy",
                       "anti_aliasing", "meets_target"])
    write_json(RESULTS_DIR / "render.json",
               {"load_average_at_start": load_before, "threads": {v: os.environ[v] for v in ("OMP_NUM_THREADS", "LP_NUM_THREADS")},
                "views": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
