"""Missing or wrong weights for the diffusers engine give one clear ValueError naming what is missing."""
from __future__ import annotations

import shutil

import pytest

from tests.actors.stylize2d.test_diffusers_engine import make_engine


@pytest.fixture
def model_copy(tiny_sd, tmp_path):
    """A private copy of the tiny pipeline folder that a test may break."""
    return shutil.copytree(tiny_sd, tmp_path / "model", ignore=shutil.ignore_patterns("ip_adapter"))


def test_missing_base_model_folder_names_the_path_and_the_layout(tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(ValueError, match=r"no_such_model.*model_index\.json.*unet/diffusion_pytorch_model\.safetensors"):
        make_engine(missing)


def test_folder_without_model_index(model_copy):
    (model_copy / "model_index.json").unlink()
    with pytest.raises(ValueError, match="has no model_index.json"):
        make_engine(model_copy)


def test_missing_unet_subfolder(model_copy):
    shutil.rmtree(model_copy / "unet")
    with pytest.raises(ValueError, match="has no unet/ subfolder"):
        make_engine(model_copy)


def test_missing_unet_weights(model_copy):
    (model_copy / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"no safetensors weights in unet/: expected unet/diffusion_pytorch_model\.safetensors"):
        make_engine(model_copy)


def test_pickled_only_weights_are_refused(model_copy):
    unet = model_copy / "unet"
    (unet / "diffusion_pytorch_model.safetensors").rename(unet / "diffusion_pytorch_model.bin")
    with pytest.raises(ValueError, match=r"found only diffusion_pytorch_model\.bin: pickled weights are refused"):
        make_engine(model_copy)


def test_missing_tokenizer(model_copy):
    shutil.rmtree(model_copy / "tokenizer")
    with pytest.raises(ValueError, match="missing its tokenizer"):
        make_engine(model_copy)


def test_fp16_variant_folder_is_accepted(model_copy):
    for component, stem in (("unet", "diffusion_pytorch_model"), ("vae", "diffusion_pytorch_model"), ("text_encoder", "model")):
        (model_copy / component / f"{stem}.safetensors").rename(model_copy / component / f"{stem}.fp16.safetensors")
    assert make_engine(model_copy).variant == "fp16"


def test_single_file_checkpoint_is_refused_with_a_hint(tmp_path):
    checkpoint = tmp_path / "v1-5-pruned.safetensors"
    checkpoint.write_bytes(b"not used")
    with pytest.raises(ValueError, match="is a single file; the engine needs a diffusers folder"):
        make_engine(checkpoint)


def test_repo_id_resolves_from_the_local_hf_cache_only(tiny_sd, tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--tiny-sd" / "snapshots" / "0123abcd"
    shutil.copytree(tiny_sd, snapshot, ignore=shutil.ignore_patterns("ip_adapter"))
    (cache / "models--someone--tiny-sd" / "refs").mkdir()
    (cache / "models--someone--tiny-sd" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))

    assert make_engine("someone/tiny-sd").model_dir == snapshot
    with pytest.raises(ValueError, match="no repo 'someone/absent' in the local Hugging Face cache.*Nothing is downloaded"):
        make_engine("someone/absent")


@pytest.mark.parametrize("suffix", [".bin", ".ckpt", ".pt"])
def test_pickled_lora_is_refused(tiny_sd, tmp_path, suffix):
    lora = tmp_path / f"indianface{suffix}"
    lora.write_bytes(b"\x80\x04")
    with pytest.raises(ValueError, match=rf"LoRA .*indianface\{suffix}' is a pickled \{suffix} file.*only \.safetensors"):
        make_engine(tiny_sd, lora=lora)


def test_missing_lora_file(tiny_sd, tmp_path):
    with pytest.raises(ValueError, match=r"LoRA file .*absent\.safetensors' does not exist"):
        make_engine(tiny_sd, lora=tmp_path / "absent.safetensors")


def test_corrupt_lora_file(tiny_sd, tmp_path):
    lora = tmp_path / "broken.safetensors"
    lora.write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="is not a readable safetensors file"):
        make_engine(tiny_sd, lora=lora)


