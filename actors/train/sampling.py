"""Sample images from fixed prompts during training, to watch the LoRA take hold."""
from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import torch

from actors.train.models import ModelParts


@torch.no_grad()
def write_samples(parts: ModelParts, prompts: Sequence[str], folder: str | Path, *, device: torch.device,
                  dtype: torch.dtype, resolution: int, steps: int, seed: int) -> list[Path]:
    """Render each prompt once (seeded per prompt, same seeds every time) into `folder`/<i>.png.

    The VAE and text encoder are moved to `device` for the call and back to where they were.
    """
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    homes = {name: next(getattr(parts, name).parameters()).device for name in ("vae", "text_encoder")}
    parts.vae.to(device)
    parts.text_encoder.to(device)
    scheduler = parts.sample_scheduler or DDIMScheduler.from_config(parts.noise_scheduler.config)
    pipe = StableDiffusionPipeline(vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer,
                                   unet=parts.unet, scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    autocast = (torch.autocast(device_type="cuda", dtype=dtype) if device.type == "cuda" and dtype != torch.float32
                else contextlib.nullcontext())
    paths = []
    try:
        for i, prompt in enumerate(prompts):
            generator = torch.Generator("cpu").manual_seed(seed + i)
            with autocast:
                image = pipe(prompt, num_inference_steps=steps, height=resolution, width=resolution,
                             generator=generator, output_type="pil").images[0]
            path = folder / f"{i}.png"
            image.save(path)
            paths.append(path)
    finally:
        parts.vae.to(homes["vae"])
        parts.text_encoder.to(homes["text_encoder"])
    return paths
