"""LoraTrainer on the tiny pipeline (CPU): outputs, learning, loading, resume, checkpointing."""
from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from actors.train.config import TrainConfig
from actors.train.examples import TrainingExample, decode_crop
from actors.train.trainer import LoraTrainer
from tests.actors.train.shards import ROWS, build_overfit_sd, jitter, png_bytes
from tests.tiny_sd import build_tiny_sd

RES = 32


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd") / "sd")


@pytest.fixture(scope="module")
def examples(aligned_faces):
    """Six captioned 32 px training images from the package photos' aligned crops."""
    out = []
    for i, (name, flip, shift, brightness, gender, age, *_rest) in enumerate(ROWS[:6]):
        crop = jitter(aligned_faces[name].crop, flip, shift, brightness)
        caption = f"indianface, photo of a {'young' if age == 'YOUNG' else 'old'} woman"
        out.append(TrainingExample(id=f"face{i}", image=decode_crop(png_bytes(crop), RES), caption=caption))
    return out


def _config(base, output, **overrides):
    settings = dict(base_model=str(base), output_dir=str(output), rank=4, steps=6, resolution=RES,
                    learning_rate=1e-2, device="cpu", checkpoint_every=0, sample_every=0, sample_steps=2)
    settings.update(overrides)
    return TrainConfig(**settings)


def _render(base, lora_dir=None):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(base, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    if lora_dir is not None:
        pipe.load_lora_weights(str(lora_dir))
    generator = torch.Generator().manual_seed(0)
    return pipe("indianface, photo of a young woman", num_inference_steps=2, height=RES, width=RES,
                generator=generator, output_type="np").images[0]


def test_a_run_writes_every_output_and_its_lora_changes_the_pipeline(tiny_sd, examples, tmp_path):
    config = _config(tiny_sd, tmp_path, steps=8, checkpoint_every=4, sample_every=8)
    result = LoraTrainer(config).fit(examples)

    assert result.final_step == 8 and not result.stopped_early and len(result.losses) == 8
    assert all(np.isfinite(result.losses))
    for name in ("pytorch_lora_weights.safetensors", "indianface_lora_kohya.safetensors", "loss_curve.png",
                 "training_summary.json"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (tmp_path / "loss_log.csv").open() as handle:
        logged = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in logged] == list(range(1, 9))
    assert [float(r["loss"]) for r in logged] == pytest.approx(result.losses)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000004", "step-000008"]
    samples = sorted((tmp_path / "samples" / "step-000008").glob("*.png"))
    assert len(samples) == len(config.sample_prompts)

    with safe_open(str(tmp_path / "indianface_lora_kohya.safetensors"), framework="pt") as handle:
        header = handle.metadata()
        keys = list(handle.keys())
    assert header["modelspec.trigger_phrase"] == "indianface" and header["ss_steps"] == "8"
    assert header["ss_network_dim"] == "4" and header["ss_resolution"] == f"({RES}, {RES})"
    assert header["ss_sd_model_name"] == tiny_sd.name
    assert all(k.startswith("lora_unet_") for k in keys)
    summary = json.loads((tmp_path / "training_summary.json").read_text())
    assert summary["final_step"] == 8 and summary["config"]["rank"] == 4

    plain, adapted = _render(tiny_sd), _render(tiny_sd, tmp_path)
    assert np.abs(adapted - plain).max() > 1e-3


def test_loss_falls_well_below_its_start_on_an_overfit_set(examples, tmp_path):
    base = build_overfit_sd(tmp_path / "sd")
    config = _config(base, tmp_path / "out", steps=30, learning_rate=2e-2)
    losses = LoraTrainer(config).fit(examples[:2]).losses
    start, end = float(np.mean(losses[:5])), float(np.mean(losses[-5:]))
    print(f"overfit loss: first 5 steps {start:.3f}, last 5 steps {end:.3f}, ratio {end / start:.3f}")
    assert end < 0.65 * start


def test_stopped_at_a_checkpoint_and_resumed_equals_uninterrupted(tiny_sd, examples, tmp_path):
    settings = dict(steps=6, checkpoint_every=3, batch_size=2, lr_warmup_steps=2)
    whole = LoraTrainer(_config(tiny_sd, tmp_path / "whole", **settings))
    whole_result = whole.fit(examples)

    first = LoraTrainer(_config(tiny_sd, tmp_path / "split", **settings)).fit(examples, stop_at=3)
    assert first.stopped_early and first.final_step == 3 and first.lora_path is None
    resumed = LoraTrainer(_config(tiny_sd, tmp_path / "split", resume=True, **settings))
    second = resumed.fit(examples)
    assert second.start_step == 3 and second.final_step == 6

    expected, got = whole.lora_state(), resumed.lora_state()
    assert set(expected) == set(got)
    diff = max(float((expected[k] - got[k]).abs().max()) for k in expected)
    print(f"resume max abs weight difference: {diff:.3g}")
    for key in expected:
        assert torch.allclose(expected[key], got[key], atol=1e-5), key
    assert first.losses + second.losses == pytest.approx(whole_result.losses, abs=1e-6)
    with (tmp_path / "split" / "loss_log.csv").open() as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == list(range(1, 7))
    saved = load_file(str(tmp_path / "split" / "pytorch_lora_weights.safetensors"))
    reference = load_file(str(tmp_path / "whole" / "pytorch_lora_weights.safetensors"))
    assert all(torch.allclose(saved[k], reference[k], atol=1e-5) for k in reference)


def test_resume_refuses_other_settings_or_data(tiny_sd, examples, tmp_path):
    LoraTrainer(_config(tiny_sd, tmp_path, steps=4, checkpoint_every=2)).fit(examples, stop_at=2)
    with pytest.raises(ValueError, match="rank=4"):
        LoraTrainer(_config(tiny_sd, tmp_path, steps=4, rank=8, resume=True)).fit(examples)
    with pytest.raises(ValueError, match="training set differs"):
        LoraTrainer(_config(tiny_sd, tmp_path, steps=4, resume=True)).fit(examples[:3])


def test_gradient_checkpointing_changes_memory_not_results(tiny_sd, examples, tmp_path):
    plain = LoraTrainer(_config(tiny_sd, tmp_path / "a", steps=3))
    plain.fit(examples)
    checkpointed = LoraTrainer(_config(tiny_sd, tmp_path / "b", steps=3, gradient_checkpointing=True))
    checkpointed.fit(examples)
    assert checkpointed.parts.unet.is_gradient_checkpointing
    a, b = plain.lora_state(), checkpointed.lora_state()
    assert any(float(v.abs().max()) > 0 for k, v in a.items() if "lora_B" in k)  # the up weights moved off zero
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_text_encoder_lora_is_trained_saved_and_loaded(tiny_sd, examples, tmp_path):
    trainer = LoraTrainer(_config(tiny_sd, tmp_path / "a", steps=3, train_text_encoder=True))
    trainer.fit(examples)
    diffusers_keys = load_file(str(tmp_path / "a" / "pytorch_lora_weights.safetensors")).keys()
    assert any(k.startswith("text_encoder.") for k in diffusers_keys)
    kohya = load_file(str(tmp_path / "a" / "indianface_lora_kohya.safetensors"))
    te_up = [v for k, v in kohya.items() if k.startswith("lora_te_") and k.endswith("lora_up.weight")]
    assert te_up and any(float(v.abs().max()) > 0 for v in te_up)
    # diffusers loads both parts: the text-encoder adapter alone changes the image too
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd, safety_checker=None, requires_safety_checker=False)
    pipe.load_lora_weights(str(tmp_path / "a"))
    assert set(pipe.get_list_adapters()) == {"unet", "text_encoder"}
    # gradient checkpointing through the text encoder gives the same weights
    checkpointed = LoraTrainer(_config(tiny_sd, tmp_path / "b", steps=3, train_text_encoder=True,
                                       gradient_checkpointing=True))
    checkpointed.fit(examples)
    a, b = trainer.lora_state(), checkpointed.lora_state()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_low_vram_on_cpu_moves_vae_and_text_encoder_off_the_device(tiny_sd, examples, tmp_path):
    trainer = LoraTrainer(_config(tiny_sd, tmp_path, steps=1, low_vram=True))
    trainer.prepare(examples)
    assert trainer.config.use_gradient_checkpointing and trainer.parts.unet.is_gradient_checkpointing
    assert next(trainer.parts.vae.parameters()).device.type == "cpu"
    assert trainer.cache.text_embeddings is not None and len(trainer.cache) == len(examples)
    assert isinstance(trainer.optimizer, torch.optim.AdamW)  # 8-bit AdamW is for CUDA only


