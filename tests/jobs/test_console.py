"""Issue 10: a quiet console. `make demo` shows a progress bar and a short summary (≤ 30 lines in all);
Ray's operator status, its core worker's warnings and MediaPipe's TensorFlow Lite / absl chatter stay
in the logs unless `--verbose`.

Lines are counted as a terminal shows them: a progress bar redrawn in place (carriage returns) is one line.
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.jobs.helpers import REPO, job_env

MAKE_DEMO_OWN_LINES = 3  # make echoes the demo's two commands; its closing `@echo` prints one line
MAX_DEMO_LINES = 30
NOISE = {
    "Ray Data operator status": r"Running Dataset|Execution plan|execution finished|MapBatches\(|streaming_executor"
                                r"|Progress bars disabled|ReadRange|Operator \d",
    "Ray core": r"core_worker\.cc|raylet|INFO worker\.py|Started a local Ray instance| pid=\d+\)",
    "TensorFlow Lite / absl / glog": r"TensorFlow Lite|XNNPACK|absl::|^[IWE]\d{4} \d\d:\d\d|inference_feedback_manager"
                                     r"|gl_context|landmark_projection_calculator",
}


def _run(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=job_env(), capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_make_demo_prints_at_most_30_lines_and_no_ray_or_tensorflow_chatter(tmp_path):
    """The demo's two commands exactly as the Makefile runs them (samples from packages, then generate)."""
    samples = _run("-m", "dataset.samples", "--dest", str(tmp_path / "samples"), timeout=300)
    assert samples.returncode == 0, samples.stderr[-3000:]
    demo = _run("-m", "jobs.generate", "--input", str(tmp_path / "samples"), "--output", str(tmp_path / "run"),
                "--modes", "2d,3d", "--style", "all")
    console = samples.stdout + samples.stderr + demo.stdout + demo.stderr
    assert demo.returncode == 0, console[-4000:]
    lines = console.rstrip("\n").split("\n")
    assert len(lines) + MAKE_DEMO_OWN_LINES <= MAX_DEMO_LINES, console
    for what, pattern in NOISE.items():
        found = [line for line in lines if re.search(pattern, line)]
        assert not found, f"{what} on the console: {found[:3]}"
    assert re.search(r"^Done: 5 inputs, 4 ok, 1 rejected\.$", demo.stdout, re.M), demo.stdout
    assert "Generating: 100%" in demo.stdout
    assert (tmp_path / "run" / "job.log").is_file(), "what was kept off the console is in the job's log"


@pytest.mark.slow
def test_verbose_shows_what_the_quiet_console_hides(tmp_path, package_photos):
    """--verbose is the switch: the same kind of run prints Ray Data's operator status."""
    import cv2

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "astronaut.jpg"), cv2.cvtColor(package_photos["astronaut"], cv2.COLOR_RGB2BGR))
    run = _run("-m", "jobs.generate", "--input", str(photos), "--output", str(tmp_path / "run"), "--modes", "3d",
               "--no-views", "--no-report", "--verbose")
    console = run.stdout + run.stderr
    assert run.returncode == 0, console[-4000:]
    assert re.search(NOISE["Ray Data operator status"], console), console[-4000:]
    assert not (tmp_path / "run" / "job.log").exists()
