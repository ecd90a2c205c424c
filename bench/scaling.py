"""Scaling: the generate job with 1 and 2 actors per stage on this machine, three stages (alignment → 2D →
3D, the default) against two (alignment → 2D+3D in one actor, `--fuse-avatar-stages`) on the same photos in
the same run, per-stage costs, and a sizing estimate.

    python -m bench.scaling [--count 200] [--modes 2d,3d] [--json bench/results/scaling.json]

Per-stage costs come from the job's own per-item timings in results.parquet (ms_align, ms_2d, ms_3d);
wall time and images/s from the runs. The sizing section turns the measured CPU cost per photo into the
CPU cores (and 16-core workers) needed for 1 million photos in 24 hours.
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from bench.common import RESULTS_DIR, print_table, write_json, write_photo_folder

PHOTOS_PER_DAY = 1_000_000
SECONDS_PER_DAY = 24 * 3600
CPU_WORKER_CORES = 16  # cluster.yaml's cpu_worker (c6i.4xlarge)


def run_generate(folder: Path, output: Path, actors: int, modes: str, batch_size: int, fused: bool) -> tuple[float, dict]:
    from jobs import generate

    started = time.perf_counter()
    generate.main(["--input", str(folder), "--output", str(output), "--modes", modes, "--style", "cartoon",
                   "--num-actors", str(actors), "--batch-size", str(batch_size), "--no-report"]
                  + (["--fuse-avatar-stages"] if fused else []))
    wall = time.perf_counter() - started
    table = pq.read_table(output / "results.parquet").to_pandas()
    ok = table[table["status"] == "ok"]
    stages = {name: float(ok[name].mean()) for name in ("ms_align", "ms_2d", "ms_3d") if ok[name].notna().any()}
    return wall, stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--modes", default="2d,3d")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "scaling.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local ray.init must not switch later clusters to token auth
    import ray

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_photo_folder(Path(tmp) / "photos", args.count)
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        for layout, fused in (("three stages", False), ("two stages (fused 2D+3D)", True)):
            for actors in (1, 2):
                wall, stages = run_generate(folder, Path(tmp) / f"out{actors}{fused}", actors, args.modes,
                                            args.batch_size, fused)
                rows.append({"layout": layout, "actors": actors, "wall_s": wall, "images_per_s": args.count / wall,
                             **stages})
        ray.shutdown()
    base = rows[0]["images_per_s"]
    for row in rows:
        row["speed_up"] = row["images_per_s"] / base
    stage_columns = [c for c in ("ms_align", "ms_2d", "ms_3d") if c in rows[0]]
    print_table(f"generate --modes {args.modes}, {args.count} photos, {os.cpu_count()} cores (actors per stage)", rows,
                ["layout", "actors", "wall_s", "images_per_s", "speed_up", *stage_columns])

    sizing = sizing_for(rows, os.cpu_count())
    print_table("Sizing for 1,000,000 photos in 24 h (offline engine, CPU workers)", [sizing], list(sizing))
    write_json(args.json, {"count": args.count, "modes": args.modes, "rows": rows, "sizing": sizing})
    return 0


def sizing_for(rows: list[dict], cores: int) -> dict:
    """CPU-seconds per photo from the best measured throughput with every core busy (the per-stage
    timings include the contention of more actors than cores, so they overstate the cost), and what
    1M photos a day then needs."""
    cpu_s_per_photo = cores / max(row["images_per_s"] for row in rows)
    per_core_per_day = SECONDS_PER_DAY / cpu_s_per_photo
    needed = math.ceil(PHOTOS_PER_DAY / per_core_per_day)
    sizing = {
        "cpu_seconds_per_photo": cpu_s_per_photo,
        "photos_per_core_per_day": per_core_per_day,
        "photos_per_cpu_worker_per_day": per_core_per_day * CPU_WORKER_CORES,
        "cores_for_1M_per_day": needed,
        "cpu_workers_for_1M_per_day": math.ceil(needed / CPU_WORKER_CORES),
    }
    return sizing


if __name__ == "__main__":
    raise SystemExit(main())