def test_safetensors_without_lora_tensors(tiny_sd):
    from tests.tiny_sd import tiny_ip_adapter_paths

    not_a_lora, _ = tiny_ip_adapter_paths(tiny_sd)
    with pytest.raises(ValueError, match=r"holds none of the expected tensors \(names starting with \('lora',\)\)"):
        make_engine(tiny_sd, lora=not_a_lora)


def test_ip_adapter_without_image_encoder(tiny_sd, tmp_path):
    from tests.tiny_sd import tiny_ip_adapter_paths

    weights, _ = tiny_ip_adapter_paths(tiny_sd)
    alone = shutil.copy(weights, tmp_path / weights.name)
    with pytest.raises(ValueError, match=r"needs its CLIP image encoder.*no folder .*image_encoder'.*image_encoder=FOLDER"):
        make_engine(tiny_sd, ip_adapter=alone)


def test_image_encoder_folder_without_weights(tiny_sd, tmp_path):
    from tests.tiny_sd import tiny_ip_adapter_paths

    weights, encoder = tiny_ip_adapter_paths(tiny_sd)
    broken = shutil.copytree(encoder, tmp_path / "encoder")
    (broken / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="Image encoder folder .* is missing model.safetensors"):
        make_engine(tiny_sd, ip_adapter=weights, image_encoder=broken)


def test_ip_adapter_folder_instead_of_file(tiny_sd):
    from tests.tiny_sd import tiny_ip_adapter_paths

    weights, _ = tiny_ip_adapter_paths(tiny_sd)
    with pytest.raises(ValueError, match="must be the IP-Adapter weights file"):
        make_engine(tiny_sd, ip_adapter=weights.parent)


def test_ip_adapter_file_with_wrong_tensors(tiny_sd, tiny_lora):
    with pytest.raises(ValueError, match=r"IP-Adapter .* holds none of the expected tensors"):
        make_engine(tiny_sd, ip_adapter=tiny_lora)


def test_image_encoder_alone_is_refused(tiny_sd):
    from tests.tiny_sd import tiny_ip_adapter_paths

    _, encoder = tiny_ip_adapter_paths(tiny_sd)
    with pytest.raises(ValueError, match="`image_encoder` is only used with `ip_adapter`"):
        make_engine(tiny_sd, image_encoder=encoder)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"device": "gpu0"}, "`device` must be 'cpu', 'cuda' or 'cuda:N'"),
        ({"device": "cpu", "dtype": "float16"}, "`dtype='float16'` needs a CUDA device"),
        ({"dtype": "int8"}, "`dtype` must be one of"),
        ({"batch_size": 0}, r"`batch_size` must be in \[1, 256\]"),
        ({"steps": 2.5}, r"`steps` must be an integer"),
        ({"lora_scale": float("nan")}, r"`lora_scale` must be finite"),
        ({"guidance_scale": -1}, r"`guidance_scale` must be in \[0.0, 50.0\]"),
        ({"resolution": 100}, "`resolution` must be a multiple of 8"),
    ],
)
def test_option_rules(tiny_sd, options, message):
    with pytest.raises(ValueError, match=message):
        make_engine(tiny_sd, **options)


def test_cuda_requested_without_a_card(tiny_sd):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match="torch sees no CUDA device"):
        make_engine(tiny_sd, device="cuda")


def test_lora_for_another_architecture_fails_at_load_naming_the_file(tiny_sd, tmp_path):
    import torch
    from safetensors.torch import save_file

    lora = tmp_path / "other_arch.safetensors"
    prefix = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
    save_file({f"{prefix}.lora_A.weight": torch.ones(4, 99), f"{prefix}.lora_B.weight": torch.ones(99, 4)}, str(lora))
    engine = make_engine(tiny_sd, lora=lora, steps=3, resolution=32)
    with pytest.raises(ValueError, match=r"LoRA .*other_arch\.safetensors' does not fit the base model"):
        engine.load()
    assert not engine.is_loaded
