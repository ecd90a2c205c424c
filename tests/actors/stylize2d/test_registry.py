"""The 2D engine registry: names from the classes, precise errors, light imports."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from actors.config import PipelineConfig
from actors.stylize2d.offline import OfflineStylizer
from actors.stylize2d.protocol import Stylizer
from actors.stylize2d.registry import STYLIZERS


def test_registered_engines_are_offline_then_diffusers():
    assert STYLIZERS.names == ("offline", "diffusers") and STYLIZERS.default == "offline"
    assert all(STYLIZERS[name].name == name for name in STYLIZERS)


def test_unknown_engine_names_the_known_ones():
    with pytest.raises(ValueError) as error:
        STYLIZERS.engine_class("comfy")
    message = str(error.value)
    assert "'comfy'" in message and "offline" in message and "diffusers" in message


def test_offline_engine_satisfies_the_protocol():
    engine = PipelineConfig().create(STYLIZERS, "offline")
    assert isinstance(engine, Stylizer) and isinstance(engine, OfflineStylizer)
    assert engine.styles == ("anime", "cartoon", "realistic", "sketch")


def test_an_unconfigured_engine_says_what_it_needs():
    problem = PipelineConfig().engine_problem(STYLIZERS, "diffusers")
    assert "--base-model" in problem and "AVATAR_BASE_MODEL" in problem
    assert PipelineConfig().engine_problem(STYLIZERS, "offline") is None


def test_creating_the_offline_engine_imports_no_torch_or_diffusers():
    code = (
        "import sys\n"
        "from actors.config import PipelineConfig\n"
        "from actors.stylize2d.registry import STYLIZERS\n"
        "PipelineConfig().create(STYLIZERS, 'offline')\n"
        "heavy = [m for m in ('torch', 'diffusers', 'mediapipe') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == ""
