"""The CUDA code paths on tiny models: fp16 diffusion, low-VRAM offload, LoRA training, FLAME fitting.

Marked `gpu`: skipped on machines without a CUDA device (tests/conftest.py). Each test compares the
CUDA result with the CPU one or checks the CUDA-only behaviour (dtype, placement, 8-bit optimiser).
"""
from __future__ import annotations

import numpy as np
import pytest

from actors.request import AvatarRequest
from tests.tiny_sd import build_tiny_sd

pytestmark = pytest.mark.gpu
FAST = {"steps": 3, "resolution": 32}
REQUEST = AvatarRequest(engine="diffusers", size=256, strength=0.7)


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd_cuda") / "sd")


def test_diffusers_engine_runs_fp16_on_cuda_close_to_cpu(tiny_sd, aligned_faces):
    from tests.actors.stylize2d.test_diffusers_engine import make_engine

    faces = [aligned_faces["astronaut"], aligned_faces["grace_hopper"]]
    cuda = make_engine(tiny_sd, device="cuda", batch_size=2, **FAST)
    assert cuda.dtype == "float16"
    images = [r.image for r in cuda.stylize(faces, "realistic", REQUEST, [1, 2])]
    assert all(image.shape == (256, 256, 3) for image in images)
    assert str(next(cuda.pipeline.unet.parameters()).dtype) == "torch.float16"


@pytest.mark.parametrize("mode", ["model_offload", "sequential_offload", "vae_tiling"])
def test_low_vram_modes_run_on_cuda(tiny_sd, aligned_faces, mode):
    from tests.actors.stylize2d.test_diffusers_engine import make_engine

    engine = make_engine(tiny_sd, device="cuda", low_vram=mode, batch_size=1, **FAST)
    result = engine.stylize([aligned_faces["astronaut"]], "cartoon", REQUEST, [3])[0]
    assert result.image.shape == (256, 256, 3) and result.image.std() > 0


def test_lora_training_step_on_cuda_with_8bit_adam(tiny_sd, aligned_faces, tmp_path):
    import torch

    from actors.train.config import TrainConfig
    from actors.train.examples import TrainingExample, decode_crop
    from actors.train.trainer import LoraTrainer
    from tests.actors.train.shards import png_bytes

    examples = [TrainingExample(id=name, image=decode_crop(png_bytes(face.crop), 32), caption="indianface, photo of a woman")
                for name, face in aligned_faces.items()]
    config = TrainConfig(base_model=str(tiny_sd), output_dir=str(tmp_path), rank=4, steps=4, resolution=32,
                         learning_rate=1e-3, device="cuda", low_vram=True, sample_every=0)
    torch.cuda.reset_peak_memory_stats()
    result = LoraTrainer(config).fit(examples)
    assert result.device.startswith("cuda")
    assert len(result.losses) == 4 and np.isfinite(result.losses).all()
    assert (tmp_path / "pytorch_lora_weights.safetensors").is_file()
    assert torch.cuda.max_memory_allocated() > 0


def test_flame_fit_on_cuda_matches_cpu():
    from bench.reconstruct_flame import run

    cpu = run(batch_sizes=(8,), device="cpu")[0]
    cuda = run(batch_sizes=(8,), device="cuda")[0]
    assert cuda["device"] == "cuda"
    assert abs(cuda["error_pct_of_size"] - cpu["error_pct_of_size"]) < 0.05


def test_8bit_adamw_is_used_on_cuda():
    pytest.importorskip("bitsandbytes", reason="the `gpu` extra (bitsandbytes) is not installed")
    import torch

    from actors.train.optim import make_optimizer

    weight = torch.nn.Parameter(torch.ones(4096, device="cuda"))
    optimizer = make_optimizer([weight], 1e-2, torch.device("cuda"), use_8bit=True)
    assert type(optimizer).__name__ == "AdamW8bit"
    weight.grad = torch.ones_like(weight)
    optimizer.step()
    assert weight.detach().max().item() < 1.0
