"""Find and check the user's diffusion weights on disk: base model folder, LoRA, IP-Adapter, image encoder.

Nothing here downloads. A base model is a local diffusers folder, or a Hugging Face repo id that is already
in the local HF cache (looked up offline). Weights must be safetensors (pickled .bin/.ckpt/.pt files can run
code when loaded). Every function raises one precise ValueError naming what is missing.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

# What a Stable Diffusion 1.5-family diffusers folder holds (`save_pretrained` / the Hub layout).
COMPONENT_WEIGHTS = {"unet": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model", "text_encoder": "model"}
EXPECTED_LAYOUT = (
    "model_index.json, unet/config.json + unet/diffusion_pytorch_model.safetensors, "
    "vae/config.json + vae/diffusion_pytorch_model.safetensors, "
    "text_encoder/config.json + text_encoder/model.safetensors, "
    "tokenizer/ (vocab.json + merges.txt, or tokenizer.json), scheduler/scheduler_config.json "
    "(fp16 variants such as diffusion_pytorch_model.fp16.safetensors are accepted)"
)
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_base_model(base_model: str | Path) -> Path:
    """A local folder, or the snapshot folder of a repo id in the local HF cache (offline lookup)."""
    text = str(base_model)
    path = Path(text).expanduser()
    if path.exists():
        if path.is_file():
            raise ValueError(
                f"Base model {text!r} is a single file; the engine needs a diffusers folder holding {EXPECTED_LAYOUT}. "
                "Convert a single-file checkpoint with diffusers' scripts/convert_original_stable_diffusion_to_diffusers.py."
            )
        return path
    if _REPO_ID.match(text):
        from huggingface_hub import constants, try_to_load_from_cache

        cached = try_to_load_from_cache(text, "model_index.json")
        if isinstance(cached, str):
            return Path(cached).parent
        raise ValueError(
            f"Base model {text!r}: no such local folder, and no repo {text!r} in the local Hugging Face cache "
            f"({constants.HF_HUB_CACHE}). Nothing is downloaded at run time: fetch it yourself first "
            f"(`huggingface-cli download {text}`) or pass a folder holding {EXPECTED_LAYOUT}."
        )
    raise ValueError(f"Base model folder {text!r} does not exist; expected a diffusers folder holding {EXPECTED_LAYOUT}.")


def check_base_model_folder(folder: Path) -> str | None:
    """Check `folder` is a complete SD 1.5-family img2img-capable folder; return the weights variant (None or "fp16")."""
    folder = Path(folder)
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise ValueError(f"Base model {str(folder)!r} has no model_index.json; expected {EXPECTED_LAYOUT}.")
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"Base model {str(index_file)!r} is not valid JSON: {error}.") from None
    if not isinstance(index, dict):
        raise ValueError(f"Base model {str(index_file)!r} must hold a JSON object.")
    if "text_encoder_2" in index or "transformer" in index:
        raise ValueError(
            f"Base model {str(folder)!r} is not a Stable Diffusion 1.5-family model "
            f"({index.get('_class_name', 'unknown pipeline')}); SDXL/SD3/DiT folders are not supported."
        )
    for name in ("unet", "vae", "text_encoder"):
        _check_config(folder, name)
    _check_config(folder, "scheduler", "scheduler_config.json")
    tokenizer = folder / "tokenizer"
    if not ((tokenizer / "tokenizer.json").is_file() or all((tokenizer / f).is_file() for f in ("vocab.json", "merges.txt"))):
        raise ValueError(
            f"Base model {str(folder)!r} is missing its tokenizer: expected tokenizer/vocab.json + tokenizer/merges.txt "
            "or tokenizer/tokenizer.json."
        )
    unet_config = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))
    if unet_config.get("in_channels", 4) != 4:
        raise ValueError(
            f"Base model {str(folder)!r}: its UNet takes {unet_config.get('in_channels')} input channels "
            "(an inpainting or depth model); img2img needs a 4-channel SD 1.5-family UNet."
        )
    variants = {name: _weight_variants(folder / name, stem) for name, stem in COMPONENT_WEIGHTS.items()}
    for name, found in variants.items():
        if not found:
            pickled = sorted(p.name for p in (folder / name).glob("*") if p.suffix in PICKLE_SUFFIXES)
            hint = f" (found only {', '.join(pickled)}: pickled weights are refused, convert them to safetensors)" if pickled else ""
            raise ValueError(
                f"Base model {str(folder)!r} has no safetensors weights in {name}/: expected "
                f"{name}/{COMPONENT_WEIGHTS[name]}.safetensors{hint}."
            )
    if all(None in found for found in variants.values()):
        return None
    if all("fp16" in found for found in variants.values()):
        return "fp16"
    raise ValueError(
        f"Base model {str(folder)!r} mixes weight variants {({k: sorted(map(str, v)) for k, v in variants.items()})}: "
        "every component needs the plain .safetensors file, or every one the .fp16.safetensors file."
    )


def check_safetensors_file(path: str | Path, what: str, *, key_prefixes: tuple[str, ...] = ()) -> Path:
    """`path` must be an existing, readable .safetensors file (header checked, nothing loaded).

    With `key_prefixes`, some tensor name must start with (or contain, for "lora") one of them.
    """
    path = Path(path).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ValueError(
            f"{what} {str(path)!r} is a pickled {path.suffix} file, which can run code when loaded; "
            "only .safetensors weights are accepted (convert it, e.g. with safetensors' convert script)."
        )
    if path.suffix.lower() != ".safetensors":
        raise ValueError(f"{what} {str(path)!r} must be a .safetensors file.")
    if not path.is_file():
        raise ValueError(f"{what} file {str(path)!r} does not exist.")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            keys = list(handle.keys())
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{what} {str(path)!r} is not a readable safetensors file: {error}.") from None
    if key_prefixes and not any(k.startswith(p) or (p == "lora" and "lora" in k) for k in keys for p in key_prefixes):
        raise ValueError(
            f"{what} {str(path)!r} holds none of the expected tensors (names starting with {key_prefixes}); "
            f"first keys: {keys[:3]}."
        )
    return path


def check_image_encoder_folder(folder: str | Path, ip_adapter: Path) -> Path:
    """The CLIP image encoder folder of an IP-Adapter: config.json + model.safetensors."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ValueError(
            f"IP-Adapter {str(ip_adapter)!r} needs its CLIP image encoder (CLIPVisionModelWithProjection): "
            f"no folder {str(folder)!r}. Pass image_encoder=FOLDER holding config.json + model.safetensors "
            "(in the h94/IP-Adapter layout it is models/image_encoder/ beside the weights file)."
        )
    for name in ("config.json", "model.safetensors"):
        if not (folder / name).is_file():
            raise ValueError(f"Image encoder folder {str(folder)!r} is missing {name} (expected config.json + model.safetensors).")
    return folder


def _check_config(folder: Path, component: str, config_name: str = "config.json") -> None:
    if not (folder / component).is_dir():
        raise ValueError(f"Base model {str(folder)!r} has no {component}/ subfolder; expected {EXPECTED_LAYOUT}.")
    if not (folder / component / config_name).is_file():
        raise ValueError(f"Base model {str(folder)!r} is missing {component}/{config_name}.")


def _weight_variants(component_dir: Path, stem: str) -> set[str | None]:
    found: set[str | None] = set()
    if (component_dir / f"{stem}.safetensors").is_file() or (component_dir / f"{stem}.safetensors.index.json").is_file():
        found.add(None)
    if (component_dir / f"{stem}.fp16.safetensors").is_file() or (component_dir / f"{stem}.safetensors.index.fp16.json").is_file():
        found.add("fp16")
    return found
