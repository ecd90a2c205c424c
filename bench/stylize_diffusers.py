"""Benchmark: the diffusers engine's actor path vs the bare diffusers pipeline, same inputs, same run.

On CUDA it builds the Stable Diffusion 1.5 architecture from its config with random weights (time and memory
do not depend on weight values), saves it as a diffusers folder, loads it through `DiffusersStylizer`, and
times `stylize()` over `batch_size` face inputs against one bare `pipe(...)` call on the same prompts, images
and seeds. Target: the engine keeps >= 85% of the bare pipeline's images/s. `--tiny` runs the same code on CPU
with the tiny test pipeline (a smoke test of the benchmark itself; its numbers mean nothing).

    python -m bench.stylize_diffusers [--json bench/results/stylize_diffusers.json]   # CUDA: SD 1.5 arch, fp16,
                                                                                     # 512 px, 25 steps, batch 8
    python -m bench.stylize_diffusers --tiny          # CPU smoke run
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from bench.common import RESULTS_DIR, package_photos, print_table, write_json

TARGET_RATIO = 0.85
COLUMNS = ["path", "device", "gpu", "dtype", "batch_size", "steps", "denoising_steps", "size",
           "seconds_per_batch", "images_per_s", "peak_gpu_gib", "engine_vs_bare"]


def build_random_sd15(path: Path, *, device: str = "cuda") -> Path:
    """Write an SD 1.5-architecture img2img folder with random fp16 weights (built on `device` for speed)."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from tests.tiny_sd import COMMON_WORDS, prompt_words, write_clip_tokenizer

    path = Path(path)
    write_clip_tokenizer(path / "tokenizer", [*prompt_words(), *COMMON_WORDS])
    tokenizer = CLIPTokenizer.from_pretrained(path / "tokenizer")
    with torch.device(device):
        unet = UNet2DConditionModel(  # SD 1.5: (320, 640, 1280, 1280), 2 layers/block, 8 heads, text width 768
            sample_size=64,
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=768,
            attention_head_dim=8,
        ).half()
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            latent_channels=4,
            sample_size=512,
        ).half()
        text_encoder = CLIPTextModel(  # ViT-L/14 text tower
            CLIPTextConfig(
                vocab_size=49408,
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                max_position_embeddings=77,
                hidden_act="quick_gelu",
                projection_dim=768,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        ).half()
    scheduler = PNDMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
        set_alpha_to_one=False, steps_offset=1,
    )
    pipe = StableDiffusionImg2ImgPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, image_encoder=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def sample_faces(count: int, size: int = 512) -> list[SimpleNamespace]:
    """`AlignedFace`-like inputs (crop + MST; all the engine reads) from the package photos, tones cycling 3..10."""
    import cv2

    photos = list(package_photos().values())
    faces = []
    for index in range(count):
        photo = photos[index % len(photos)]
        side = min(photo.shape[:2])
        crop = cv2.resize(photo[:side, :side], (size, size), interpolation=cv2.INTER_AREA)
        faces.append(SimpleNamespace(crop=crop, mst=3 + index % 8))
    return faces


def run(
    batch_size: int = 8,
    steps: int = 25,
    size: int = 512,
    *,
    strength: float = 1.0,
    repeats: int = 3,
    tiny: bool = False,
    style: str = "realistic",
) -> list[dict]:
    """Time engine vs bare pipeline; return one row per path (images/s, peak GPU memory, ratio)."""
    import torch

    from actors.request import AvatarRequest
    from actors.stylize2d import prompts
    from actors.stylize2d.diffusers_engine import DiffusersOptions, DiffusersStylizer

    if not tiny and not torch.cuda.is_available():
        raise SystemExit("No CUDA device: the SD 1.5 benchmark needs one (use --tiny for a CPU smoke run).")
    device = "cpu" if tiny else "cuda"
    request = AvatarRequest(engine="diffusers", styles=(style,), size=size, strength=strength)
    faces = sample_faces(batch_size)
    seeds = [request.seed + i for i in range(batch_size)]

    with tempfile.TemporaryDirectory(prefix="bench_sd_") as folder:
        if tiny:
            from tests.tiny_sd import TINY_RESOLUTION, build_tiny_sd

            model = build_tiny_sd(Path(folder) / "tiny")
            working = TINY_RESOLUTION
        else:
            model = build_random_sd15(Path(folder) / "sd15", device=device)
            working = size
        engine = DiffusersStylizer(
            DiffusersOptions(base_model=str(model), batch_size=batch_size, steps=steps, resolution=working if tiny else None),
            device=device,
        ).load()
        pipe = engine.pipeline

        def engine_path():
            return engine.stylize(faces, style, request, seeds)

        def bare_path():
            from PIL import Image

            pairs = [prompts.build_prompt(style, face.mst) for face in faces]
            images = [Image.fromarray(face.crop).resize((working, working)) for face in faces]
            generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
            with torch.inference_mode():
                return pipe(
                    prompt=[p.prompt for p in pairs], negative_prompt=[p.negative_prompt for p in pairs],
                    image=images, strength=strength, num_inference_steps=steps,
                    guidance_scale=engine.guidance_scale, generator=generators,
                ).images

        paths = {"engine": engine_path, "bare": bare_path}
        times: dict[str, list[float]] = {name: [] for name in paths}
        peaks: dict[str, float] = {name: 0.0 for name in paths}
        for fn in paths.values():  # warm-up (kernels, allocator)
            fn()
        for _ in range(repeats):  # interleaved so drift hits both paths alike
            for name, fn in paths.items():
                if device == "cuda":
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                start = time.perf_counter()
                fn()
                if device == "cuda":
                    torch.cuda.synchronize()
                    peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated() / 2**30)
                times[name].append(time.perf_counter() - start)
        engine.close()

    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none (CPU)"
    rows = []
    for name in paths:
        seconds = statistics.median(times[name])
        rows.append({
            "path": name,
            "model": "tiny test pipeline" if tiny else "SD 1.5 architecture, random weights",
            "device": device,
            "gpu": gpu,
            "dtype": engine.dtype,
            "batch_size": batch_size,
            "steps": steps,
            "denoising_steps": int(steps * strength),
            "size": size,
            "seconds_per_batch": round(seconds, 4),
            "images_per_s": round(batch_size / seconds, 3),
            "peak_gpu_gib": round(peaks[name], 2) if device == "cuda" else None,
        })
    ratio = rows[0]["images_per_s"] / rows[1]["images_per_s"]
    for row in rows:
        row["engine_vs_bare"] = round(ratio, 3)
        row["target"] = TARGET_RATIO
        row["meets_target"] = ratio >= TARGET_RATIO
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--strength", type=float, default=1.0, help="img2img strength (1.0: every step denoises)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run with the tiny test pipeline")
    parser.add_argument("--json", type=Path, default=None, help="default: bench/results/stylize_diffusers[_tiny].json")
    args = parser.parse_args(argv)
    rows = run(args.batch_size, args.steps, args.size, strength=args.strength, repeats=args.repeats, tiny=args.tiny)
    print_table(f"diffusers engine vs bare pipeline ({rows[0]['model']})", rows, COLUMNS)
    ratio = rows[0]["engine_vs_bare"]
    print(f"engine / bare images/s: {ratio:.1%} (target >= {TARGET_RATIO:.0%}: {'met' if ratio >= TARGET_RATIO else 'NOT met'})")
    default = RESULTS_DIR / ("stylize_diffusers_tiny.json" if args.tiny else "stylize_diffusers.json")
    write_json(args.json or default, {"target_ratio": TARGET_RATIO, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
