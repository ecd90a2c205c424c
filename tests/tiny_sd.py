"""Tiny Stable Diffusion 1.5-family pipelines built in code, for tests (no download).

`build_tiny_sd(path)` writes a complete diffusers folder (model_index.json, unet/, vae/, text_encoder/,
tokenizer/, scheduler/) whose components have the SD 1.5 layout at toy sizes, like diffusers' own tests:
UNet `block_out_channels=(4, 8)`, a 2-block VAE, a 2-layer 32-dim CLIP text encoder, and a CLIP BPE
tokenizer whose vocab.json / merges.txt are written here (prompt words and the trigger word `indianface`
are whole tokens). It runs at `TINY_RESOLUTION` (32 px). With `with_ip_adapter=True` it also writes an
IP-Adapter in the h94 layout: `<path>/ip_adapter/ip-adapter_tiny.safetensors` (keys `image_proj.*` and
`ip_adapter.*`, as `load_ip_adapter` reads them) and `<path>/ip_adapter/image_encoder/` (a tiny
`CLIPVisionModelWithProjection`); `tiny_ip_adapter_paths(path)` returns both.

`make_tiny_lora(pipe_or_unet, path, seed)` writes a random, non-zero UNet LoRA in diffusers format.
`write_clip_tokenizer(folder, words)` is reusable on its own (benchmarks pair it with full-size models).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

# Sizes shared by the components so that they fit together.
TEXT_DIM = 32  # CLIP text hidden size == UNet cross_attention_dim
IMAGE_EMBED_DIM = 32  # CLIP vision projection size (IP-Adapter input)
TINY_RESOLUTION = 32  # pixels; the VAE downsamples by 2, so the UNet sees 16x16 latents
IP_ADAPTER_WEIGHT_NAME = "ip-adapter_tiny.safetensors"

BOS, EOS = "<|startoftext|>", "<|endoftext|>"

# Words a caption or prompt in this project commonly uses; anything else falls back to characters.
COMMON_WORDS = (
    "a an and of in on with the photo portrait face person man woman young old child smiling neutral "
    "looking at camera close up studio light background skin hair eyes glasses beard"
).split()


def prompt_words() -> list[str]:
    """The words of every style prompt template, so they tokenize to whole-word tokens."""
    from actors.stylize2d import prompts

    text = " ".join(prompts.all_template_text())
    return sorted(set(re.findall(r"[a-z]+", text.lower())))


def build_tiny_sd(path: Path, *, with_ip_adapter: bool = False, seed: int = 0) -> Path:
    """Write a tiny SD 1.5-family pipeline folder to `path` (weights drawn from `seed`) and return `path`."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = path / "tokenizer"
    write_clip_tokenizer(tokenizer_dir, [*prompt_words(), *COMMON_WORDS])
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)

    with _seeded(seed):
        unet = UNet2DConditionModel(
            block_out_channels=(4, 8),
            layers_per_block=1,
            sample_size=TINY_RESOLUTION // 2,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=TEXT_DIM,
            norm_num_groups=2,
        )
        vae = AutoencoderKL(
            block_out_channels=(4, 8),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=4,
            norm_num_groups=2,
            sample_size=TINY_RESOLUTION,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                hidden_size=TEXT_DIM,
                intermediate_size=37,
                layer_norm_eps=1e-05,
                num_attention_heads=4,
                num_hidden_layers=2,
                vocab_size=len(tokenizer),
                max_position_embeddings=77,
            )
        )
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
        steps_offset=1,
    )
    # Saved as a text-to-image pipeline, like real SD 1.5 folders; img2img and training load the same files.
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path, safe_serialization=True)
    if with_ip_adapter:
        build_tiny_ip_adapter(path / "ip_adapter", unet, seed=seed + 1)
    return path


def tiny_ip_adapter_paths(pipeline_path: Path) -> tuple[Path, Path]:
    """(IP-Adapter .safetensors file, image encoder folder) written by `build_tiny_sd(with_ip_adapter=True)`."""
    folder = Path(pipeline_path) / "ip_adapter"
    return folder / IP_ADAPTER_WEIGHT_NAME, folder / "image_encoder"


