"""Preprocessing throughput: a plain single-process loop vs the Ray job with 1 and 2 actors.

    python -m bench.preprocess [--count 1000] [--json bench/results/preprocess.json]

All three run on the same photo folder in one run. `seconds` is the whole job, Ray's fixed start-up
included (measured on its own with a 2-photo run and reported); `steady` is the throughput once the
pool runs: the rows after the first shard file divided by the time from the first shard file to the
last (each file is one actor batch).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS_DIR, print_table, write_json, write_photo_folder


def plain_loop(folder: Path, upscale: bool = True) -> tuple[float, int]:
    """(seconds, faces super-resolved) of preparing every photo in one process."""
    from actors.align.upscale import UpscaleOptions
    from actors.config import PipelineConfig
    from actors.pipeline import PhotoPreparer
    from dataset.sources import list_inputs

    sources = list_inputs(folder)
    preparer = PhotoPreparer(PipelineConfig(upscale=UpscaleOptions(enabled=upscale)))
    preparer.prepare(sources[0])  # warm-up: model load is not per-image cost
    started = time.perf_counter()
    upscaled = sum((preparer.prepare(source).get("upscale_factor") or 1) > 1 for source in sources)
    elapsed = time.perf_counter() - started
    preparer.close()
    return elapsed, upscaled


def ray_job(folder: Path, output: Path, num_actors: int, batch_size: int) -> tuple[float, float]:
    """(wall seconds, steady-state images/s) of one preprocess job."""
    import pyarrow.parquet as pq

    from jobs import preprocess

    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    preprocess.main(["--input", str(folder), "--output", str(output), "--num-actors", str(num_actors),
                     "--batch-size", str(batch_size)])
    wall = time.perf_counter() - started
    files = sorted((output / "shards").glob("part-*.parquet"), key=lambda path: path.stat().st_mtime)
    if len(files) < 2:
        return wall, float("nan")
    rows_after_first = sum(pq.ParquetFile(path).metadata.num_rows for path in files[1:])
    return wall, rows_after_first / (files[-1].stat().st_mtime - files[0].stat().st_mtime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "preprocess.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local ray.init must not switch later clusters to token auth

    import ray

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_photo_folder(Path(tmp) / "photos", args.count)
        tiny = write_photo_folder(Path(tmp) / "tiny", 2)
        loop_s, upscaled = plain_loop(folder)
        plain_s, _ = plain_loop(folder, upscale=False)
        rows = [{"mode": "plain loop (1 process)", "seconds": loop_s, "steady_images_per_s": args.count / loop_s},
                {"mode": "plain loop, --no-upscale", "seconds": plain_s, "steady_images_per_s": args.count / plain_s}]
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        startup_s, _ = ray_job(tiny, Path(tmp) / "warm", 1, args.batch_size)  # Ray Data start-up, 2 inputs
        for actors in (1, 2):
            wall, steady = ray_job(folder, Path(tmp) / f"out{actors}", actors, args.batch_size)
            rows.append({"mode": f"Ray job, {actors} actor{'s' if actors > 1 else ''}", "seconds": wall,
                         "steady_images_per_s": steady})
        ray.shutdown()
    for row in rows:
        row["images_per_s"] = args.count / row["seconds"]
        row["ms_per_image"] = 1000 * row["seconds"] / args.count
        row["speed_up"] = loop_s / row["seconds"]
        row["steady_speed_up"] = row["steady_images_per_s"] / rows[0]["steady_images_per_s"]
    print_table(f"Preprocess, {args.count} photos ({upscaled} small faces super-resolved), {os.cpu_count()} cores "
                f"(Ray start-up, 2-photo job: {startup_s:.1f} s)",
                rows, ["mode", "seconds", "images_per_s", "ms_per_image", "speed_up", "steady_images_per_s",
                       "steady_speed_up"])
    write_json(args.json, {"count": args.count, "batch_size": args.batch_size, "ray_startup_s": startup_s,
                           "upscaled": upscaled, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
