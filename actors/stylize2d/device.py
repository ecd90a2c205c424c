"""Device, dtype and low-VRAM choices for the diffusion engine, validated up front.

CUDA is used only when it is present (or asked for by name); otherwise the CPU. On a laptop with an Intel
iGPU beside the NVIDIA card, torch sees only the NVIDIA card (the iGPU is not a CUDA device), so
`cuda` / `cuda:0` is the NVIDIA card; with several NVIDIA cards pick one with
`CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=1 python -m jobs.generate ...` (PCI order makes the index
match `nvidia-smi`; under Ray, a `num_gpus=1` actor gets CUDA_VISIBLE_DEVICES set for it).
"""
from __future__ import annotations

import importlib.util
import re

LOW_VRAM_MODES = ("none", "vae_tiling", "model_offload", "sequential_offload")
OFFLOAD_MODES = ("model_offload", "sequential_offload")
DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
          "bfloat16": "bfloat16", "bf16": "bfloat16"}

_DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?)$")


def resolve_device(device: str | None) -> str:
    """`None` -> "cuda" when torch sees a CUDA device, else "cpu"; a named device is checked."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if not _DEVICE_PATTERN.match(device):
        raise ValueError(f"`device` must be 'cpu', 'cuda' or 'cuda:N', got {device!r}.")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"`device={device!r}` but torch sees no CUDA device (CPU build of torch, no NVIDIA driver, or "
                "CUDA_VISIBLE_DEVICES hides the card). Use device='cpu' or leave it unset."
            )
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"`device={device!r}` but torch sees {torch.cuda.device_count()} CUDA device(s); "
                "indices start at 0 and follow CUDA_VISIBLE_DEVICES."
            )
    return device


def resolve_dtype(dtype: str | None, device: str) -> str:
    """`None` -> "float16" on CUDA, "float32" on CPU; names like "fp16" are normalised. Returns the name."""
    if dtype is None:
        return "float16" if device.startswith("cuda") else "float32"
    name = DTYPES.get(str(dtype).lower())
    if name is None:
        raise ValueError(f"`dtype` must be one of {sorted(DTYPES)}, got {dtype!r}.")
    if name == "float16" and device == "cpu":
        raise ValueError("`dtype='float16'` needs a CUDA device: on CPU use 'float32' (default) or 'bfloat16'.")
    return name


def check_low_vram(mode: str, device: str) -> str:
    """Validate a low-VRAM mode for `device`: offloading needs CUDA and accelerate."""
    if mode not in LOW_VRAM_MODES:
        raise ValueError(f"`low_vram` must be one of {LOW_VRAM_MODES}, got {mode!r}.")
    if mode in OFFLOAD_MODES:
        if not device.startswith("cuda"):
            raise ValueError(
                f"`low_vram={mode!r}` offloads from a CUDA card to CPU memory; the device is {device!r}, where "
                "the whole pipeline already lives in CPU memory. Use low_vram='none' or 'vae_tiling' on CPU."
            )
        if importlib.util.find_spec("accelerate") is None:
            raise ValueError(f"`low_vram={mode!r}` needs the `accelerate` package (pip install accelerate).")
    return mode


def enable_low_vram(pipe, device: str, mode: str) -> None:
    """Install `mode` on a pipeline: CPU offload hooks (the pipeline must still be on the CPU) and, for every
    mode but "none", VAE tiling and slicing."""
    if mode == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "sequential_offload":
        pipe.enable_sequential_cpu_offload(device=device)
    if mode != "none":
        pipe.vae.enable_tiling()
        pipe.vae.enable_slicing()


def torch_dtype(name: str):
    """The torch dtype for a name returned by `resolve_dtype`."""
    import torch

    return getattr(torch, name)
