"""diffusers ↔ kohya/A1111 LoRA keys: round trip, alpha, and both files loading into diffusers alike."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from actors.train import lora_format
from tests.tiny_sd import build_tiny_sd, make_tiny_lora


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd") / "sd")


@pytest.fixture(scope="module")
def diffusers_lora(tiny_sd, tmp_path_factory):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_sd / "unet")
    return make_tiny_lora(unet, tmp_path_factory.mktemp("lora") / "pytorch_lora_weights.safetensors", seed=3, scale=0.5)


def _text_encoder_state(rank=4):
    generator = torch.Generator().manual_seed(0)
    state = {}
    for layer in range(2):
        for proj in ("q_proj", "out_proj"):
            base = f"text_encoder.text_model.encoder.layers.{layer}.self_attn.{proj}"
            state[f"{base}.lora_linear_layer.down.weight"] = torch.randn(rank, 32, generator=generator)
            state[f"{base}.lora_linear_layer.up.weight"] = torch.randn(32, rank, generator=generator)
    return state


def test_kohya_names_follow_the_sd1_convention(diffusers_lora):
    kohya = lora_format.diffusers_to_kohya(load_file(str(diffusers_lora)))
    name = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0"
    assert {f"{name}.lora_down.weight", f"{name}.lora_up.weight", f"{name}.alpha"} <= set(kohya)
    assert kohya[f"{name}.alpha"].item() == kohya[f"{name}.lora_down.weight"].shape[0]
    te = lora_format.diffusers_to_kohya(_text_encoder_state())
    assert "lora_te_text_model_encoder_layers_1_self_attn_out_proj.lora_up.weight" in te


def test_round_trip_keeps_keys_and_values(diffusers_lora):
    original = {**load_file(str(diffusers_lora)), **_text_encoder_state()}
    back = lora_format.kohya_to_diffusers(lora_format.diffusers_to_kohya(original))
    assert set(back) == set(original)
    for key, value in original.items():
        assert torch.equal(back[key], value), key


def test_peft_keys_convert_like_diffusers_keys():
    down, up = torch.ones(4, 8), torch.full((8, 4), 2.0)
    peft = {"mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": down,
            "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight": up}
    kohya = lora_format.diffusers_to_kohya(lora_format.peft_to_diffusers(peft))
    assert torch.equal(kohya["lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight"], up)


def test_alpha_other_than_rank_is_folded_into_up_weights():
    kohya = {"lora_unet_up_blocks_0_attentions_0_transformer_blocks_0_attn1_to_v.lora_down.weight": torch.ones(4, 8),
             "lora_unet_up_blocks_0_attentions_0_transformer_blocks_0_attn1_to_v.lora_up.weight": torch.ones(8, 4),
             "lora_unet_up_blocks_0_attentions_0_transformer_blocks_0_attn1_to_v.alpha": torch.tensor(2.0)}
    out = lora_format.kohya_to_diffusers(kohya)
    up = out["unet.up_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v.lora.up.weight"]
    assert torch.allclose(up, torch.full((8, 4), 0.5))


def test_bad_keys_are_refused():
    with pytest.raises(ValueError, match="Not a diffusers LoRA key"):
        lora_format.diffusers_to_kohya({"unet.foo.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="Not a kohya LoRA key"):
        lora_format.kohya_to_diffusers({"lora_transformer_x.lora_down.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="without both down and up"):
        lora_format.kohya_to_diffusers({"lora_unet_mid_block_attentions_0_proj_in.lora_down.weight": torch.zeros(1)})


def test_kohya_copy_loads_into_diffusers_with_the_same_effect(tiny_sd, diffusers_lora, tmp_path):
    from diffusers import StableDiffusionPipeline

    metadata = lora_format.kohya_metadata(trigger_word="indianface", rank=4, alpha=4, steps=10, resolution=32,
                                          base_model=str(tiny_sd), learning_rate=1e-4, seed=0, num_images=2,
                                          batch_size=1, mixed_precision="float32", train_text_encoder=False,
                                          captions=["indianface, photo of a man"])
    kohya = lora_format.save_kohya_lora(tmp_path / "indianface_lora_kohya.safetensors",
                                        load_file(str(diffusers_lora)), None, metadata)
    with safe_open(str(kohya), framework="pt") as handle:
        header = handle.metadata()
    assert header["modelspec.trigger_phrase"] == "indianface" and header["ss_network_dim"] == "4"

    def render(lora_file):
        pipe = StableDiffusionPipeline.from_pretrained(tiny_sd, safety_checker=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        if lora_file is not None:
            pipe.load_lora_weights(str(lora_file.parent), weight_name=lora_file.name)
        generator = torch.Generator().manual_seed(0)
        return pipe("indianface, photo of a man", num_inference_steps=2, height=32, width=32, generator=generator,
                    output_type="np").images[0]

    plain, from_diffusers, from_kohya = render(None), render(diffusers_lora), render(kohya)
    assert np.abs(from_diffusers - plain).max() > 1e-3  # the LoRA does something
    np.testing.assert_allclose(from_kohya, from_diffusers, atol=1e-5)
