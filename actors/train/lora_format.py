"""LoRA files: the diffusers layout and the kohya/A1111 layout, and conversion between them.

diffusers (`pytorch_lora_weights.safetensors`, what `pipe.load_lora_weights(dir)` reads):
    unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora.down.weight   (or .lora_A.weight)
    unet.….to_q.lora.up.weight                                                          (or .lora_B.weight)
    text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight
kohya / A1111 / ComfyUI (SD 1.x LoRAs are trained on the diffusers UNet, so the module path is
the diffusers one with dots written as underscores):
    lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight
    lora_unet_…_to_q.lora_up.weight, lora_unet_…_to_q.alpha (scalar; scale = alpha / rank)
    lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import torch

DIFFUSERS_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
PREFIXES = {"unet": "lora_unet_", "text_encoder": "lora_te_"}
# Module-name parts that contain underscores: turning kohya names back into module paths needs them.
_COMPOUND_NAMES = (
    "down_blocks", "up_blocks", "mid_block", "transformer_blocks", "to_q", "to_k", "to_v", "to_out",
    "proj_in", "proj_out", "time_emb_proj", "conv_shortcut", "time_embedding", "linear_1", "linear_2",
    "conv_in", "conv_out", "text_model", "self_attn", "q_proj", "k_proj", "v_proj", "out_proj",
    "final_layer_norm", "layer_norm1", "layer_norm2", "add_embedding", "norm_out", "conv_norm_out",
)
_COMPOUND_PARTS = sorted((tuple(name.split("_")) for name in _COMPOUND_NAMES), key=len, reverse=True)
_DIFFUSERS_KEY = re.compile(
    r"^(unet|text_encoder)\.(.+)\."
    r"(lora\.down|lora\.up|lora_linear_layer\.down|lora_linear_layer\.up|lora_A|lora_B)\.weight$"
)
# The down/up spelling diffusers writes per component (what `convert_state_dict_to_diffusers` gives).
_DIFFUSERS_LAYER = {"unet": "lora", "text_encoder": "lora_linear_layer"}
_KOHYA_KEY = re.compile(r"^(lora_unet_|lora_te_)(.+)\.(lora_down\.weight|lora_up\.weight|alpha)$")


def peft_to_diffusers(unet_state: Mapping[str, torch.Tensor],
                      text_encoder_state: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """peft-named LoRA states (`….lora_A.weight`) → one diffusers-layout state dict, converted with
    diffusers' own `convert_state_dict_to_diffusers` and prefixed `unet.` / `text_encoder.`."""
    from diffusers.utils import convert_state_dict_to_diffusers

    out: dict[str, torch.Tensor] = {}
    for prefix, state in (("unet", unet_state), ("text_encoder", text_encoder_state)):
        if state:
            out.update({f"{prefix}.{k}": v for k, v in convert_state_dict_to_diffusers(dict(state)).items()})
    return out


def diffusers_to_kohya(state: Mapping[str, torch.Tensor], alpha: float | None = None) -> dict[str, torch.Tensor]:
    """diffusers layout → kohya layout. `alpha` is the LoRA alpha the weights were trained with
    (None: alpha = rank, scale 1); it is written per module as `.alpha`."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        match = _DIFFUSERS_KEY.match(key)
        if match is None:
            raise ValueError(f"Not a diffusers LoRA key: {key!r}.")
        component, module, kind = match.groups()
        name = PREFIXES[component] + module.replace(".", "_")
        if kind in ("lora.down", "lora_linear_layer.down", "lora_A"):
            out[f"{name}.lora_down.weight"] = tensor
            rank = tensor.shape[0]
            out[f"{name}.alpha"] = torch.tensor(float(rank if alpha is None else alpha), dtype=torch.float32)
        else:
            out[f"{name}.lora_up.weight"] = tensor
    _check_pairs(out, ".lora_down.weight", ".lora_up.weight")
    return out


def kohya_to_diffusers(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """kohya layout → diffusers layout (UNet `lora.down/up`, text encoder `lora_linear_layer.down/up`).
    A module whose alpha differs from its rank has alpha / rank folded into its up weight, so the file
    needs no alpha to load right."""
    out: dict[str, torch.Tensor] = {}
    alphas: dict[str, float] = {}
    for key, tensor in state.items():
        match = _KOHYA_KEY.match(key)
        if match is None:
            raise ValueError(f"Not a kohya LoRA key for SD 1.x (lora_unet_/lora_te_): {key!r}.")
        prefix, name, kind = match.groups()
        component = "unet" if prefix == "lora_unet_" else "text_encoder"
        module = f"{component}.{_module_path(name)}.{_DIFFUSERS_LAYER[component]}"
        if kind == "alpha":
            alphas[module] = float(tensor.item())
        elif kind == "lora_down.weight":
            out[f"{module}.down.weight"] = tensor
        else:
            out[f"{module}.up.weight"] = tensor
    _check_pairs(out, ".down.weight", ".up.weight")
    for module, alpha in alphas.items():
        down = out.get(f"{module}.down.weight")
        if down is None:
            raise ValueError(f"kohya LoRA has an alpha for {module!r} but no weights.")
        rank = down.shape[0]
        if alpha != rank:
            out[f"{module}.up.weight"] = out[f"{module}.up.weight"] * (alpha / rank)
    return out


def save_diffusers_lora(output_dir: str | Path, unet_state: Mapping[str, torch.Tensor],
                        text_encoder_state: Mapping[str, torch.Tensor] | None,
                        unet_config: dict, text_encoder_config: dict | None,
                        metadata: Mapping[str, str] | None = None) -> Path:
    """Write `pytorch_lora_weights.safetensors` with diffusers' own writer (peft states and their
    LoraConfig dicts in), then add `metadata` to the file's header."""
    from diffusers import StableDiffusionPipeline
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    layers = peft_to_diffusers(unet_state, text_encoder_state)
    StableDiffusionPipeline.save_lora_weights(
        save_directory=str(output_dir),
        unet_lora_layers={k.removeprefix("unet."): v for k, v in layers.items() if k.startswith("unet.")},
        text_encoder_lora_layers={k.removeprefix("text_encoder."): v for k, v in layers.items()
                                  if k.startswith("text_encoder.")} or None,
        unet_lora_adapter_metadata=_jsonable(unet_config),
        text_encoder_lora_adapter_metadata=_jsonable(text_encoder_config) if text_encoder_state else None,
        safe_serialization=True,
    )
    path = Path(output_dir) / DIFFUSERS_WEIGHT_NAME
    if metadata:
        with safe_open(str(path), framework="pt") as handle:
            header = dict(handle.metadata() or {})
        save_file(load_file(str(path)), str(path), metadata={**header, **metadata})
    return path