def build_tiny_ip_adapter(folder: Path, unet, *, seed: int = 1) -> Path:
    """Write a random IP-Adapter for `unet` plus a tiny CLIP image encoder; return the weights file."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _seeded(seed):
        encoder = CLIPVisionModelWithProjection(
            CLIPVisionConfig(
                hidden_size=32,
                projection_dim=IMAGE_EMBED_DIM,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=37,
                image_size=32,
                patch_size=4,
                num_channels=3,
            )
        )
    encoder.save_pretrained(folder / "image_encoder", safe_serialization=True)

    generator = torch.Generator().manual_seed(seed)
    cross_dim = unet.config.cross_attention_dim
    tensors = {
        # ImageProjection: 4 image tokens of the text width from one CLIP image embedding.
        "image_proj.proj.weight": _random((4 * cross_dim, IMAGE_EMBED_DIM), generator, 0.2),
        "image_proj.proj.bias": _random((4 * cross_dim,), generator, 0.1),
        "image_proj.norm.weight": torch.ones(cross_dim),
        "image_proj.norm.bias": torch.zeros(cross_dim),
    }
    # One to_k_ip / to_v_ip pair per cross-attention processor, numbered like the original IP-Adapter
    # (processors in `unet.attn_processors` order, self- and cross-attention alternating, cross ones odd).
    for key_id, name in enumerate(unet.attn_processors):
        if name.endswith("attn1.processor"):
            continue
        hidden = _attention_width(unet, name)
        tensors[f"ip_adapter.{key_id}.to_k_ip.weight"] = _random((hidden, cross_dim), generator, 0.2)
        tensors[f"ip_adapter.{key_id}.to_v_ip.weight"] = _random((hidden, cross_dim), generator, 0.2)
    weights = folder / IP_ADAPTER_WEIGHT_NAME
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(weights))
    return weights


def make_tiny_lora(pipe_or_unet, path: Path, seed: int, *, rank: int = 4, scale: float = 0.3) -> Path:
    """Save a random non-zero LoRA on the UNet attention projections in diffusers format.

    `path` is the `.safetensors` file to write (or a folder: `pytorch_lora_weights.safetensors` inside).
    The UNet passed in is not modified. Returns the file written.
    """
    import copy

    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    unet = getattr(pipe_or_unet, "unet", pipe_or_unet)
    unet = copy.deepcopy(unet).to("cpu", torch.float32)
    unet.add_adapter(
        LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=True)
    )
    generator = torch.Generator().manual_seed(seed)
    state = {key: _random(tuple(value.shape), generator, scale) for key, value in get_peft_model_state_dict(unet).items()}
    path = Path(path)
    folder, weight_name = (path.parent, path.name) if path.suffix == ".safetensors" else (path, None)
    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(
        folder, unet_lora_layers=convert_state_dict_to_diffusers(state), weight_name=weight_name, safe_serialization=True
    )
    return folder / (weight_name or "pytorch_lora_weights.safetensors")


def write_clip_tokenizer(folder: Path, words: Iterable[str]) -> Path:
    """Write vocab.json + merges.txt (+ tokenizer_config.json) for a CLIP BPE tokenizer knowing `words`.

    The merges are learned from `words` with the `tokenizers` BPE trainer until each word is one token;
    the vocabulary also holds every byte-level symbol, alone and word-final, so any other text tokenizes
    (as characters). Special tokens come last.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    learner = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    learner.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=1_000_000,
        min_frequency=1,
        initial_alphabet=alphabet,
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    learner.train_from_iterator(sorted({w.lower() for w in words if w.isascii() and w.isalpha()}), trainer)
    learned = json.loads(learner.to_str())["model"]
    vocab: dict[str, int] = {}
    for token in [*sorted(alphabet), *(s + "</w>" for s in sorted(alphabet)), *learned["vocab"]]:
        vocab.setdefault(token, len(vocab))
    vocab[BOS] = len(vocab)
    vocab[EOS] = len(vocab)
    merges = [" ".join(pair) if isinstance(pair, list) else pair for pair in learned["merges"]]
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": EOS,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _attention_width(unet, processor_name: str) -> int:
    channels = unet.config.block_out_channels
    if processor_name.startswith("mid_block"):
        return channels[-1]
    block_id = int(processor_name.split(".")[1])
    if processor_name.startswith("up_blocks"):
        return list(reversed(channels))[block_id]
    return channels[block_id]


def _random(shape: tuple[int, ...], generator, scale: float):
    import torch

    return torch.randn(shape, generator=generator) * scale


class _seeded:
    """Seed torch's default generator for model construction, restoring its state afterwards."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self) -> None:
        import torch

        self._state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc) -> None:
        import torch

        torch.random.set_rng_state(self._state)
