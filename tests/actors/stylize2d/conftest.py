"""Fixtures for the stylize2d tests: a tiny SD pipeline folder (with IP-Adapter) and a LoRA, built once."""
from __future__ import annotations

import pytest

from tests.tiny_sd import build_tiny_sd, make_tiny_lora


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory):
    """Folder of a tiny SD 1.5-family pipeline plus `ip_adapter/` (weights file + image encoder)."""
    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd") / "pipeline", with_ip_adapter=True)


@pytest.fixture(scope="session")
def tiny_lora(tiny_sd, tmp_path_factory):
    """A random non-zero diffusers-format LoRA for the tiny UNet."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_sd / "unet")
    return make_tiny_lora(unet, tmp_path_factory.mktemp("tiny_lora") / "indianface.safetensors", seed=7)
