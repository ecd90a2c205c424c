"""The diffusers engine end to end on CPU with a tiny pipeline built in code (tests/tiny_sd.py)."""
from __future__ import annotations

import numpy as np
import pytest

from actors.request import AvatarRequest
from actors.stylize2d.diffusers_engine import DiffusersOptions, DiffusersStylizer


def make_engine(base_model, device=None, **options) -> DiffusersStylizer:
    return DiffusersStylizer(DiffusersOptions(base_model=str(base_model), **options), device=device)

# 3 scheduler steps at strength 0.7 = 2 denoising steps, at the tiny model's 32 px.
FAST = {"steps": 3, "resolution": 32}
REQUEST = AvatarRequest(engine="diffusers", size=256, strength=0.7)


@pytest.fixture(scope="module")
def faces(aligned_faces):
    return [aligned_faces["astronaut"], aligned_faces["grace_hopper"]]


@pytest.fixture(scope="module")
def baseline(tiny_sd, faces):
    """Images of the plain pipeline (no LoRA, no IP-Adapter) for seeds 11, 12."""
    return _images(make_engine(tiny_sd, batch_size=2, **FAST).stylize(faces, "realistic", REQUEST, [11, 12]))


def _images(results) -> list[np.ndarray]:
    return [r.image for r in results]


def _mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def test_constructor_validates_without_loading(tiny_sd):
    import torch

    engine = make_engine(tiny_sd, **FAST)
    assert not engine.is_loaded
    assert engine.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert engine.dtype == ("float16" if torch.cuda.is_available() else "float32")


def test_the_config_builds_the_engine_from_its_options(tiny_sd):
    from actors.config import PipelineConfig
    from actors.stylize2d.protocol import Stylizer
    from actors.stylize2d.registry import STYLIZERS

    config = PipelineConfig(engine_options={"diffusers": DiffusersOptions(base_model=str(tiny_sd), steps=4, batch_size=3)})
    assert config.engine_problem(STYLIZERS, "diffusers") is None
    engine = config.create(STYLIZERS, "diffusers")
    assert isinstance(engine, DiffusersStylizer)
    assert isinstance(engine, Stylizer)
    assert (engine.steps, engine.batch_size) == (4, 3)
    assert set(engine.styles) >= {"realistic", "cartoon", "anime"}


def test_img2img_end_to_end_and_batching_keeps_images(tiny_sd, faces, baseline):
    single = make_engine(tiny_sd, device="cpu", batch_size=1, **FAST)
    results = single.stylize(faces, "realistic", REQUEST, [11, 12])
    assert single.is_loaded
    assert len(results) == 2
    for result, face, batched in zip(results, faces, baseline):
        assert result.image.shape == (256, 256, 3) and result.image.dtype == np.uint8
        assert result.landmarks is None  # geometry is re-detected on diffusion output
        assert result.image.std() > 1.0  # not a flat image
        # the output is generated, not the input passed through
        import cv2

        assert _mean_diff(result.image, cv2.resize(face.crop, (256, 256), interpolation=cv2.INTER_AREA)) > 5.0
        # batch of 2 in one call == two batches of 1, for the same per-item seeds
        assert _max_diff(result.image, batched) <= 3
        assert _mean_diff(result.image, batched) < 0.5
    assert _mean_diff(baseline[0], baseline[1]) > 1.0


def test_per_item_seeds(tiny_sd, faces):
    engine = make_engine(tiny_sd, batch_size=4, **FAST)
    face = faces[0]
    same, other, repeat = _images(engine.stylize([face, face, face], "anime", REQUEST, [5, 6, 5]))
    # same face, same seed: the same image (up to float rounding of batched CPU kernels)
    assert _max_diff(same, repeat) <= 3 and _mean_diff(same, repeat) < 0.5
    assert _mean_diff(same, other) > 1.0  # a different seed gives a different image
    (again,) = _images(engine.stylize([face], "anime", REQUEST, [5]))
    assert _max_diff(again, same) <= 3 and _mean_diff(again, same) < 0.5  # again, in a later call


def test_each_style_prompt_reaches_the_model(tiny_sd, faces):
    engine = make_engine(tiny_sd, batch_size=2, **FAST)
    by_style = {style: engine.stylize(faces[:1], style, REQUEST, [3])[0].image for style in engine.styles}
    styles = list(by_style)
    for i, a in enumerate(styles):
        for b in styles[i + 1 :]:
            assert _mean_diff(by_style[a], by_style[b]) > 0.2, (a, b)


def test_lora_safetensors_loads_and_changes_output(tiny_sd, tiny_lora, faces, baseline):
    with_lora = make_engine(tiny_sd, lora=tiny_lora, lora_scale=0.8, batch_size=2, **FAST)
    images = _images(with_lora.stylize(faces, "realistic", REQUEST, [11, 12]))
    assert all(_mean_diff(a, b) > 1.0 for a, b in zip(images, baseline))
    # the scale reaches the weights: at 0 the LoRA is a no-op
    off = make_engine(tiny_sd, lora=tiny_lora, lora_scale=0.0, batch_size=2, **FAST)
    assert all(_max_diff(a, b) <= 3 for a, b in zip(_images(off.stylize(faces, "realistic", REQUEST, [11, 12])), baseline))


