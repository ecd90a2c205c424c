"""MakeHuman head engine: fit cost per face on one CPU thread, batch 1 and 16.

    OMP_NUM_THREADS=1 python -m bench.reconstruct_makehuman [--repeats 5] [--json bench/results/reconstruct_makehuman.json]

Rows: `fit` = `MakeHumanHeadEngine.reconstruct_landmarks` (pose + shape + expression fit, residual
field, HeadMesh assembly: rig joints, 52 morph targets), per face, best of `--repeats`, as CPU time
of this process (`time.process_time`; on a shared machine the wall clock also counts other
processes' turns) and wall time; with and without the residual step. Batches are the two package
photos' landmarks repeated (16 = 8 × 2). Also reported once: asset loading (first batch) and the
MediaPipe blendshape estimate per crop (skipped when the photo's scores are stored in the shards).
Target: fit ≤ 100 ms per face.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy loads its BLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from bench.common import RESULTS_DIR, best_ms, package_photos, print_table, write_json  # noqa: E402

TARGET_MS = 100.0


def run(repeats: int) -> dict:
    import cv2

    from actors.align.aligner import FaceAligner
    from actors.align.blendshapes import BlendshapeEstimator
    from actors.reconstruct3d.makehuman.engine import MakeHumanHeadEngine, MakeHumanOptions

    cv2.setNumThreads(1)
    with FaceAligner() as aligner:
        faces = [aligner.align(photo) for photo in package_photos().values()]
    with BlendshapeEstimator() as estimator:
        estimator.estimate(faces[0].crop)  # graph build
        scores = [estimator.estimate(face.crop) for face in faces]
        blendshape_cpu, blendshape_wall = best_ms(lambda: [estimator.estimate(face.crop) for face in faces], repeats)

    load_cpu, load_wall = best_ms(lambda: MakeHumanHeadEngine().loaded, 1)
    rows = []
    for residual in (True, False):
        engine = MakeHumanHeadEngine(MakeHumanOptions(residual=residual))
        engine.loaded
        for batch in (1, 16):
            landmarks = np.stack([faces[i % 2].landmarks for i in range(batch)])
            batch_scores = [scores[i % 2] for i in range(batch)]
            meshes = engine.reconstruct_landmarks(landmarks, batch_scores)
            cpu, wall = best_ms(lambda: engine.reconstruct_landmarks(landmarks, batch_scores), repeats)
            rows.append({
                "case": f"batch {batch}", "residual": residual, "batch": batch, "threads": 1,
                "fit_ms_per_face": cpu / batch, "fit_wall_ms_per_face": wall / batch, "target_ms": TARGET_MS,
                "meets_target": bool(cpu / batch <= TARGET_MS),
                "nme_astronaut": float(meshes[0].landmark_nme),
                "nme_grace_hopper": float(meshes[1].landmark_nme) if batch > 1 else None,
            })
    return {
        "rows": rows,
        "load_ms": load_cpu, "load_wall_ms": load_wall,
        "blendshapes_ms_per_face": blendshape_cpu / len(faces), "blendshapes_wall_ms_per_face": blendshape_wall / len(faces),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "reconstruct_makehuman.json")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    result = run(args.repeats)
    print_table("MakeHuman head engine, CPU ms per face, 1 thread, best of repeats (wall ms in the JSON)", result["rows"],
                ["case", "residual", "fit_ms_per_face", "fit_wall_ms_per_face", "meets_target", "nme_astronaut", "nme_grace_hopper"])
    print(f"\nasset loading (once per engine): {result['load_ms']:.0f} ms CPU, {result['load_wall_ms']:.0f} ms wall")
    print(f"MediaPipe blendshapes (when not stored): {result['blendshapes_ms_per_face']:.0f} ms CPU per face")
    write_json(args.json, {"load_average_at_start": load_before, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), **result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
