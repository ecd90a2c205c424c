"""Engine registry: names, precise errors, lazy imports."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from actors.stylize2d.protocol import Stylizer
from actors.stylize2d.registry import ENGINES, available_engines, create_engine


def test_available_engines_lists_offline_and_diffusers():
    assert available_engines() == ("offline", "diffusers")
    assert set(ENGINES) == set(available_engines())


def test_unknown_engine_names_the_known_ones():
    with pytest.raises(ValueError) as error:
        create_engine("comfy")
    message = str(error.value)
    assert "'comfy'" in message
    assert "offline" in message and "diffusers" in message


def test_offline_engine_satisfies_the_protocol():
    engine = create_engine("offline")
    assert isinstance(engine, Stylizer)
    assert engine.name == "offline"
    assert engine.styles == ("anime", "cartoon", "realistic", "sketch")


def test_offline_engine_rejects_options_it_does_not_take():
    with pytest.raises(ValueError, match="base_model"):
        create_engine("offline", base_model="/models/sd15")


def test_creating_the_offline_engine_imports_no_torch_or_diffusers():
    code = (
        "import sys\n"
        "from actors.stylize2d.registry import create_engine\n"
        "create_engine('offline')\n"
        "heavy = [m for m in ('torch', 'diffusers', 'actors.stylize2d.diffusers_engine') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == ""