def save_kohya_lora(path: str | Path, diffusers_state: Mapping[str, torch.Tensor], alpha: float | None,
                    metadata: Mapping[str, str]) -> Path:
    """Write the kohya/A1111 copy of a diffusers-layout state dict, with `metadata` in its header."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().to("cpu").contiguous() for k, v in diffusers_to_kohya(diffusers_state, alpha).items()}
    save_file(state, str(path), metadata={k: str(v) for k, v in metadata.items()})
    return path


def kohya_metadata(*, trigger_word: str, rank: int, alpha: float, steps: int, resolution: int, base_model: str,
                   learning_rate: float, seed: int, num_images: int, batch_size: int, mixed_precision: str,
                   train_text_encoder: bool, captions: list[str] | None = None) -> dict[str, str]:
    """Header of the kohya copy: the `ss_*` keys WebUI/ComfyUI/Civitai read, plus `modelspec.*`."""
    tags: dict[str, int] = {}
    for caption in captions or []:
        for tag in (part.strip() for part in caption.split(",")):
            if tag:
                tags[tag] = tags.get(tag, 0) + 1
    return {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": _number(alpha),
        "ss_base_model_version": "sd_v1",
        "ss_v2": "False",
        "ss_sd_model_name": Path(base_model).name or str(base_model),
        "ss_resolution": f"({resolution}, {resolution})",
        "ss_learning_rate": _number(learning_rate),
        "ss_unet_lr": _number(learning_rate),
        "ss_text_encoder_lr": _number(learning_rate) if train_text_encoder else "0",
        "ss_network_train_unet_only": str(not train_text_encoder),
        "ss_max_train_steps": str(steps),
        "ss_steps": str(steps),
        "ss_seed": str(seed),
        "ss_num_train_images": str(num_images),
        "ss_batch_size_per_device": str(batch_size),
        "ss_mixed_precision": mixed_precision,
        "ss_output_name": f"{trigger_word}_lora",
        "ss_training_comment": f"trigger word: {trigger_word}",
        "ss_tag_frequency": json.dumps({trigger_word: tags}),
        "modelspec.architecture": "stable-diffusion-v1/lora",
        "modelspec.trigger_phrase": trigger_word,
        "modelspec.resolution": f"{resolution}x{resolution}",
    }


def _module_path(kohya_name: str) -> str:
    """`down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0` → dotted module path."""
    parts = kohya_name.split("_")
    names: list[str] = []
    i = 0
    while i < len(parts):
        for compound in _COMPOUND_PARTS:
            if tuple(parts[i : i + len(compound)]) == compound:
                names.append("_".join(compound))
                i += len(compound)
                break
        else:
            names.append(parts[i])
            i += 1
    return ".".join(names)


def _check_pairs(state: Mapping[str, torch.Tensor], down: str, up: str) -> None:
    downs = {k.removesuffix(down) for k in state if k.endswith(down)}
    ups = {k.removesuffix(up) for k in state if k.endswith(up)}
    if downs != ups:
        missing = sorted(downs ^ ups)[:3]
        raise ValueError(f"LoRA modules without both down and up weights: {missing}.")


def _jsonable(config: dict | None) -> dict | None:
    if config is None:
        return None
    return json.loads(json.dumps(config, default=lambda v: sorted(v) if isinstance(v, set) else str(v)))


def _number(value: float) -> str:
    return f"{float(value):g}"
