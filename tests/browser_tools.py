"""What the real-browser tests need (Debian's chromium, node, playwright-core from `npm ci`), checked in one
place: a test module skips with the first missing piece named."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))


def missing_browser_tools(node_packages: tuple[str, ...] = ("playwright-core",)) -> str | None:
    """None when chromium, node and the `node_packages` are there, else what is missing and how to get it."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    for package in node_packages:
        if not (ROOT / "node_modules" / package).is_dir():
            return f"node_modules/{package} is missing (npm ci)"
    if shutil.which("node") is None:
        return "node is not on PATH"
    return None
