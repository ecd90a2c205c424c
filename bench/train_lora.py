"""Benchmark: the LoRA trainer's own training step vs a bare diffusers + peft loop, same run, same work.

On CUDA it builds the Stable Diffusion 1.5 architecture from its config with random weights (time and
memory do not depend on weight values): UNet (320, 640, 1280, 1280), 2 layers per block, 8 heads, text
width 768; SD's VAE; the CLIP ViT-L/14 text tower. Each case trains a rank-16 LoRA at 512², batch 1, on
cached latents and text embeddings:

- `default`:  VAE + text encoder stay on the GPU, no gradient checkpointing;
- `low_vram`: only the UNet stays on the GPU, gradient checkpointing on;
both with 8-bit AdamW when bitsandbytes is installed (else torch AdamW, in both paths alike).

`job` runs `LoraTrainer.prepare` + `LoraTrainer.train_step` (what `jobs.train_lora` runs); `bare` is a
minimal loop written straight against diffusers and peft doing the same work. Reported: s/step (mean over
the timed steps after warm-up) and peak GPU memory (`torch.cuda.max_memory_allocated`) of the caching
pre-pass and of training. Targets: `low_vram` peak ≤ 3.5 GiB (a 4 GB card); job s/step within 15% of
bare. `--tiny --device cpu` runs the same code with toy-sized models (a smoke test of the benchmark; its
numbers mean nothing).

    python -m bench.train_lora                         # CUDA: SD 1.5 architecture, fp16, 512 px
    python -m bench.train_lora --tiny --device cpu     # CPU smoke run
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import RESULTS_DIR, print_table, write_json

LOW_VRAM_TARGET_GIB = 3.5
SPEED_TOLERANCE = 0.15
COLUMNS = ["mode", "path", "device", "gpu", "dtype", "optimizer", "s_per_step", "peak_cache_gib", "peak_train_gib",
           "peak_gib", "job_vs_bare"]
CAPTIONS = ("indianface, photo of a young woman, smiling, brown skin",
            "indianface, photo of an old man, neutral expression")


# ------------------------------------------------------------------------------------------ models
def build_parts(tiny: bool, device: str):
    """SD 1.5-architecture parts with random weights (or toy-sized ones), returned on the CPU."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from actors.train.models import ModelParts
    from tests.tiny_sd import COMMON_WORDS, write_clip_tokenizer

    folder = Path(tempfile.mkdtemp(prefix="bench_train_tok_"))
    tokenizer = CLIPTokenizer.from_pretrained(write_clip_tokenizer(folder, [*COMMON_WORDS, "indianface"]))
    if tiny:
        unet_config = dict(block_out_channels=(4, 8), layers_per_block=1, sample_size=16, cross_attention_dim=32,
                           down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                           up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), norm_num_groups=2)
        vae_config = dict(block_out_channels=(4, 8), down_block_types=("DownEncoderBlock2D",) * 2,
                          up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=2)
        text_config = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4)
    else:
        unet_config = dict(  # SD 1.5
            sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768,
            attention_head_dim=8,
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        )
        vae_config = dict(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                          up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4,
                          sample_size=512)
        text_config = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           hidden_act="quick_gelu", projection_dim=768)  # CLIP ViT-L/14 text tower
    # Random init is much faster on the GPU; the models then start on the CPU, as if loaded from disk.
    with torch.device(device):
        unet = UNet2DConditionModel(in_channels=4, out_channels=4, **unet_config)
        vae = AutoencoderKL(in_channels=3, out_channels=3, **vae_config)
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=max(len(tokenizer), 1000), max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **text_config))
    noise_scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                    num_train_timesteps=1000)
    return ModelParts(unet=unet.to("cpu"), vae=vae.to("cpu"), text_encoder=text_encoder.to("cpu"),
                      tokenizer=tokenizer, noise_scheduler=noise_scheduler,
                      sample_scheduler=DDIMScheduler.from_config(noise_scheduler.config))


