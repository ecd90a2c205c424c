"""Device and precision for the trainer, decided from the config and what CUDA can see.

Inside a Ray worker started with `num_gpus=1`, Ray sets CUDA_VISIBLE_DEVICES to the card it
assigned, so that card is always "cuda:0" in the worker, whatever its index on the host.
CUDA_VISIBLE_DEVICES only ever lists NVIDIA devices: on a laptop with an Intel iGPU and an NVIDIA
card, the iGPU is invisible to CUDA (and to Ray's GPU count), so "cuda:0" is the NVIDIA card.
"""
from __future__ import annotations

import os
from collections.abc import Callable

import torch

CudaCheck = Callable[[], bool]


def resolve_device(requested: str, cuda_available: CudaCheck | None = None) -> torch.device:
    """"auto" → cuda:0 when CUDA sees a device, else cpu; "cuda" / "cuda:N" → that device or a
    RuntimeError saying why none is visible; "cpu" → cpu. `cuda_available` defaults to
    `torch.cuda.is_available` (tests inject their own)."""
    check = cuda_available or torch.cuda.is_available
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "auto":
        return torch.device("cuda:0") if check() else torch.device("cpu")
    if requested == "cuda" or requested.startswith("cuda:"):
        if not check():
            raise RuntimeError(
                f"Device {requested!r} was requested but CUDA sees no device "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}, torch {torch.__version__}, "
                f"CUDA build: {torch.version.cuda is not None}). Only NVIDIA cards are CUDA devices: an Intel or "
                "AMD integrated GPU is never used. Install a CUDA build of torch, or pass --device cpu."
            )
        return torch.device("cuda:0" if requested == "cuda" else requested)
    raise ValueError(f"Unknown device {requested!r}: use auto, cpu, cuda or cuda:N.")


def training_dtype(device: torch.device, mixed_precision: str) -> torch.dtype:
    """dtype of the frozen weights and of autocast: fp32 on CPU and for "no"; on CUDA bf16 where the
    card supports it ("auto"), else fp16."""
    if device.type != "cuda" or mixed_precision == "no":
        return torch.float32
    if mixed_precision == "bf16":
        return torch.bfloat16
    if mixed_precision == "fp16":
        return torch.float16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
