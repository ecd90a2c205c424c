"""The Stable Diffusion 1.x parts a LoRA run needs, loaded from a local diffusers folder."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


@dataclass
class ModelParts:
    """UNet, VAE, CLIP text encoder + tokenizer, the DDPM training scheduler and a sampling scheduler."""

    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    noise_scheduler: Any
    sample_scheduler: Any = None

    @classmethod
    def load(cls, base_model: str | Path) -> "ModelParts":
        """Load from a diffusers folder (`save_pretrained` layout). Local files only: nothing is downloaded."""
        from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        check_base_model(base_model)
        root = str(base_model)
        noise_scheduler = DDPMScheduler.from_pretrained(root, subfolder="scheduler", local_files_only=True)
        return cls(
            unet=UNet2DConditionModel.from_pretrained(root, subfolder="unet", local_files_only=True),
            vae=AutoencoderKL.from_pretrained(root, subfolder="vae", local_files_only=True),
            text_encoder=CLIPTextModel.from_pretrained(root, subfolder="text_encoder", local_files_only=True),
            tokenizer=CLIPTokenizer.from_pretrained(root, subfolder="tokenizer", local_files_only=True),
            noise_scheduler=noise_scheduler,
            sample_scheduler=DDIMScheduler.from_config(noise_scheduler.config),
        )


def check_base_model(base_model: str | Path) -> None:
    """Raise ValueError unless `base_model` is a diffusers SD folder with every part we load."""
    root = Path(base_model)
    if not root.is_dir():
        raise ValueError(f"Base model {str(root)!r} is not a folder: pass a diffusers Stable Diffusion 1.x folder "
                         "(the layout `save_pretrained` writes, with model_index.json).")
    if not (root / "model_index.json").is_file():
        raise ValueError(f"Base model folder {str(root)!r} has no model_index.json: not a diffusers pipeline folder.")
    missing = [name for name in SUBFOLDERS if not (root / name).is_dir()]
    if missing:
        raise ValueError(f"Base model folder {str(root)!r} lacks {', '.join(missing)}.")