def make_examples(resolution: int, count: int = 4):
    from actors.train.examples import TrainingExample

    rng = np.random.default_rng(0)
    return [TrainingExample(id=f"bench{i}", image=rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8),
                            caption=CAPTIONS[i % len(CAPTIONS)]) for i in range(count)]


# ------------------------------------------------------------------------------------------- paths
def run_job(parts, examples, *, low_vram: bool, args) -> dict:
    """The trainer's own prepare + train_step."""
    from actors.train.config import TrainConfig
    from actors.train.trainer import LoraTrainer

    config = TrainConfig(base_model="bench-random-sd15", output_dir=tempfile.mkdtemp(prefix="bench_train_"),
                         rank=args.rank, steps=args.warmup + args.steps, batch_size=1, resolution=args.resolution,
                         device=args.device, mixed_precision=args.precision, low_vram=low_vram)
    trainer = LoraTrainer(config, parts=parts)
    with _peak(args.device) as cache_peak:
        trainer.prepare(examples)
    with _peak(args.device) as train_peak:
        seconds = _time_steps(trainer.train_step, args)
    return {"s_per_step": seconds, "peak_cache_gib": cache_peak(), "peak_train_gib": train_peak(),
            "dtype": str(trainer.dtype).removeprefix("torch."), "optimizer": type(trainer.optimizer).__name__}