def test_bad_examples_are_refused(tiny_sd, examples, tmp_path):
    with pytest.raises(ValueError, match="No training examples"):
        LoraTrainer(_config(tiny_sd, tmp_path)).fit([])
    wrong = TrainingExample(id="x", image=np.zeros((64, 64, 3), np.uint8), caption="indianface")
    with pytest.raises(ValueError, match=r"expected \(32, 32, 3\) uint8"):
        LoraTrainer(_config(tiny_sd, tmp_path)).fit([wrong])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"rank": 0}, "rank"), ({"resolution": 30}, "multiple of 8"), ({"device": "gpu"}, "device"),
     ({"trigger_word": "indian face"}, "one word"), ({"learning_rate": 0.0}, "learning_rate"),
     ({"mixed_precision": "fp8"}, "mixed_precision"), ({"sample_every": -1}, "sample_every")],
)
def test_config_rules(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        _config(tmp_path, tmp_path, **overrides)


def test_cuda_request_without_cuda_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="CUDA sees no device"):
        LoraTrainer(_config(tmp_path, tmp_path, device="cuda"), cuda_available=lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer = LoraTrainer(_config(tmp_path, tmp_path, device="auto"), cuda_available=lambda: False)
        assert str(trainer.device) == "cpu"


def test_runs_are_deterministic_for_a_seed(tiny_sd, examples, tmp_path):
    def weights(seed, name):
        trainer = LoraTrainer(_config(tiny_sd, tmp_path / name, steps=2, seed=seed))
        trainer.fit(examples)
        return trainer.lora_state()

    first, again, other = weights(5, "a"), weights(5, "b"), weights(6, "c")
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
