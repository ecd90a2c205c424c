"""The `diffusers` engine: Stable Diffusion 1.5-family img2img with the user's own weights.

Base model from a local diffusers folder or the local Hugging Face cache (never downloaded), the
`indianface` LoRA through `load_lora_weights` (diffusers or kohya/A1111 key naming, safetensors only),
IP-Adapter through `load_ip_adapter` with the aligned face crop as the identity image, one prompt preset per
style (see `prompts`), one seed per face, faces generated in batches of `batch_size`.

Device: CUDA when torch sees a card (or when asked for by name), else CPU; fp16 on CUDA, fp32 on CPU;
attention is PyTorch SDPA (diffusers' default `AttnProcessor2_0`; xformers is not used). Laptops with an
Intel iGPU beside the NVIDIA card: the iGPU is not a CUDA device, so `cuda` is the NVIDIA card; to pin one
card among several, start the job with `CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=<nvidia-smi index>`
(Ray sets CUDA_VISIBLE_DEVICES for `num_gpus=1` actors).
Small cards (4 GB): `low_vram="model_offload"` (whole models move to the GPU in turn), or
`"sequential_offload"` (layer by layer: least memory, slowest); both also tile and slice the VAE, which
`"vae_tiling"` does alone. Offloading needs CUDA: on CPU it is refused with a ValueError.

Usage:
    engine = DiffusersStylizer(DiffusersOptions(base_model="models/sd15", lora="out/pytorch_lora_weights.safetensors"))
    images = engine.stylize(faces, "anime", request, seeds)   # loads the pipeline on first use
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Sequence

import numpy as np

from actors.options import check_bounds, option
from actors.stylize2d import prompts
from actors.stylize2d.device import (
    LOW_VRAM_MODES,
    OFFLOAD_MODES,
    check_low_vram,
    enable_low_vram,
    resolve_device,
    resolve_dtype,
    torch_dtype,
)
from actors.stylize2d.diffusers_weights import (
    check_base_model_folder,
    check_image_encoder_folder,
    check_safetensors_file,
    resolve_base_model,
)

if TYPE_CHECKING:
    from dataset.face import AlignedFace
    from actors.request import AvatarRequest
    from actors.stylize2d.protocol import StylizedImage

LORA_ADAPTER_NAME = "indianface"


@dataclass(frozen=True)
class DiffusersOptions:
    """Stable Diffusion 1.5-family img2img with your own weights (never downloaded)."""

    FLAG_PREFIX: ClassVar[str] = "diffusers-"

    base_model: str | None = option(None, help="Stable Diffusion 1.5-family model: a diffusers folder, or a repo id "
                                               "already in your Hugging Face cache", flag="base-model", metavar="PATH")
    lora: str | None = option(None, help="LoRA .safetensors (diffusers or kohya naming), e.g. the indianface LoRA",
                              flag="lora", metavar="FILE")
    lora_scale: float = option(0.8, help="LoRA strength", minimum=0.0, maximum=2.0)
    ip_adapter: str | None = option(None, help="IP-Adapter weights file (.safetensors)", flag="ip-adapter",
                                    metavar="FILE")
    ip_adapter_scale: float = option(0.6, help="IP-Adapter strength", minimum=0.0, maximum=2.0)
    image_encoder: str | None = option(None, help="IP-Adapter CLIP image-encoder folder (default: image_encoder/ "
                                                  "beside the IP-Adapter file)", flag="image-encoder", metavar="DIR")
    dtype: str | None = option(None, help="torch dtype (default: float16 on CUDA, float32 on CPU)",
                               choices=("float16", "bfloat16", "float32"))
    low_vram: str = option("none", help="small GPUs: offload models or tile the VAE", choices=LOW_VRAM_MODES,
                           flag="low-vram")
    batch_size: int = option(4, help="faces per pipeline call", minimum=1, maximum=256)
    steps: int = option(25, help="denoising steps", minimum=1, maximum=500, flag="steps")
    guidance_scale: float = option(7.0, help="classifier-free guidance scale", minimum=0.0, maximum=50.0)
    resolution: int | None = option(None, help="pipeline working size in pixels (default: the avatar size)",
                                    minimum=32, maximum=2048)
    trigger_word: str = option(prompts.TRIGGER_WORD, help="the LoRA's trigger word")

    def check_inputs(self) -> None:
        """One precise ValueError per broken rule; the weight files are checked (headers only, nothing loaded)."""
        if not self.base_model:
            raise ValueError("the diffusers engine needs a Stable Diffusion base model: pass --base-model PATH "
                             "(or set AVATAR_BASE_MODEL).")
        check_bounds(self)
        resolve_base_model(self.base_model)
        if self.lora is not None:
            check_safetensors_file(self.lora, "LoRA", key_prefixes=("lora",))
        if self.ip_adapter is not None:
            _ip_adapter_files(self.ip_adapter, self.image_encoder)
        elif self.image_encoder is not None:
            raise ValueError("`image_encoder` is only used with `ip_adapter`; pass the IP-Adapter weights file too.")
        if self.low_vram not in LOW_VRAM_MODES:
            raise ValueError(f"`low_vram` must be one of {LOW_VRAM_MODES}, got {self.low_vram!r}.")
        if self.resolution is not None and self.resolution % 8:
            raise ValueError(f"`resolution` must be a multiple of 8, got {self.resolution}.")
        if not isinstance(self.trigger_word, str) or not self.trigger_word.strip():
            raise ValueError("`trigger_word` must be a non-empty string.")


def _ip_adapter_files(weights: str | Path, encoder: str | Path | None) -> tuple[Path, Path]:
    """(IP-Adapter weights file, image-encoder folder), checked."""
    if Path(weights).is_dir():
        raise ValueError(
            f"`ip_adapter` must be the IP-Adapter weights file (e.g. models/ip-adapter_sd15.safetensors), "
            f"got the folder {str(weights)!r}."
        )
    weights = check_safetensors_file(weights, "IP-Adapter", key_prefixes=("image_proj.", "ip_adapter."))
    folder = encoder if encoder is not None else weights.parent / "image_encoder"
    return weights, check_image_encoder_folder(folder, weights)


class DiffusersStylizer:
    """Stable Diffusion img2img avatars; validated in the constructor, loaded by `load()` or the first `stylize()`."""

    name = "diffusers"
    styles = prompts.STYLES
    Options = DiffusersOptions

    def __init__(self, options: DiffusersOptions | None = None, *, device: str | None = None) -> None:
        """`options`: see `DiffusersOptions`. `device` None picks CUDA (fp16) when torch sees a card, else CPU (fp32)."""
        options = options or DiffusersOptions()
        options.check_inputs()
        self.options = options
        self.model_dir = resolve_base_model(options.base_model)
        self.variant = check_base_model_folder(self.model_dir)
        self.lora = check_safetensors_file(options.lora, "LoRA", key_prefixes=("lora",)) if options.lora else None
        self.ip_adapter, self.image_encoder = (_ip_adapter_files(options.ip_adapter, options.image_encoder)
                                               if options.ip_adapter else (None, None))
        self.lora_scale, self.ip_adapter_scale = options.lora_scale, options.ip_adapter_scale
        self.batch_size, self.steps, self.guidance_scale = options.batch_size, options.steps, options.guidance_scale
        self.resolution, self.trigger_word = options.resolution, options.trigger_word
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(options.dtype, self.device)
        self.low_vram = check_low_vram(options.low_vram, self.device)
        self._pipe = None

    @classmethod
    def wants_gpu(cls, options: DiffusersOptions, device: str | None) -> bool:
        """Diffusion actors ask for a GPU unless told to run on the CPU."""
        return not (device or "cuda").startswith("cpu")

    # ---------------------------------------------------------------- validation
    def check_stylize_inputs(
        self, faces: Sequence[AlignedFace], style: str, request: AvatarRequest, seeds: Sequence[int]
    ) -> None:
        """One precise ValueError per broken rule for a `stylize` call."""
        if style not in self.styles:
            raise ValueError(f"Unknown style {style!r} for the diffusers engine: choose from {self.styles}.")
        if len(seeds) != len(faces):
            raise ValueError(f"Need one seed per face: got {len(seeds)} seeds for {len(faces)} faces.")
        for seed in seeds:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
                raise ValueError(f"Seeds must be integers in [0, 2**63), got {seed!r}.")
        for index, face in enumerate(faces):
            crop = np.asarray(face.crop)
            if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
                raise ValueError(f"Face {index}: crop must be an (H, W, 3) uint8 RGB array, got {crop.dtype} {crop.shape}.")
        if int(self.steps * float(request.strength)) < 1:
            raise ValueError(
                f"steps={self.steps} x strength={request.strength} leaves no denoising step; raise one of them."
            )

    # ---------------------------------------------------------------- loading
    @property
    def is_loaded(self) -> bool:
        """Whether the pipeline is in memory (the constructor only validates)."""
        return self._pipe is not None

    @property
    def pipeline(self):
        """The loaded diffusers pipeline (loads it on first access)."""
        return self.load()._pipe

    def load(self) -> DiffusersStylizer:
        """Load the pipeline, LoRA and IP-Adapter from local files only, and place it on the device."""
        if self._pipe is not None:
            return self
        from diffusers import StableDiffusionImg2ImgPipeline

        dtype = torch_dtype(self.dtype)
        image_encoder = None
        if self.ip_adapter is not None:
            from transformers import CLIPVisionModelWithProjection

            image_encoder = CLIPVisionModelWithProjection.from_pretrained(
                self.image_encoder, dtype=dtype, local_files_only=True, use_safetensors=True
            )
        pipe = StableDiffusionImg2ImgPipeline.from_pretrained(
            self.model_dir,
            dtype=dtype,
            variant=self.variant,
            use_safetensors=True,
            local_files_only=True,
            safety_checker=None,
            feature_extractor=None,
            image_encoder=image_encoder,
            requires_safety_checker=False,
        )
        if self.low_vram not in OFFLOAD_MODES:
            pipe.to(self.device)  # before the adapters, so LoRA fusing runs on the device
        if self.lora is not None:
            self._load_lora(pipe)
        if self.ip_adapter is not None:
            pipe.load_ip_adapter(
                str(self.ip_adapter.parent),
                subfolder="",
                weight_name=self.ip_adapter.name,
                image_encoder_folder=None,
                local_files_only=True,
            )
            pipe.set_ip_adapter_scale(self.ip_adapter_scale)
        enable_low_vram(pipe, self.device, self.low_vram)
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe
        return self

    def _load_lora(self, pipe) -> None:
        """Load the LoRA (diffusers or kohya naming) and fuse it at `lora_scale`: no extra matmuls per step."""
        try:
            pipe.load_lora_weights(str(self.lora), adapter_name=LORA_ADAPTER_NAME, local_files_only=True)
        except (RuntimeError, ValueError, KeyError) as error:
            raise ValueError(
                f"LoRA {str(self.lora)!r} does not fit the base model {str(self.model_dir)!r} "
                f"(made for another architecture?): {str(error).splitlines()[0]}"
            ) from error
        if not any(LORA_ADAPTER_NAME in names for names in pipe.get_list_adapters().values()):
            raise ValueError(f"LoRA {str(self.lora)!r} matched no UNet or text-encoder layer of the base model.")
        pipe.fuse_lora(lora_scale=self.lora_scale, adapter_names=[LORA_ADAPTER_NAME])
        pipe.unload_lora_weights()

    def close(self) -> None:
        """Drop the pipeline and give its GPU memory back."""
        if self._pipe is None:
            return
        self._pipe = None
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def __enter__(self) -> DiffusersStylizer:
        return self.load()

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- generation
    def stylize(
        self, faces: Sequence[AlignedFace], style: str, request: AvatarRequest, seeds: Sequence[int]
    ) -> list[StylizedImage]:
        """One avatar per face, in order, `request.size` square; faces run in batches of `batch_size`."""
        from actors.stylize2d.protocol import StylizedImage

        self.check_stylize_inputs(faces, style, request, seeds)
        if not faces:
            return []
        working = self.resolution or request.size
        results: list[StylizedImage] = []
        for start in range(0, len(faces), self.batch_size):
            stop = start + self.batch_size
            images = self._generate(faces[start:stop], seeds[start:stop], style, float(request.strength), working)
            results.extend(StylizedImage(image=_resize(image, request.size), landmarks=None) for image in images)
        return results

    def _generate(
        self, faces: Sequence[AlignedFace], seeds: Sequence[int], style: str, strength: float, size: int
    ) -> list[np.ndarray]:
        import torch
        from PIL import Image

        pipe = self.pipeline
        prompt_pairs = [prompts.build_prompt(style, face.mst, trigger_word=self.trigger_word) for face in faces]
        images = [Image.fromarray(_resize(np.asarray(face.crop), size)) for face in faces]
        # One generator per face on the execution device: an image depends on its seed, not on its batch.
        generators = [torch.Generator(device=self.device).manual_seed(int(seed)) for seed in seeds]
        with torch.inference_mode():
            extra = {}
            if self.ip_adapter is not None:
                extra["ip_adapter_image_embeds"] = self._identity_embeds(images)
            output = pipe(
                prompt=[p.prompt for p in prompt_pairs],
                negative_prompt=[p.negative_prompt for p in prompt_pairs],
                image=images,
                strength=strength,
                num_inference_steps=self.steps,
                guidance_scale=self.guidance_scale,
                generator=generators,
                output_type="np",
                **extra,
            )
        return [(np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8) for image in output.images]

    def _identity_embeds(self, images: list) -> list:
        """IP-Adapter embeddings, one identity image per prompt: [(2B or B, 1, ...)] (negatives first under CFG)."""
        import torch
        from diffusers.models.embeddings import ImageProjection

        pipe = self._pipe
        projection = pipe.unet.encoder_hid_proj.image_projection_layers[0]
        hidden_states = not isinstance(projection, ImageProjection)
        # One image per encoder call, so an item's embedding does not depend on its batch neighbours.
        pairs = [pipe.encode_image([image], pipe._execution_device, 1, hidden_states) for image in images]
        positive = torch.cat([pair[0] for pair in pairs])[:, None]
        negative = torch.cat([pair[1] for pair in pairs])[:, None]
        if self.guidance_scale > 1.0:
            return [torch.cat([negative, positive], dim=0)]
        return [positive]


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    """Square RGB uint8 image at `size` px (area filter down, cubic up; untouched when already there)."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    import cv2

    shrinking = image.shape[0] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