def test_kohya_named_lora_gives_the_same_images(tiny_sd, tiny_lora, faces, tmp_path):
    """The same LoRA in kohya/A1111 key naming (lora_unet_..., lora_down/lora_up, alpha) loads identically."""
    from diffusers.utils.state_dict_utils import convert_state_dict_to_kohya
    from safetensors.torch import load_file, save_file

    diffusers_named = load_file(str(tiny_lora))
    peft_named = {
        key.replace(".lora.down.", ".lora_A.").replace(".lora.up.", ".lora_B."): value
        for key, value in diffusers_named.items()
    }
    kohya = convert_state_dict_to_kohya(peft_named)
    assert all(key.startswith("lora_unet_") for key in kohya)
    kohya_file = tmp_path / "indianface_kohya.safetensors"
    save_file(kohya, str(kohya_file))

    expected = make_engine(tiny_sd, lora=tiny_lora, batch_size=2, **FAST).stylize(faces, "anime", REQUEST, [4, 5])
    got = make_engine(tiny_sd, lora=kohya_file, batch_size=2, **FAST).stylize(faces, "anime", REQUEST, [4, 5])
    assert all(_max_diff(a.image, b.image) <= 3 for a, b in zip(expected, got))


def test_ip_adapter_path_runs_with_the_face_as_identity_image(tiny_sd, faces, baseline):
    from tests.tiny_sd import tiny_ip_adapter_paths

    weights, encoder = tiny_ip_adapter_paths(tiny_sd)
    engine = make_engine(tiny_sd, ip_adapter=weights, ip_adapter_scale=0.6, batch_size=2, **FAST)
    images = _images(engine.stylize(faces, "realistic", REQUEST, [11, 12]))
    assert engine.pipeline.image_encoder is not None
    assert all(img.shape == (256, 256, 3) for img in images)
    assert all(_mean_diff(a, b) > 1.0 for a, b in zip(images, baseline))
    # explicit encoder folder, scale 0: the adapter is wired in but contributes nothing
    muted = make_engine(tiny_sd, ip_adapter=weights, image_encoder=encoder, ip_adapter_scale=0.0, batch_size=2, **FAST)
    assert all(_max_diff(a, b) <= 3 for a, b in zip(_images(muted.stylize(faces, "realistic", REQUEST, [11, 12])), baseline))


def test_attention_is_sdpa_and_cpu_runs_fp32(tiny_sd):
    import torch
    from diffusers.models.attention_processor import AttnProcessor2_0

    engine = make_engine(tiny_sd, device="cpu", **FAST)
    pipe = engine.pipeline
    assert pipe.unet.dtype == torch.float32 and pipe.unet.device.type == "cpu"
    assert {type(p) for p in pipe.unet.attn_processors.values()} == {AttnProcessor2_0}
    assert pipe.safety_checker is None


def test_vae_tiling_mode_runs_on_cpu_with_same_images(tiny_sd, faces, baseline):
    engine = make_engine(tiny_sd, device="cpu", low_vram="vae_tiling", batch_size=2, **FAST)
    images = _images(engine.stylize(faces, "realistic", REQUEST, [11, 12]))
    assert engine.pipeline.vae.use_tiling and engine.pipeline.vae.use_slicing
    assert all(_max_diff(a, b) <= 3 for a, b in zip(images, baseline))


@pytest.mark.parametrize("mode", ["model_offload", "sequential_offload"])
def test_offload_modes_are_refused_on_cpu(tiny_sd, mode):
    with pytest.raises(ValueError, match=f"low_vram='{mode}'.*CUDA"):
        make_engine(tiny_sd, device="cpu", low_vram=mode)


def test_unknown_low_vram_mode(tiny_sd):
    with pytest.raises(ValueError, match="`low_vram` must be one of"):
        make_engine(tiny_sd, low_vram="tiny")


def test_output_follows_request_size(tiny_sd, faces):
    engine = make_engine(tiny_sd, **FAST)
    request = AvatarRequest(engine="diffusers", size=512, strength=0.5)
    (result,) = engine.stylize(faces[:1], "cartoon", request, [0])
    assert result.image.shape == (512, 512, 3)
    assert engine.stylize([], "cartoon", request, []) == []


def test_stylize_rejects_bad_calls(tiny_sd, faces):
    engine = make_engine(tiny_sd, **FAST)
    with pytest.raises(ValueError, match="Unknown style 'oil'"):
        engine.stylize(faces, "oil", REQUEST, [1, 2])
    with pytest.raises(ValueError, match="one seed per face: got 1 seeds for 2 faces"):
        engine.stylize(faces, "anime", REQUEST, [1])
    with pytest.raises(ValueError, match="Seeds must be integers"):
        engine.stylize(faces[:1], "anime", REQUEST, [-1])
    low = AvatarRequest(engine="diffusers", size=256, strength=0.2)
    with pytest.raises(ValueError, match="leaves no denoising step"):
        engine.stylize(faces[:1], "anime", low, [1])
    assert not engine.is_loaded  # bad calls are refused before any loading
