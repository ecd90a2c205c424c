"""The caching pre-pass: VAE latent distributions and text embeddings, computed once per run.

After it, training needs only the UNet (and the text encoder when it trains too). Latents are
kept as the VAE's Gaussian (mean, std) so each step still draws a fresh latent sample, as
uncached training does. Everything cached lives on the CPU in float32; steps move their batch.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from actors.train.examples import TrainingExample


@dataclass
class LatentCache:
    latent_mean: torch.Tensor  # (N, 4, r/8, r/8), one per unique image
    latent_std: torch.Tensor
    image_index: torch.Tensor  # (num_examples,) example → row of latent_mean
    input_ids: torch.Tensor  # (C, 77) token ids, one per unique caption
    text_embeddings: torch.Tensor | None  # (C, 77, D); None when the text encoder trains
    caption_index: torch.Tensor  # (num_examples,) example → row of input_ids
    scaling_factor: float

    def __len__(self) -> int:
        return int(self.image_index.numel())

    def latents(self, indices: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A scaled latent sample for each example index (drawn with `generator`)."""
        rows = self.image_index[indices]
        mean, std = self.latent_mean[rows], self.latent_std[rows]
        return (mean + std * torch.randn(mean.shape, generator=generator)) * self.scaling_factor


def image_batch(images: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 HxWx3 images → float (B, 3, H, W) in [-1, 1]."""
    stacked = torch.from_numpy(np.stack([np.asarray(im, dtype=np.uint8) for im in images]))
    return stacked.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tokenize(tokenizer, captions: Sequence[str]) -> torch.Tensor:
    return tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids


@torch.no_grad()
def build_cache(examples: Sequence[TrainingExample], vae, text_encoder, tokenizer, *, device: torch.device,
                dtype: torch.dtype, batch_size: int, cache_text: bool) -> LatentCache:
    """Encode every unique image with the VAE and every unique caption with the text encoder.

    `vae` and `text_encoder` must already be on `device` in `dtype`; duplicates (e.g. from MST
    balancing) are encoded once.
    """
    image_rows: dict[str, int] = {}
    caption_rows: dict[str, int] = {}
    unique_images: list[np.ndarray] = []
    unique_captions: list[str] = []
    image_index, caption_index = [], []
    for example in examples:
        if example.id not in image_rows:
            image_rows[example.id] = len(unique_images)
            unique_images.append(example.image)
        if example.caption not in caption_rows:
            caption_rows[example.caption] = len(unique_captions)
            unique_captions.append(example.caption)
        image_index.append(image_rows[example.id])
        caption_index.append(caption_rows[example.caption])

    means, stds = [], []
    for start in range(0, len(unique_images), batch_size):
        pixels = image_batch(unique_images[start : start + batch_size]).to(device=device, dtype=dtype)
        dist = vae.encode(pixels).latent_dist
        means.append(dist.mean.float().cpu())
        stds.append(dist.std.float().cpu())

    input_ids = tokenize(tokenizer, unique_captions)
    embeddings = None
    if cache_text:
        chunks = []
        for start in range(0, len(unique_captions), batch_size):
            ids = input_ids[start : start + batch_size].to(device)
            chunks.append(text_encoder(ids)[0].float().cpu())
        embeddings = torch.cat(chunks)
    return LatentCache(
        latent_mean=torch.cat(means), latent_std=torch.cat(stds),
        image_index=torch.tensor(image_index, dtype=torch.long), input_ids=input_ids, text_embeddings=embeddings,
        caption_index=torch.tensor(caption_index, dtype=torch.long),
        scaling_factor=float(vae.config.scaling_factor),
    )
