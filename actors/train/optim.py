"""Optimizer and learning-rate schedule for the LoRA parameters."""
from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch

BETAS = (0.9, 0.999)
WEIGHT_DECAY = 1e-2
EPS = 1e-8


def make_optimizer(params: Iterable[torch.nn.Parameter], learning_rate: float, device: torch.device,
                   use_8bit: bool) -> torch.optim.Optimizer:
    """bitsandbytes AdamW8bit on CUDA when asked for and installed; torch AdamW otherwise (with a
    warning when 8-bit was asked for on CUDA but bitsandbytes is missing)."""
    params = list(params)
    if use_8bit and device.type == "cuda":
        try:
            import bitsandbytes
        except ImportError:
            warnings.warn("bitsandbytes is not installed: using torch AdamW instead of 8-bit AdamW "
                          "(install the `gpu` extra, bitsandbytes==0.50.2).", RuntimeWarning, stacklevel=2)
        else:
            return bitsandbytes.optim.AdamW8bit(params, lr=learning_rate, betas=BETAS, weight_decay=WEIGHT_DECAY,
                                                eps=EPS)
    return torch.optim.AdamW(params, lr=learning_rate, betas=BETAS, weight_decay=WEIGHT_DECAY, eps=EPS)


class WarmupFactor:
    """LR multiplier: linear warm-up over `warmup_steps`, then constant."""

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps = warmup_steps

    def __call__(self, step: int) -> float:
        if self.warmup_steps <= 0:
            return 1.0
        return min(1.0, (step + 1) / (self.warmup_steps + 1))


def make_lr_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupFactor(warmup_steps))
