"""Benchmark the HTTP service: N concurrent 2D requests against `python app.py` on 127.0.0.1.

    python -m bench.serve [--requests 50] [--concurrency 50] [--workers 1] [--max-pending 8]

Starts the server in a subprocess, warms it with one request (model loading, reported apart), then
sends the requests at once (at most `--concurrency` in flight), retrying 429s after their
Retry-After, and polls each job to completion. Reports status codes (no 5xx expected), end-to-end
latency p50/p95/p99 (submit to done, including queueing and retries), throughput, and the server
process's peak RSS (sampled with psutil, children included). Prints a table, writes
bench/results/serve.json.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench.common import RESULTS_DIR, print_table, write_json, write_photo_folder

ROOT = Path(__file__).resolve().parents[1]
STYLES = ("cartoon", "anime", "realistic", "sketch")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RssSampler(threading.Thread):
    """Peak resident memory of a process and its children, sampled every `interval_s`."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        while not self._halt.is_set():
            try:
                processes = [self.process, *self.process.children(recursive=True)]
                self.peak_bytes = max(self.peak_bytes, sum(p.memory_info().rss for p in processes))
            except psutil.Error:
                pass
            self._halt.wait(self.interval_s)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak_bytes


def start_server(port: int, results_dir: Path, workers: int, max_pending: int, ui: bool, log_path: Path):
    import httpx

    command = [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), "--results-dir", str(results_dir),
               "--workers", str(workers), "--max-pending", str(max_pending), "--log-level", "warning"]
    if not ui:
        command.append("--no-ui")
    started = time.perf_counter()
    log = open(log_path, "w")
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)


async def one_request(client, photo: bytes, style: str, codes: Counter, max_attempts: int = 200) -> dict:
    """Submit (retrying 429 after Retry-After), poll to the end; return timings and the final status."""
    started = time.perf_counter()
    retries = 0
    for _ in range(max_attempts):
        response = await client.post("/v1/avatars", files={"photo": ("photo.jpg", photo, "image/jpeg")}, data={"style": style})
        codes[response.status_code] += 1
        if response.status_code != 429:
            break
        retries += 1
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
    if response.status_code != 202:
        return {"status": f"http_{response.status_code}", "latency_s": time.perf_counter() - started, "retries": retries}
    status_url = response.json()["status_url"]
    while True:
        status = await client.get(status_url)
        codes[status.status_code] += 1
        body = status.json()
        if status.status_code != 200 or body["status"] in ("done", "rejected", "failed"):
            break
        await asyncio.sleep(0.25)
    return {"status": body.get("status", f"http_{status.status_code}"), "latency_s": time.perf_counter() - started,
            "retries": retries, "reason": body.get("reason", "")}


async def run_load(base_url: str, photos: list[bytes], requests: int, concurrency: int, codes: Counter) -> tuple[list[dict], float]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:

        async def bounded(index: int) -> dict:
            async with semaphore:
                return await one_request(client, photos[index % len(photos)], STYLES[index % len(STYLES)], codes)

        started = time.perf_counter()
        results = await asyncio.gather(*(bounded(i) for i in range(requests)))
        return results, time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Concurrent 2D requests against the HTTP service.")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-pending", type=int, default=8)
    parser.add_argument("--no-ui", action="store_true", help="serve without the Gradio UI mounted")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "serve.json")
    args = parser.parse_args(argv)

    import httpx

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        tmp = Path(tmp)
        photos = [p.read_bytes() for p in sorted(write_photo_folder(tmp / "photos", min(args.requests, 20)).iterdir())]
        port = free_port()
        process, startup_s = start_server(port, tmp / "results", args.workers, args.max_pending, not args.no_ui, tmp / "server.log")
        sampler = RssSampler(process.pid)
        sampler.start()
        codes: Counter = Counter()
        try:
            base_url = f"http://127.0.0.1:{port}"
            warm_started = time.perf_counter()
            [warm] = asyncio.run(run_load(base_url, photos[:1], 1, 1, Counter()))[0]
            warm_s = time.perf_counter() - warm_started
            idle_rss = sampler.peak_bytes
            results, wall_s = asyncio.run(run_load(base_url, photos, args.requests, args.concurrency, codes))
            health = httpx.get(f"{base_url}/healthz").json()
        finally:
            peak_rss = sampler.stop()
            process.terminate()
            process.wait(timeout=60)

    latencies = np.array([r["latency_s"] for r in results])
    statuses = Counter(r["status"] for r in results)
    server_errors = sum(n for code, n in codes.items() if code >= 500)
    summary = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "max_pending": args.max_pending,
        "ui_mounted": not args.no_ui,
        "startup_s": startup_s,
        "warmup_request_s": warm_s,
        "warmup_status": warm["status"],
        "wall_s": wall_s,
        "throughput_per_s": statuses.get("done", 0) / wall_s,
        "latency_p50_s": float(np.percentile(latencies, 50)),
        "latency_p95_s": float(np.percentile(latencies, 95)),
        "latency_p99_s": float(np.percentile(latencies, 99)),
        "job_statuses": dict(statuses),
        "http_codes": {str(k): v for k, v in sorted(codes.items())},
        "http_5xx": server_errors,
        "retries_429": sum(r["retries"] for r in results),
        "peak_rss_mb": peak_rss / 2**20,
        "rss_after_warmup_mb": idle_rss / 2**20,
        "mean_job_s_reported_by_server": health.get("mean_job_s"),
    }
    rows = [{"metric": k, "value": v} for k, v in summary.items() if not isinstance(v, dict)]
    rows += [{"metric": f"{k}", "value": ", ".join(f"{a}: {b}" for a, b in v.items())} for k, v in summary.items() if isinstance(v, dict)]
    print_table(f"HTTP service: {args.requests} concurrent 2D requests, {args.workers} worker(s), {os.cpu_count()} CPUs", rows, ["metric", "value"])
    write_json(args.output, {"serve": summary})
    if server_errors:
        print(f"\n{server_errors} responses were 5xx", file=sys.stderr)
        sys.exit(1)
    return summary


if __name__ == "__main__":
    main()
