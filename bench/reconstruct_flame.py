"""FLAME fitting speed (and accuracy) on a synthetic model of FLAME's real size.

    python -m bench.reconstruct_flame [--device cpu|cuda] [--batch 1 64] [--json bench/results/reconstruct_flame.json]

Model: `actors.reconstruct3d.flame.synthetic` at FLAME's size — 5,024 vertices, 10,044 triangles,
300 identity + 100 expression components, 5 joints, 105 embedded MediaPipe landmarks (FLAME 2020:
5,023 vertices, 9,976 triangles). Faces: known parameters drawn from the priors, rendered to 478
MediaPipe-style landmarks. Each row fits `faces` faces in batches of `batch` with the default
`FitConfig` (4 rigid + 10 joint Gauss-Newton steps, 100 + 50 components fitted) after one warm-up
batch, and reports milliseconds per face. On the CPU torch runs on one thread and the time is this
process's CPU time (on a shared machine the wall clock also counts other processes' turns; both are
reported); on CUDA it is wall time after synchronising. Accuracy: mean vertex error of the fitted
posed mesh against the truth, as % of the template's bounding-box diagonal.
Target: ≤ 25 ms per face on one CPU core at batch 64.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.common import RESULTS_DIR, print_table, write_json

TARGET_MS = 25.0
FLAME_SIZE = {"num_rings": 62, "num_segments": 81}  # 5,024 vertices, like FLAME's 5,023
COLUMNS = ["engine", "device", "batch", "faces", "ms_per_face", "wall_ms_per_face", "faces_per_s", "threads",
           "vertices", "components", "fitted", "error_pct_of_size", "nme", "target_ms", "meets_target"]


def _problem(count: int, seed: int = 0):
    from actors.reconstruct3d.flame import synthetic
    from actors.reconstruct3d.flame.embedding import LandmarkEmbedding

    model = synthetic.build_synthetic_flame(**FLAME_SIZE)
    assets = synthetic.synthetic_assets(model)
    arrays = synthetic.build_embedding(model)
    embedding = LandmarkEmbedding(arrays["lmk_face_idx"], arrays["lmk_b_coords"].astype(np.float32),
                                  arrays["landmark_indices"])
    landmarks, vertices = synthetic.synthetic_landmarks(assets, embedding, **synthetic.random_parameters(count, seed))
    return model, assets, embedding, landmarks, vertices


def _time_fit(fitter, landmarks: np.ndarray, batch: int, device: str) -> tuple[float, float, list]:
    """(CPU seconds, wall seconds, results) to fit every face, `batch` at a time."""
    import torch

    results = []
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(landmarks), batch):
        results.append(fitter.fit(landmarks[start:start + batch]))
    sync()
    return time.process_time() - cpu, time.perf_counter() - wall, results


def run(batch_sizes=(1, 64), device: str = "cpu", faces: int | None = None) -> list[dict]:
    """One row per batch size: ms per face fitting FLAME (synthetic, FLAME-sized) on `device`."""
    import torch

    from actors.reconstruct3d.flame.fitter import FitConfig, FlameFitter

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for but torch sees no CUDA device.")
    threads = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(1)
    try:
        count = faces or max(128, 2 * max(batch_sizes))
        model, assets, embedding, landmarks, truth = _problem(count)
        config = FitConfig(device=device)
        fitter = FlameFitter(assets, embedding, config)
        rows = []
        for batch in batch_sizes:
            used = landmarks[: min(count, 16 if batch == 1 else count)]
            fitter.fit(landmarks[:batch])  # warm-up: allocations, the full-mesh rig
            cpu_s, wall_s, results = _time_fit(fitter, used, batch, device)
            fitted = np.concatenate([r.vertices for r in results])
            error = np.linalg.norm(fitted - truth[: len(used)], axis=-1).mean(axis=1) / model.size * 100
            seconds = cpu_s if device == "cpu" else wall_s
            ms = seconds * 1000 / len(used)
            rows.append({
                "engine": "flame", "device": device if device == "cpu" else torch.cuda.get_device_name(),
                "batch": batch, "faces": len(used), "ms_per_face": ms,
                "wall_ms_per_face": wall_s * 1000 / len(used), "faces_per_s": len(used) / seconds,
                "threads": torch.get_num_threads() if device == "cpu" else None,
                "vertices": assets.num_vertices, "components": f"{assets.num_shape}+{assets.num_expression}",
                "fitted": f"{fitter.num_shape}+{fitter.num_expression}",
                "error_pct_of_size": float(error.mean()), "nme": float(np.concatenate([r.nme for r in results]).mean()),
                "target_ms": TARGET_MS if device == "cpu" else None,
                "meets_target": bool(ms <= TARGET_MS) if device == "cpu" and batch >= 64 else None,
            })
        return rows
    finally:
        torch.set_num_threads(threads)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--batch", type=int, nargs="+", default=None,
                        help="batch sizes (default: 1 64 on the CPU, 256 on CUDA)")
    parser.add_argument("--faces", type=int, default=None, help="faces per row (default: max(128, 2 × batch))")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "reconstruct_flame.json")
    args = parser.parse_args(argv)
    batches = args.batch or ([1, 64] if args.device == "cpu" else [256])
    rows = run(batches, args.device, args.faces)
    print_table("FLAME fitting (synthetic FLAME-format model, FLAME's size)", rows, COLUMNS)
    write_json(args.json, {"flame": rows})
    return rows


if __name__ == "__main__":
    main()
