"""`TrainConfig`: every setting of one LoRA training run, validated in one place."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

DEVICES = ("auto", "cpu", "cuda")
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
UNET_TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_ENCODER_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "out_proj")
DEFAULT_SAMPLE_PROMPTS = (
    "{trigger}, photo of a young woman, smiling",
    "{trigger}, photo of a middle-aged man, neutral expression",
    "{trigger}, portrait photo of an old woman, brown skin",
)

# Settings that must match between a checkpoint and the run that resumes from it.
RESUME_KEYS = (
    "base_model", "rank", "alpha", "resolution", "batch_size", "learning_rate", "lr_warmup_steps",
    "seed", "train_text_encoder", "trigger_word",
)


@dataclass(frozen=True)
class TrainConfig:
    """One LoRA training run. The constructor calls `check_inputs()`.

    `device` is "auto" (CUDA when torch sees a device, else CPU), "cpu", "cuda" or "cuda:N"; inside a
    Ray worker with `num_gpus=1` the assigned card is always "cuda:0" (Ray sets CUDA_VISIBLE_DEVICES).
    `gradient_checkpointing=None` means "on with low_vram".
    """

    base_model: str
    output_dir: str
    rank: int = 16
    alpha: float | None = None  # LoRA alpha; None means alpha = rank (scale 1)
    steps: int = 1000
    batch_size: int = 1
    resolution: int = 512
    learning_rate: float = 1e-4
    lr_warmup_steps: int = 0
    max_grad_norm: float = 1.0
    seed: int = 0
    device: str = "auto"
    mixed_precision: str = "auto"  # auto: bf16 where the card supports it, else fp16; CPU always fp32
    low_vram: bool = False  # only the UNet stays on the GPU; gradient checkpointing on
    gradient_checkpointing: bool | None = None
    use_8bit_adam: bool = True  # bitsandbytes AdamW8bit on CUDA when installed
    train_text_encoder: bool = False
    trigger_word: str = "indianface"
    checkpoint_every: int = 0  # 0: no intermediate checkpoints
    keep_checkpoints: int = 2
    resume: bool = False
    sample_every: int = 0  # 0: no sample images
    sample_prompts: tuple[str, ...] = DEFAULT_SAMPLE_PROMPTS
    sample_steps: int = 25
    sample_seed: int = 1234
    cache_batch_size: int = 4  # VAE/text-encoder batch during the caching pre-pass

    def __post_init__(self) -> None:
        object.__setattr__(self, "sample_prompts", tuple(self.sample_prompts))
        self.check_inputs()

    def check_inputs(self) -> None:
        """Raise one precise ValueError per broken rule."""
        if not self.base_model:
            raise ValueError("`base_model` must be the path of a diffusers Stable Diffusion 1.x folder.")
        if not self.output_dir:
            raise ValueError("`output_dir` must be a folder path.")
        if not isinstance(self.rank, int) or not 1 <= self.rank <= 256:
            raise ValueError(f"`rank` must be an integer in [1, 256], got {self.rank!r}.")
        if self.alpha is not None and not float(self.alpha) > 0:
            raise ValueError(f"`alpha` must be positive, got {self.alpha!r}.")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"`steps` must be a positive integer, got {self.steps!r}.")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {self.batch_size!r}.")
        if not isinstance(self.resolution, int) or not (16 <= self.resolution <= 1024 and self.resolution % 8 == 0):
            raise ValueError(f"`resolution` must be a multiple of 8 in [16, 1024], got {self.resolution!r}.")
        if not 0.0 < float(self.learning_rate) < 1.0:
            raise ValueError(f"`learning_rate` must be in (0, 1), got {self.learning_rate!r}.")
        if not isinstance(self.lr_warmup_steps, int) or self.lr_warmup_steps < 0:
            raise ValueError(f"`lr_warmup_steps` must be a non-negative integer, got {self.lr_warmup_steps!r}.")
        if not float(self.max_grad_norm) > 0:
            raise ValueError(f"`max_grad_norm` must be positive, got {self.max_grad_norm!r}.")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer, got {self.seed!r}.")
        if self.device not in DEVICES and not _is_cuda_index(self.device):
            raise ValueError(f"`device` must be one of {DEVICES} or 'cuda:N', got {self.device!r}.")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"`mixed_precision` must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}.")
        if not self.trigger_word or any(c.isspace() or c == "," for c in self.trigger_word):
            raise ValueError(f"`trigger_word` must be one word without spaces or commas, got {self.trigger_word!r}.")
        for name in ("checkpoint_every", "sample_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative integer (0 turns it off), got {value!r}.")
        if not isinstance(self.keep_checkpoints, int) or self.keep_checkpoints < 1:
            raise ValueError(f"`keep_checkpoints` must be at least 1, got {self.keep_checkpoints!r}.")
        if self.sample_every and not self.sample_prompts:
            raise ValueError("`sample_prompts` must hold at least one prompt when `sample_every` is set.")
        if not isinstance(self.sample_steps, int) or self.sample_steps < 1:
            raise ValueError(f"`sample_steps` must be a positive integer, got {self.sample_steps!r}.")
        if not isinstance(self.cache_batch_size, int) or self.cache_batch_size < 1:
            raise ValueError(f"`cache_batch_size` must be a positive integer, got {self.cache_batch_size!r}.")

    @property
    def lora_alpha(self) -> float:
        return float(self.rank if self.alpha is None else self.alpha)

    @property
    def use_gradient_checkpointing(self) -> bool:
        return self.low_vram if self.gradient_checkpointing is None else self.gradient_checkpointing

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir)

    def prompts(self) -> tuple[str, ...]:
        """Sample prompts with the trigger word filled in."""
        return tuple(p.replace("{trigger}", self.trigger_word) for p in self.sample_prompts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sample_prompts"] = list(self.sample_prompts)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _is_cuda_index(device: str) -> bool:
    prefix, _, index = str(device).partition(":")
    return prefix == "cuda" and index.isdigit()
