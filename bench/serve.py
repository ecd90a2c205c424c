"""Benchmark the HTTP service: normal 2D jobs, alone and under the adversarial probe's traffic.

    python -m bench.serve [--requests 50] [--concurrency 50] [--workers 1] [--max-pending 8]
                          [--scenarios baseline,hostile,restart] [--slow-clients 50] [--bombs 9] [--burst 60]

Starts `python app.py` on 127.0.0.1 in a subprocess per scenario, warms it with one request (model
loading, reported apart), then sends the normal requests at once (at most `--concurrency` in flight),
retrying 429s after their Retry-After, and polls each job to completion.

The `hostile` scenario runs, during the same normal load (issue 13's probe):
- `--slow-clients` sockets trickling headers or a body a byte at a time, reconnecting when cut off;
- a request naming `styles=cartoon` 600 times;
- `--bombs` concurrent scan-bomb uploads (a 6000² progressive JPEG whose AC scan repeats to ~19 MB);
- a burst of `--burst` concurrent uploads of 19 MB of junk with a JPEG signature.

The `restart` scenario measures what stopping a job costs (a job over budget or deleted kills its
worker process, `serve.worker`): a worker's start-up, its first job (models load) against a warm job,
how long a kill takes, and the first job after a kill.

Reports per scenario: normal-job latency p50/p95/p99 (submit to done, queueing and retries
included), throughput, HTTP codes (no 5xx expected), what the hostile requests got, how long slow
sockets stayed open, and the server's peak RSS (psutil, worker processes included). Prints a table
and writes bench/results/serve.json.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import struct
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
MB = 1024 * 1024


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
               "--workers", str(workers), "--max-pending", str(max_pending), "--log-level", "warning",
               "--header-timeout-s", "5", "--body-timeout-s", "30"]
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


# --------------------------------------------------------------------------------------- normal load


async def one_request(client, photo: bytes, style: str, codes: Counter, max_attempts: int = 200) -> dict:
    """Submit (retrying 429 after Retry-After), poll to the end; return timings and the final status."""
    started = time.perf_counter()
    retries = 0
    for _ in range(max_attempts):
        response = await client.post("/v1/avatars", files={"photo": ("photo.jpg", photo, "image/jpeg")}, data={"styles": style})
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
    async with httpx.AsyncClient(base_url=base_url, timeout=300, limits=limits) as client:

        async def bounded(index: int) -> dict:
            async with semaphore:
                return await one_request(client, photos[index % len(photos)], STYLES[index % len(STYLES)], codes)

        started = time.perf_counter()
        results = await asyncio.gather(*(bounded(i) for i in range(requests)))
        return results, time.perf_counter() - started


# ------------------------------------------------------------------------------------------ hostile


def scan_bomb(target_bytes: int = 19 * MB, side: int = 6000) -> bytes:
    """A progressive JPEG of side² (flat grey) whose last scan is repeated up to `target_bytes`."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (120, 110, 100)).save(buffer, "JPEG", quality=90, progressive=True)
    jpeg = buffer.getvalue()
    start = end = None
    pos = 2
    while pos < len(jpeg) - 1 and jpeg[pos + 1] != 0xD9:  # walk the segments; remember the last scan
        marker = jpeg[pos + 1]
        seg_end = pos + 2 + struct.unpack_from(">H", jpeg, pos + 2)[0]
        if marker == 0xDA:
            while True:  # entropy-coded data runs to the next marker that is not stuffing or a restart
                seg_end = jpeg.index(b"\xff", seg_end)
                if jpeg[seg_end + 1] == 0 or 0xD0 <= jpeg[seg_end + 1] <= 0xD7:
                    seg_end += 2
                    continue
                break
            start, end = pos, seg_end
        pos = seg_end
    scan = jpeg[start:end]
    repeats = max(1, (target_bytes - len(jpeg)) // len(scan))
    return jpeg[:end] + scan * repeats + jpeg[end:]


async def slow_socket(port: int, stop: asyncio.Event, open_times: list[float], replies: Counter, body_phase: bool) -> None:
    """Trickle a request a byte every 0.5 s; reconnect when the server cuts it off, until `stop`."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    trickle = b"X-Slow: " + b"a" * 10_000
    if body_phase:  # a well-formed upload whose photo bytes arrive a byte at a time
        part = b'--b\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        head = (b"POST /v1/avatars HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 100000\r\n\r\n" + part)
        trickle = b"\xff\xd8\xff" + b"a" * (100_000 - len(part) - 3)
    while not stop.is_set():
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head)
            for byte in trickle:
                if stop.is_set() or reader.at_eof():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(200), 0.5)
                    if data or reader.at_eof():
                        replies[data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "closed"] += 1
                        break
                except asyncio.TimeoutError:
                    pass
            writer.close()
        except (OSError, ConnectionError):
            replies["connect_error"] += 1
            await asyncio.sleep(0.2)
        open_times.append(time.perf_counter() - started)


async def hostile_traffic(base_url: str, port: int, stop: asyncio.Event, args, bomb: bytes) -> dict:
    import httpx

    codes: Counter = Counter()
    open_times: list[float] = []
    slow_replies: Counter = Counter()
    slow = [asyncio.create_task(slow_socket(port, stop, open_times, slow_replies, body_phase=i % 2 == 1))
            for i in range(args.slow_clients)]
    junk = b"\xff\xd8\xff" + os.urandom(19 * MB)
    async with httpx.AsyncClient(base_url=base_url, timeout=300,
                                 limits=httpx.Limits(max_connections=args.burst + args.bombs + 4)) as client:

        async def post(label: str, photo: bytes, data: dict) -> None:
            try:
                response = await client.post("/v1/avatars", files={"photo": ("x.jpg", photo, "image/jpeg")}, data=data)
                codes[f"{label}:{response.status_code}"] += 1
            except httpx.HTTPError as error:
                codes[f"{label}:{type(error).__name__}"] += 1

        await post("600_styles", _tiny_jpeg(), {"styles": ["cartoon"] * 600})
        await asyncio.gather(*(post("scan_bomb", bomb, {"styles": "cartoon"}) for _ in range(args.bombs)),
                             *(post("junk_19mb", junk, {"styles": "cartoon"}) for _ in range(args.burst)))
    await stop.wait()
    await asyncio.gather(*slow, return_exceptions=True)
    return {"hostile_codes": dict(sorted(codes.items())), "slow_socket_replies": dict(slow_replies),
            "slow_sockets_max_open_s": max(open_times, default=0.0), "slow_socket_connections": len(open_times)}


def _tiny_jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 150, 120)).save(buffer, "JPEG")
    return buffer.getvalue()


async def run_scenario(base_url: str, port: int, photos: list[bytes], args, hostile: bool, bomb: bytes | None):
    codes: Counter = Counter()
    stop = asyncio.Event()
    hostile_task = asyncio.create_task(hostile_traffic(base_url, port, stop, args, bomb)) if hostile else None
    if hostile:
        await asyncio.sleep(1.0)  # let the slow clients and the burst get going first
    results, wall_s = await run_load(base_url, photos, args.requests, args.concurrency, codes)
    stop.set()
    extra = await hostile_task if hostile_task else {}
    return results, wall_s, codes, extra


# ------------------------------------------------------------------------------------------ restart


def measure_restart(photos: list[bytes], tmp: Path, repeats: int = 3) -> dict:
    """Seconds: worker start-up, cold and warm jobs, kill, and the first job after a kill (real pipeline)."""
    from functools import partial

    from actors.config import config_from_environ
    from actors.engines import default_catalog
    from actors.request import AvatarRequest
    from serve.runner import default_pipeline_factory
    from serve.worker import Job, WorkerProcess

    catalog = default_catalog()
    worker = WorkerProcess(partial(default_pipeline_factory, config_from_environ(catalog), catalog))
    (tmp / "restart").mkdir()
    photo = tmp / "restart" / "input.jpg"
    photo.write_bytes(photos[0])
    job = Job("0" * 32, "upload/input.jpg", str(photo), AvatarRequest(styles=("cartoon",)).to_dict(), str(tmp / "restart"))

    def timed(action) -> float:
        started = time.perf_counter()
        action()
        return time.perf_counter() - started

    def run(budget_s: float = 300.0):
        return worker.run(job, budget_s, lambda *_: None, lambda: False)

    out: dict[str, list[float]] = {"startup_s": [], "cold_job_s": [], "warm_job_s": [], "kill_s": [],
                                   "restart_startup_s": [], "job_after_kill_s": []}
    try:
        for _ in range(repeats):
            worker.stop()
            out["startup_s"].append(timed(lambda: worker.wait_ready()))
            out["cold_job_s"].append(timed(run))
            out["warm_job_s"].append(timed(run))
            budget = 0.2  # stopped mid-job: the kill is what exceeds the budget
            out["kill_s"].append(timed(lambda: run(budget)) - budget)
            out["restart_startup_s"].append(timed(lambda: worker.wait_ready()))
            out["job_after_kill_s"].append(timed(run))
    finally:
        worker.stop()
    return {f"restart_{key}": float(np.median(values)) for key, values in out.items()}


# ---------------------------------------------------------------------------------------------- main


def measure(scenario: str, photos: list[bytes], args, tmp: Path, bomb: bytes | None) -> dict:
    import httpx

    port = free_port()
    process, startup_s = start_server(port, tmp / f"results-{scenario}", args.workers, args.max_pending, not args.no_ui,
                                      tmp / f"server-{scenario}.log")
    sampler = RssSampler(process.pid)
    sampler.start()
    try:
        base_url = f"http://127.0.0.1:{port}"
        warm_started = time.perf_counter()
        [warm] = asyncio.run(run_load(base_url, photos[:1], 1, 1, Counter()))[0]
        warm_s = time.perf_counter() - warm_started
        idle_rss = sampler.peak_bytes
        results, wall_s, codes, extra = asyncio.run(run_scenario(base_url, port, photos, args, scenario == "hostile", bomb))
        health = httpx.get(f"{base_url}/healthz").json()
    finally:
        peak_rss = sampler.stop()
        stopping = time.perf_counter()
        process.terminate()
        process.wait(timeout=60)
        shutdown_s = time.perf_counter() - stopping
    latencies = np.array([r["latency_s"] for r in results])
    statuses = Counter(r["status"] for r in results)
    server_errors = sum(n for code, n in codes.items() if code >= 500)
    server_errors += sum(n for key, n in extra.get("hostile_codes", {}).items() if key.rsplit(":", 1)[1].startswith("5"))
    return {
        "scenario": scenario,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "max_pending": args.max_pending,
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
        "peak_rss_mb": peak_rss / MB,
        "rss_after_warmup_mb": idle_rss / MB,
        "mean_job_s_reported_by_server": health.get("mean_job_s"),
        "worker_restarts": health.get("worker_restarts"),
        "sigterm_shutdown_s": shutdown_s,
        **extra,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Normal 2D jobs against the HTTP service, alone and under hostile traffic.")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-pending", type=int, default=8)
    parser.add_argument("--scenarios", default="baseline,hostile,restart",
                        help="comma-separated: baseline, hostile, restart")
    parser.add_argument("--slow-clients", type=int, default=50)
    parser.add_argument("--bombs", type=int, default=9)
    parser.add_argument("--burst", type=int, default=60, help="concurrent 19 MB junk uploads in the hostile scenario")
    parser.add_argument("--no-ui", action="store_true", help="serve without the Gradio UI mounted")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "serve.json")
    args = parser.parse_args(argv)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - {"baseline", "hostile", "restart"}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        tmp = Path(tmp)
        photos = [p.read_bytes() for p in sorted(write_photo_folder(tmp / "photos", min(args.requests, 20)).iterdir())]
        bomb = scan_bomb() if "hostile" in scenarios else None
        summaries = [measure(scenario, photos, args, tmp, bomb) for scenario in scenarios if scenario != "restart"]
        restart = measure_restart(photos, tmp) if "restart" in scenarios else {}

    if restart:
        print_table("Stopping a job: worker process costs (median of 3, seconds)",
                    [{"measure": k.removeprefix("restart_"), "seconds": v} for k, v in restart.items()], ["measure", "seconds"])
    if not summaries:
        write_json(args.output, {"serve": {"restart": restart}})
        return {"restart": restart}

    metrics = [k for k, v in summaries[0].items() if not isinstance(v, dict) and k != "scenario"]
    metrics += [k for s in summaries for k, v in s.items() if not isinstance(v, dict) and k not in metrics and k != "scenario"]
    rows = [{"metric": m, **{s["scenario"]: s.get(m, "") for s in summaries}} for m in metrics]
    for key in ("job_statuses", "http_codes", "hostile_codes", "slow_socket_replies"):
        if any(key in s for s in summaries):
            rows.append({"metric": key, **{s["scenario"]: ", ".join(f"{a}: {b}" for a, b in s.get(key, {}).items())
                                           for s in summaries}})
    print_table(f"HTTP service: {args.requests} normal 2D requests, {args.workers} worker(s), {os.cpu_count()} CPUs",
                rows, ["metric", *[s["scenario"] for s in summaries]])
    write_json(args.output, {"serve": {**{s["scenario"]: s for s in summaries}, **({"restart": restart} if restart else {})}})
    server_errors = sum(s["http_5xx"] for s in summaries)
    if server_errors:
        print(f"\n{server_errors} responses were 5xx", file=sys.stderr)
        sys.exit(1)
    return {**{s["scenario"]: s for s in summaries}, "restart": restart}


if __name__ == "__main__":
    main()
