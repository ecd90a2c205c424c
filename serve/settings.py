"""`ServeSettings`: every knob of the single-photo service, validated in one place.

Fields are declared with `actors.options.option`, so `python app.py` flags and `AVATAR_*` environment
variables (`ServeSettings.from_env()`) are generated from here and never drift apart: `python app.py`,
`uvicorn` and Ray Serve replicas are configured the same way. The engines' configuration (Stable
Diffusion weights, FLAME files, device) is `actors.config.PipelineConfig`, read the same way.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from actors import options as opts
from actors.options import option

MB = 1024 * 1024


def default_results_dir() -> Path:
    """Outside the repository: results are biometric data and must not land in a checkout."""
    return Path(tempfile.gettempdir()) / "indian-avatar-serve"


@dataclass(frozen=True)
class ServeSettings:
    """Limits, storage and concurrency of the service. Call `check_inputs()` (the constructor does)."""

    results_dir: Path = option(help="where jobs and results are stored (biometric data: keep it private)",
                               default_factory=default_results_dir, metavar="DIR")
    ttl_s: float = option(3600.0, help="seconds results (and the uploaded photo) are kept after a job ends",
                          minimum=1e-3, flag="ttl")
    sweep_interval_s: float = option(30.0, help="seconds between sweeps for expired results", minimum=1e-3)
    job_timeout_s: float = option(300.0, help="time budget of one job in seconds, counted from its start (not its "
                                              "wait in the queue): a job past it is stopped and answered failed "
                                              "(reason timeout)", minimum=1e-3)
    max_upload_bytes: int = option(20 * MB, help="largest upload in bytes (larger answers 413)", minimum=1024)
    max_pixels: int = option(40_000_000, help="decompression-bomb guard: largest image in pixels (larger answers 422)",
                             minimum=64 * 64)
    workers: int = option(1, help="concurrent jobs (each worker loads its own models)", minimum=1, maximum=64)
    max_pending: int = option(8, help="jobs that may wait for a worker before the API answers 429", minimum=0)
    min_retry_after_s: int = option(2, help="lower bound of the Retry-After hint on 429", minimum=1)
    header_timeout_s: float = option(10.0, help="seconds a client has to send a request's headers (slower: 408, "
                                                "connection closed)", minimum=1e-3)
    body_timeout_s: float = option(60.0, help="seconds a client has to send a request's body once its headers "
                                              "arrived (slower: 408, connection closed)", minimum=1e-3)
    keep_alive_s: float = option(5.0, help="seconds an idle keep-alive connection stays open", minimum=1e-3)
    shutdown_timeout_s: float = option(3.0, help="seconds open connections get to finish on SIGTERM before they are "
                                                 "closed (running jobs are stopped at once)", minimum=0.0)
    ui: bool = option(True, help="mount the Gradio UI at /ui")

    def __post_init__(self) -> None:
        object.__setattr__(self, "results_dir", Path(self.results_dir))
        self.check_inputs()

    def check_inputs(self) -> None:
        """Raise one precise ValueError per broken rule."""
        opts.check_bounds(self)

    def with_changes(self, **changes) -> "ServeSettings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "ServeSettings":
        """Read `AVATAR_<FLAG>` variables (e.g. AVATAR_TTL=600, AVATAR_WORKERS=2); `overrides` (not None) win."""
        return opts.from_environ(cls, environ, **overrides)
