"""Helpers for the job tests: run a job in a subprocess, start and stop a real Ray head."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def job_env() -> dict[str, str]:
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    # As with an activated venv: `python` in a job's entrypoint is this interpreter.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def start_job(module: str, *args: str, log_path: Path) -> subprocess.Popen:
    """Start `python -m module args` in its own session (so the test can kill it and its local Ray)."""
    log = open(log_path, "wb")
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env=job_env(), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def kill_session(process: subprocess.Popen) -> None:
    """SIGKILL the process, its process group and every descendant (a local Ray's raylet and workers)."""
    import psutil

    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for member in family:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=30)
    process.wait(timeout=60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def run_cli(main, argv: list[str], capfd, **kwargs) -> tuple[int, str, str]:
    """Call a job's `main(argv)` in this process: (exit code, stdout, stderr) as the console would show them
    (file-descriptor level, so Ray's and native libraries' writes count too)."""
    capfd.readouterr()
    try:
        code = main(argv, **kwargs)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    out, err = capfd.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    """A user error: exit code 2 and exactly one line on stderr (no traceback) naming each of `fragments`."""
    lines = err.strip("\n").split("\n")
    assert code == 2, (code, err[-2000:])
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