def run_bare(parts, examples, *, low_vram: bool, args) -> dict:
    """The same work written straight against diffusers and peft."""
    import torch
    import torch.nn.functional as F
    from peft import LoraConfig

    from actors.train.device import training_dtype
    from actors.train.latent_cache import image_batch, tokenize
    from actors.train.optim import make_optimizer

    device = torch.device(args.device)
    dtype = training_dtype(device, args.precision)
    with _peak(args.device) as cache_peak:
        for module in (parts.unet, parts.vae, parts.text_encoder):
            module.requires_grad_(False)
        parts.unet.add_adapter(LoraConfig(r=args.rank, lora_alpha=args.rank, init_lora_weights="gaussian",
                                          target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
        parts.vae.to(device, dtype)
        parts.text_encoder.to(device, dtype)
        with torch.no_grad():
            pixels = image_batch([e.image for e in examples]).to(device, dtype)
            latents = torch.cat([parts.vae.encode(p[None]).latent_dist.sample() for p in pixels]).float()
            latents = latents * parts.vae.config.scaling_factor
            embeddings = parts.text_encoder(tokenize(parts.tokenizer, [e.caption for e in examples]).to(device))[0]
        if low_vram:
            parts.vae.to("cpu")
            parts.text_encoder.to("cpu")
            if device.type == "cuda":
                torch.cuda.empty_cache()
        parts.unet.to(device, dtype)
        params = [p for p in parts.unet.parameters() if p.requires_grad]
        for param in params:
            param.data = param.data.float()
        if low_vram:
            parts.unet.enable_gradient_checkpointing()
        optimizer = make_optimizer(params, 1e-4, device, use_8bit=True)
        scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    autocast = (torch.autocast("cuda", dtype=dtype) if device.type == "cuda" and dtype != torch.float32
                else contextlib.nullcontext())
    scheduler = parts.noise_scheduler

    def step(index: int) -> None:
        i = index % len(examples)
        x0, hidden = latents[i : i + 1], embeddings[i : i + 1]
        noise = torch.randn_like(x0)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (1,), device=device)
        with autocast:
            prediction = parts.unet(scheduler.add_noise(x0, noise, t), t, hidden).sample
        loss = F.mse_loss(prediction.float(), noise)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with _peak(args.device) as train_peak:
        seconds = _time_steps(step, args)
    return {"s_per_step": seconds, "peak_cache_gib": cache_peak(), "peak_train_gib": train_peak(),
            "dtype": str(dtype).removeprefix("torch."), "optimizer": type(optimizer).__name__}


def _time_steps(step, args) -> float:
    for index in range(args.warmup):
        step(index)
    _sync(args.device)
    times = []
    for index in range(args.warmup, args.warmup + args.steps):
        began = time.perf_counter()
        step(index)
        _sync(args.device)
        times.append(time.perf_counter() - began)
    return statistics.mean(times)


@contextlib.contextmanager
def _peak(device: str):
    """Yields a callable giving the peak GPU GiB allocated inside the block (None on CPU)."""
    import torch

    result: list[float | None] = [None]
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    yield lambda: result[0]
    if cuda:
        torch.cuda.synchronize()
        result[0] = torch.cuda.max_memory_allocated() / 2**30


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _release() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# -------------------------------------------------------------------------------------------- main
def run(args) -> list[dict]:
    import torch

    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None
    examples = make_examples(args.resolution)
    rows = []
    for mode in ("default", "low_vram"):
        results = {}
        for path, runner in (("job", run_job), ("bare", run_bare)):
            parts = build_parts(args.tiny, args.device)
            results[path] = runner(parts, examples, low_vram=mode == "low_vram", args=args)
            del parts
            _release()
        for path, result in results.items():
            peaks = [p for p in (result["peak_cache_gib"], result["peak_train_gib"]) if p is not None]
            rows.append({"mode": mode, "path": path, "device": args.device, "gpu": gpu, **result,
                         "peak_gib": max(peaks) if peaks else None,
                         "job_vs_bare": results["job"]["s_per_step"] / results["bare"]["s_per_step"]})
    return rows


def verdicts(rows: list[dict]) -> dict:
    job = {r["mode"]: r for r in rows if r["path"] == "job"}
    low_peak = job["low_vram"]["peak_gib"]
    return {
        "low_vram_peak_gib": low_peak,
        "low_vram_peak_ok": None if low_peak is None else low_peak <= LOW_VRAM_TARGET_GIB,
        "job_vs_bare": {mode: r["job_vs_bare"] for mode, r in job.items()},
        "speed_ok": all(r["job_vs_bare"] <= 1 + SPEED_TOLERANCE for r in job.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train_lora", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="toy-sized models (smoke run of the benchmark)")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --tiny)")
    parser.add_argument("--precision", default="fp16", choices=("fp16", "bf16", "no"), help="CUDA mixed precision")
    parser.add_argument("--resolution", type=int, default=None, help="default 512 (32 with --tiny)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    parser.add_argument("--json", type=Path, default=None, help="default: bench/results/train_lora[_tiny].json")
    args = parser.parse_args(argv)
    args.resolution = args.resolution or (32 if args.tiny else 512)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench.train_lora: no CUDA GPU visible (torch.cuda.is_available() is False), so the SD 1.5 "
              "benchmark cannot run here. Run it on an NVIDIA machine, or `--tiny --device cpu` for a smoke run.")
        return 0
    if not args.tiny and not args.device.startswith("cuda"):
        raise SystemExit("The SD 1.5-size benchmark needs CUDA; use --tiny with --device cpu.")

    rows = run(args)
    title = (f"LoRA training step, rank {args.rank}, {args.resolution}², batch 1 "
             f"({'toy models' if args.tiny else 'SD 1.5 architecture, random weights'})")
    print_table(title, rows, COLUMNS)
    summary = verdicts(rows)
    print(f"\nlow_vram peak {summary['low_vram_peak_gib']} GiB (target ≤ {LOW_VRAM_TARGET_GIB}): "
          f"{summary['low_vram_peak_ok']}; job/bare s/step {summary['job_vs_bare']} "
          f"(target ≤ {1 + SPEED_TOLERANCE:.2f}): {summary['speed_ok']}")
    default = RESULTS_DIR / ("train_lora_tiny.json" if args.tiny else "train_lora.json")
    write_json(args.json or default, {
        "model": "toy models" if args.tiny else "SD 1.5 architecture, random weights", "rank": args.rank,
        "resolution": args.resolution, "batch_size": 1, "warmup_steps": args.warmup, "timed_steps": args.steps,
        "targets": {"low_vram_peak_gib": LOW_VRAM_TARGET_GIB, "job_vs_bare_max": 1 + SPEED_TOLERANCE},
        "verdicts": summary, "rows": rows,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
