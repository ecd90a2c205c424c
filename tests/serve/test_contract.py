"""Issue 13, item 21: the OpenAPI document states every rule the server enforces and every answer it
gives. Schemathesis (all checks, stateful: POST → GET → files → DELETE through the document's links)
runs against the app on 127.0.0.1 and must find nothing. A fast stand-in pipeline keeps the run short;
the API layer it tests is the real one.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from serve.app import create_app
from serve.settings import ServeSettings
from tests.serve.conftest import live_server
from tests.serve.standins import FastPipeline

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "60"))
SEED = os.environ.get("SCHEMATHESIS_SEED", "13")  # fixed: the same cases on every run; set another to explore


def test_schemathesis_finds_no_failure(tmp_path):
    settings = ServeSettings(results_dir=tmp_path / "results", ui=False, workers=2, max_pending=256)
    report = tmp_path / "schemathesis.txt"
    with live_server(create_app(settings, pipeline_factory=FastPipeline)) as url:
        command = [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json", "--checks", "all",
                   "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(EXAMPLES),
                   "--workers", "1", "--seed", SEED, "--generation-database", "none", "--no-color",
                   "--request-timeout", "30"]
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.serve.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    report.write_text(run.stdout + run.stderr)
    summary = [line for line in run.stdout.splitlines() if not line.lstrip().startswith("curl")]
    assert run.returncode == 0, "\n".join(summary)[-6000:]
    assert "Stateful" in run.stdout and "passed" in run.stdout
    assert "failure" not in run.stdout.splitlines()[-1], run.stdout.splitlines()[-1]
