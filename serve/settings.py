"""`ServeSettings`: every knob of the single-photo service, validated in one place.

Values come from the constructor or from `AVATAR_*` environment variables (`ServeSettings.from_env()`),
so `python app.py`, `uvicorn` and Ray Serve replicas are configured the same way.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

MB = 1024 * 1024


def default_results_dir() -> Path:
    """Outside the repository: results are biometric data and must not land in a checkout."""
    return Path(tempfile.gettempdir()) / "indian-avatar-serve"


@dataclass(frozen=True)
class ServeSettings:
    """Limits, storage and concurrency of the service. Call `check_inputs()` (the constructor does)."""

    results_dir: Path = field(default_factory=default_results_dir)
    ttl_s: float = 3600.0  # results (and the uploaded photo) are deleted this long after the job ends
    sweep_interval_s: float = 30.0  # how often the background sweeper looks for expired results
    job_timeout_s: float = 900.0  # a queued/running job not updated for this long is abandoned and removed
    max_upload_bytes: int = 20 * MB  # larger uploads answer 413
    max_pixels: int = 40_000_000  # decompression-bomb guard: larger images (by header) answer 422
    workers: int = 1  # concurrent jobs; each worker thread owns one pipeline (models load once per worker)
    max_pending: int = 8  # jobs waiting for a worker; beyond this the API answers 429
    min_retry_after_s: int = 2  # lower bound of the Retry-After hint on 429
    ui: bool = True  # mount the Gradio UI at /ui

    def __post_init__(self) -> None:
        object.__setattr__(self, "results_dir", Path(self.results_dir))
        self.check_inputs()

    def check_inputs(self) -> None:
        """Raise one precise ValueError per broken rule."""
        if not self.ttl_s > 0:
            raise ValueError(f"`ttl_s` must be positive, got {self.ttl_s}.")
        if not self.sweep_interval_s > 0:
            raise ValueError(f"`sweep_interval_s` must be positive, got {self.sweep_interval_s}.")
        if not self.job_timeout_s > 0:
            raise ValueError(f"`job_timeout_s` must be positive, got {self.job_timeout_s}.")
        if self.max_upload_bytes < 1024:
            raise ValueError(f"`max_upload_bytes` must be at least 1024, got {self.max_upload_bytes}.")
        if self.max_pixels < 64 * 64:
            raise ValueError(f"`max_pixels` must be at least 4096, got {self.max_pixels}.")
        if self.workers < 1:
            raise ValueError(f"`workers` must be at least 1, got {self.workers}.")
        if self.max_pending < 0:
            raise ValueError(f"`max_pending` must be non-negative, got {self.max_pending}.")
        if self.min_retry_after_s < 1:
            raise ValueError(f"`min_retry_after_s` must be at least 1, got {self.min_retry_after_s}.")

    def with_changes(self, **changes) -> "ServeSettings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "ServeSettings":
        """Read `AVATAR_<FIELD>` variables (e.g. AVATAR_TTL_S=600, AVATAR_WORKERS=2); `overrides` win."""
        environ = os.environ if environ is None else environ
        values: dict = {}
        for f in fields(cls):
            raw = environ.get(f"AVATAR_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _parse(f.name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _parse(name: str, raw: str, annotation) -> object:
    kind = str(annotation)
    try:
        if kind == "bool":
            if raw.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if raw.strip().lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        return Path(raw)
    except ValueError:
        raise ValueError(f"Environment variable AVATAR_{name.upper()}={raw!r} is not a valid {kind}.") from None
