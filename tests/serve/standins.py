"""Stand-in pipelines for service tests that must control time: fast, slow, hanging, gated.

They run in the service's worker processes, so they are module-level classes (the factory pickles)
and talk to the test through files, not threading objects. Each writes real PNG files where the real
pipeline would, so the download routes and the UI have something to serve.
"""
from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np


def _png(seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def ok_row(request, output_dir: Path, source: str) -> dict:
    """A finished row with one avatar PNG per style (and views for 3D), written under `output_dir/avatars/standin/`."""
    folder = Path(output_dir) / "avatars" / "standin"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, style in enumerate(request.styles if "2d" in request.modes else ()):
        path = folder / f"avatar_{style}.png"
        path.write_bytes(_png(index))
        paths.append(path.relative_to(output_dir).as_posix())
    row = {"status": "ok", "reason": "", "detail": "", "source": source, "styles": list(request.styles) if paths else [],
           "avatar_paths": paths, "ita_in": 20.0, "mst_in": 6}
    if "3d" in request.modes:  # a contact sheet and two views stand for the head's files
        for index, name in enumerate(("views.png", "view_-90.png", "view_0.png")):
            (folder / name).write_bytes(_png(10 + index))
        row["views_path"] = (folder / "views.png").relative_to(output_dir).as_posix()
    return row


class FastPipeline:
    """Answers at once with real files (the schemathesis run, the whitelist test)."""

    def process(self, *, source, data, request, output_dir, progress=None):
        if progress:
            progress(0.5, "stand-in")
        return ok_row(request, output_dir, source)

    def close(self) -> None:
        pass


class SlowPipeline:
    """Takes `seconds_per_style` per requested style (the probe's 600-style request, scaled)."""

    def __init__(self, seconds_per_style: float = 1.0) -> None:
        self.seconds_per_style = seconds_per_style

    def process(self, *, source, data, request, output_dir, progress=None):
        styles = request.styles if "2d" in request.modes else ("3d",)
        for index, _ in enumerate(styles):
            if progress:
                progress(index / len(styles), f"style {index + 1} of {len(styles)}")
            time.sleep(self.seconds_per_style)
        return ok_row(request, output_dir, source)

    def close(self) -> None:
        pass


class HangingPipeline:
    """Never returns when the request asks for the `sketch` style, and reports no progress while it
    hangs (a decoder stuck in C code); other requests finish at once. With `pid_dir`, each job writes
    the id of the process running it to `pid_dir/<job id>`."""

    def __init__(self, pid_dir: str | None = None) -> None:
        self.pid_dir = Path(pid_dir) if pid_dir else None

    def process(self, *, source, data, request, output_dir, progress=None):
        if self.pid_dir is not None:
            self.pid_dir.mkdir(parents=True, exist_ok=True)
            (self.pid_dir / Path(output_dir).name).write_text(str(os.getpid()))
        if "sketch" in request.styles:
            while True:
                time.sleep(3600)
        return ok_row(request, output_dir, source)

    def close(self) -> None:
        pass


class GatedPipeline:
    """Blocks every job until the file `gate` exists, then reports an unusable photo."""

    def __init__(self, gate: str, started_dir: str) -> None:
        self.gate, self.started_dir = Path(gate), Path(started_dir)

    def process(self, *, source, data, request, output_dir, progress=None):
        (self.started_dir / Path(output_dir).name).touch()
        progress(0.5, "waiting at the gate")
        deadline = time.monotonic() + 60
        while not self.gate.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return {"status": "rejected", "reason": "no_face", "detail": "stand-in pipeline"}

    def close(self) -> None:
        pass
