"""`LoraTrainer`: trains the `indianface` LoRA on a Stable Diffusion 1.x UNet (no Ray needed).

One run: load the base model, add peft LoRA adapters to the UNet attention projections (and the
text encoder's when asked), cache VAE latents and text embeddings, then take `steps` optimizer
steps of the noise-prediction MSE loss. Outputs in `output_dir`:

    pytorch_lora_weights.safetensors   diffusers layout (`pipe.load_lora_weights(output_dir)`)
    <trigger>_lora_kohya.safetensors   kohya/A1111 layout with ss_* metadata
    loss_log.csv, loss_curve.png, training_summary.json
    checkpoints/step-NNNNNN/           every `checkpoint_every` steps (see actors.train.checkpoint)
    samples/step-NNNNNN/<i>.png        every `sample_every` steps

Reproducibility: every random draw is seeded from the run's seed, none depends on what ran
before. The LoRA init uses (seed, init); the example order of epoch e is a permutation seeded by
(seed, e); the latent sample, noise and timesteps of step s come from generators seeded by
(seed, s). A run resumed from a checkpoint therefore takes exactly the steps the uninterrupted run
would have taken (checkpoints also keep the global RNG states, for anything else that draws).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from actors.train import checkpoint as ckpt
from actors.train import lora_format
from actors.train.config import RESUME_KEYS, TEXT_ENCODER_TARGET_MODULES, UNET_TARGET_MODULES, TrainConfig
from actors.train.device import resolve_device, training_dtype
from actors.train.examples import TrainingExample
from actors.train.latent_cache import LatentCache, build_cache
from actors.train.loss_log import LossLog, plot_loss
from actors.train.models import ModelParts
from actors.train.optim import make_lr_scheduler, make_optimizer

log = logging.getLogger(__name__)

LOSS_CSV = "loss_log.csv"
LOSS_PNG = "loss_curve.png"
SUMMARY = "training_summary.json"
SAMPLES = "samples"
ADAPTER = "default"  # peft adapter name of the LoRA being trained
# Seed keys: (seed, kind, index, stream). Each draw has its own stream, so adding one never shifts another.
_ORDER, _STEP, _INIT = 0, 1, 2
_LATENT, _NOISE, _TIMESTEP = 0, 1, 2


@dataclass
class TrainResult:
    output_dir: str
    device: str
    num_examples: int
    start_step: int  # 0, or the checkpoint step a resumed run started from
    final_step: int
    stopped_early: bool  # True when `stop_at` ended the run before `steps`
    losses: list[float] = field(default_factory=list)  # this session's per-step losses
    lora_path: str | None = None
    kohya_path: str | None = None
    seconds: float = 0.0

    @property
    def first_loss(self) -> float | None:
        return self.losses[0] if self.losses else None

    @property
    def last_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None

    def to_dict(self) -> dict:
        return {**asdict(self), "first_loss": self.first_loss, "last_loss": self.last_loss}


class LoraTrainer:
    """Train a LoRA per `config`. `parts` replaces loading `config.base_model` (benchmarks build
    models in code); `cuda_available` replaces `torch.cuda.is_available` for device resolution."""

    def __init__(self, config: TrainConfig, parts: ModelParts | None = None,
                 cuda_available: Callable[[], bool] | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.device, cuda_available)
        self.dtype = training_dtype(self.device, config.mixed_precision)
        self.parts = parts
        self.cache: LatentCache | None = None
        self.optimizer = None
        self.lr_scheduler = None
        self.scaler = None
        self.step = 0
        self._fingerprint = ""
        self._orders: dict[int, torch.Tensor] = {}
        self.lora_configs: dict = {}  # component name → peft LoraConfig
        self._params: list[torch.nn.Parameter] = []

    # ----------------------------------------------------------------------------------- set-up
    def prepare(self, examples: Sequence[TrainingExample]) -> int:
        """Load models, add adapters, cache latents/embeddings, build the optimizer and, with
        `resume`, restore the latest checkpoint. Returns the step training starts from."""
        self._check_examples(examples)
        config = self.config
        if self.parts is None:
            self.parts = ModelParts.load(config.base_model)
        parts = self.parts
        for module in (parts.unet, parts.vae, parts.text_encoder):
            module.requires_grad_(False)
        self._add_adapters()

        # Caching pre-pass with the VAE and text encoder on the device; with low_vram they leave it
        # before the UNet arrives, so the two phases never share the card.
        _place(parts.vae, self.device, self.dtype)
        _place(parts.text_encoder, self.device, self.dtype)
        self.cache = build_cache(examples, parts.vae, parts.text_encoder, parts.tokenizer, device=self.device,
                                 dtype=self.dtype, batch_size=config.cache_batch_size,
                                 cache_text=not config.train_text_encoder)
        if config.low_vram:
            parts.vae.to("cpu")
            if config.train_text_encoder:
                warnings.warn("low_vram with train_text_encoder: the text encoder stays on the device to train.",
                              RuntimeWarning, stacklevel=2)
            else:
                parts.text_encoder.to("cpu")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        _place(parts.unet, self.device, self.dtype)
        self._cast_trainable_to_fp32()  # frozen weights in the training dtype, LoRA weights in fp32
        if config.use_gradient_checkpointing:
            parts.unet.enable_gradient_checkpointing()
            if config.train_text_encoder:
                enable = getattr(parts.text_encoder, "activation_checkpointing_enable", None)
                (enable or parts.text_encoder.gradient_checkpointing_enable)()

        self._params = self.trainable_parameters()
        parts.unet.train()
        if config.train_text_encoder:
            parts.text_encoder.train()
        self.optimizer = make_optimizer(self._params, config.learning_rate, self.device, config.use_8bit_adam)
        self.lr_scheduler = make_lr_scheduler(self.optimizer, config.lr_warmup_steps)
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None
        self._fingerprint = dataset_fingerprint(examples)
        self.step = 0
        if config.resume:
            found = ckpt.latest_checkpoint(config.output_dir)
            if found is None:
                log.warning("resume: no checkpoint in %s, starting from step 0", config.output_dir)
            else:
                self.load_checkpoint(found)
        return self.step

    def _add_adapters(self) -> None:
        """Add the LoRA adapters; their gaussian init draws from torch seeded by the run's seed
        (inside `fork_rng`, so the caller's global RNG state is left as it was). The UNet takes
        diffusers' `add_adapter`; the text encoder takes peft's `inject_adapter_in_model` directly
        (transformers' own `add_adapter` asks for a newer peft than the pinned one)."""
        from peft import LoraConfig, inject_adapter_in_model

        config = self.config
        def lora(targets: tuple[str, ...]) -> LoraConfig:
            return LoraConfig(r=config.rank, lora_alpha=config.lora_alpha, init_lora_weights="gaussian",
                              target_modules=list(targets))

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed(config.seed, _INIT))
            self.lora_configs["unet"] = lora(UNET_TARGET_MODULES)
            self.parts.unet.add_adapter(self.lora_configs["unet"], adapter_name=ADAPTER)
            if config.train_text_encoder:
                self.lora_configs["text_encoder"] = lora(TEXT_ENCODER_TARGET_MODULES)
                inject_adapter_in_model(self.lora_configs["text_encoder"], self.parts.text_encoder,
                                        adapter_name=ADAPTER)

    def _cast_trainable_to_fp32(self) -> None:
        for param in self.trainable_parameters():
            param.data = param.data.float()

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        modules = [self.parts.unet] + ([self.parts.text_encoder] if self.config.train_text_encoder else [])
        return [p for m in modules for p in m.parameters() if p.requires_grad]

    # ------------------------------------------------------------------------------------ steps
    def batch_indices(self, step: int) -> torch.Tensor:
        """Example indices of optimizer step `step` (0-based): epoch-wise seeded permutations."""
        count = len(self.cache)
        positions = range(step * self.config.batch_size, (step + 1) * self.config.batch_size)
        picked = []
        for position in positions:
            epoch, offset = divmod(position, count)
            if epoch not in self._orders:
                generator = torch.Generator().manual_seed(_seed(self.config.seed, _ORDER, epoch))
                self._orders = {epoch: torch.randperm(count, generator=generator)}
            picked.append(int(self._orders[epoch][offset]))
        return torch.tensor(picked, dtype=torch.long)

    def train_step(self, step: int) -> torch.Tensor:
        """One optimizer step at position `step`; returns its loss as a detached 0-d tensor (reading
        it waits for the device, so `fit` reads losses in groups)."""
        parts, config = self.parts, self.config
        indices = self.batch_indices(step)
        latents, noise, timesteps = self._draw(step, indices)
        latents, noise, timesteps = latents.to(self.device), noise.to(self.device), timesteps.to(self.device)
        noisy = parts.noise_scheduler.add_noise(latents, noise, timesteps)
        if parts.noise_scheduler.config.prediction_type == "v_prediction":
            target = parts.noise_scheduler.get_velocity(latents, noise, timesteps)
        else:
            target = noise

        with self._autocast():
            hidden = self._encoder_hidden_states(indices)
            prediction = parts.unet(noisy, timesteps, hidden, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(prediction.float(), target.float())

        params = self._params
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step = step + 1
        return loss.detach()

    def _draw(self, step: int, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Latent sample, noise and timesteps for a batch, from seeded CPU generators."""
        num_timesteps = self.parts.noise_scheduler.config.num_train_timesteps
        key = (self.config.seed, _STEP, step)
        latent_gen = torch.Generator().manual_seed(_seed(*key, _LATENT))
        latents = self.cache.latents(indices, latent_gen)
        noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(_seed(*key, _NOISE)))
        timesteps = torch.randint(0, num_timesteps, (len(indices),),
                                  generator=torch.Generator().manual_seed(_seed(*key, _TIMESTEP)))
        return latents, noise, timesteps

    def _encoder_hidden_states(self, indices: torch.Tensor) -> torch.Tensor:
        rows = self.cache.caption_index[indices]
        if self.cache.text_embeddings is not None:
            return self.cache.text_embeddings[rows].to(self.device, dtype=self.dtype)
        return self.parts.text_encoder(self.cache.input_ids[rows].to(self.device))[0]

    def _autocast(self):
        if self.device.type == "cuda" and self.dtype != torch.float32:
            return torch.autocast(device_type="cuda", dtype=self.dtype)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------------------ whole run
    def fit(self, examples: Sequence[TrainingExample], stop_at: int | None = None) -> TrainResult:
        """Train to `config.steps` (or stop after step `stop_at`, writing a checkpoint there) and
        write the outputs. With `resume`, continue from the latest checkpoint."""
        config = self.config
        began = time.perf_counter()
        output = config.output_path
        output.mkdir(parents=True, exist_ok=True)
        start = self.prepare(examples)
        loss_log = LossLog(output / LOSS_CSV)
        if start == 0:
            loss_log.reset()
        else:
            loss_log.truncate_after(start)
        end = config.steps if stop_at is None else min(config.steps, int(stop_at))
        losses: list[float] = []
        log.info("training %d examples on %s (%s), steps %d → %d", len(examples), self.device, self.dtype, start, end)
        report_every = max(1, min(50, config.steps // 10))
        pending: list[tuple[int, torch.Tensor, float]] = []  # (step, loss, lr) not yet read back
        tick = time.perf_counter()
        for step in range(start, end):
            pending.append((step + 1, self.train_step(step), self.lr_scheduler.get_last_lr()[0]))
            checkpoint = bool(config.checkpoint_every) and self.step % config.checkpoint_every == 0
            sample = bool(config.sample_every) and self.step % config.sample_every == 0
            if self.step % report_every == 0 or self.step == end or checkpoint:
                recent = _flush(pending, loss_log)
                losses.extend(recent)
                log.info("step %d/%d  loss %.4f (mean of last %d)  %.2f s/step", self.step, config.steps,
                         sum(recent) / len(recent), len(recent), (time.perf_counter() - tick) / len(recent))
                tick = time.perf_counter()
            if checkpoint:
                self.save_checkpoint()
            if sample:
                self.write_samples()
        stopped = end < config.steps
        result = TrainResult(output_dir=str(output), device=str(self.device), num_examples=len(examples),
                             start_step=start, final_step=self.step, stopped_early=stopped, losses=losses)
        if stopped:
            if not (config.checkpoint_every and self.step % config.checkpoint_every == 0):
                self.save_checkpoint()
        else:
            lora_path, kohya_path = self.save_lora(examples)
            result.lora_path, result.kohya_path = str(lora_path), str(kohya_path)
            plot_loss(loss_log.read(), output / LOSS_PNG)
        result.seconds = time.perf_counter() - began
        if not stopped:
            summary = {**result.to_dict(), "losses": None, "config": config.to_dict()}
            (output / SUMMARY).write_text(json.dumps(summary, indent=2))
        return result

    # -------------------------------------------------------------------------------- outputs
    def lora_state(self) -> dict[str, torch.Tensor]:
        """LoRA parameters (peft names, `….lora_A.weight`) prefixed `unet.` / `text_encoder.`, CPU float32."""
        state = {}
        for name in self.lora_configs:
            module = getattr(self.parts, name)
            state.update({f"{name}.{k}": v for k, v in adapter_state(module).items()})
        return {k: v.detach().float().cpu() for k, v in state.items()}

    def save_lora(self, examples: Sequence[TrainingExample]) -> tuple[Path, Path]:
        """Write the diffusers file and the kohya copy into the output folder."""
        config = self.config
        state = self.lora_state()
        unet_state = {k.removeprefix("unet."): v for k, v in state.items() if k.startswith("unet.")}
        te_state = {k.removeprefix("text_encoder."): v for k, v in state.items() if k.startswith("text_encoder.")}
        metadata = lora_format.kohya_metadata(
            trigger_word=config.trigger_word, rank=config.rank, alpha=config.lora_alpha, steps=self.step,
            resolution=config.resolution, base_model=config.base_model, learning_rate=config.learning_rate,
            seed=config.seed, num_images=len({e.id for e in examples}), batch_size=config.batch_size,
            mixed_precision=str(self.dtype).removeprefix("torch."), train_text_encoder=config.train_text_encoder,
            captions=[e.caption for e in examples],
        )
        lora_path = lora_format.save_diffusers_lora(
            config.output_dir, unet_state, te_state or None,
            self.lora_configs["unet"].to_dict(),
            self.lora_configs["text_encoder"].to_dict() if te_state else None,
            metadata=metadata,
        )
        diffusers_state = lora_format.peft_to_diffusers(unet_state, te_state or None)
        kohya_path = lora_format.save_kohya_lora(config.output_path / f"{config.trigger_word}_lora_kohya.safetensors",
                                                 diffusers_state, config.lora_alpha, metadata)
        return lora_path, kohya_path

    def write_samples(self) -> list[Path]:
        from actors.train.sampling import write_samples

        folder = self.config.output_path / SAMPLES / f"step-{self.step:06d}"
        return write_samples(self.parts, self.config.prompts(), folder, device=self.device, dtype=self.dtype,
                             resolution=self.config.resolution, steps=self.config.sample_steps,
                             seed=self.config.sample_seed)

    # ---------------------------------------------------------------------------- checkpoints
    def save_checkpoint(self) -> Path:
        state = {
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "rng": ckpt.capture_rng(),
        }
        meta = {"settings": {k: self.config.to_dict()[k] for k in RESUME_KEYS}, "dataset": self._fingerprint}
        path = ckpt.save_checkpoint(self.config.output_dir, self.step, self.lora_state(), state, meta)
        ckpt.prune_checkpoints(self.config.output_dir, self.config.keep_checkpoints)
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore LoRA weights, optimizer, schedulers, RNG states and the step from `path`."""
        found = ckpt.load_checkpoint(path)
        settings = self.config.to_dict()
        for key, saved in found.meta.get("settings", {}).items():
            if settings.get(key) != saved:
                raise ValueError(f"Cannot resume from {found.path}: it was trained with {key}={saved!r}, "
                                 f"this run has {key}={settings.get(key)!r}.")
        if found.meta.get("dataset") != self._fingerprint:
            raise ValueError(f"Cannot resume from {found.path}: the training set differs from the one it was "
                             "trained on (different rows, captions or filters).")
        for name in self.lora_configs:
            state = {k.removeprefix(f"{name}."): v for k, v in found.lora.items() if k.startswith(f"{name}.")}
            load_adapter_state(getattr(self.parts, name), state)
        training = found.training_state
        self.optimizer.load_state_dict(training["optimizer"])
        self.lr_scheduler.load_state_dict(training["lr_scheduler"])
        if self.scaler is not None and training.get("scaler"):
            self.scaler.load_state_dict(training["scaler"])
        ckpt.restore_rng(training["rng"])
        self.step = found.step
        log.info("resumed from %s at step %d", found.path, self.step)

    # ---------------------------------------------------------------------------------- checks
    def _check_examples(self, examples: Sequence[TrainingExample]) -> None:
        if not examples:
            raise ValueError("No training examples: the filters left no rows (or the shards hold no `ok` rows).")
        size = self.config.resolution
        for example in examples:
            if example.image.shape != (size, size, 3) or example.image.dtype != np.uint8:
                raise ValueError(f"Example {example.id!r} has image {example.image.shape} {example.image.dtype}; "
                                 f"expected ({size}, {size}, 3) uint8 at the run's resolution.")


def adapter_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The LoRA tensors of `module`'s adapter, named as peft saves them (adapter name dropped)."""
    marker = f".{ADAPTER}."
    return {k.replace(marker, "."): v for k, v in module.state_dict().items() if ".lora_" in k and marker in k}


def load_adapter_state(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy `adapter_state`-named tensors into `module`'s adapter (every LoRA tensor must be given)."""
    expected = adapter_state(module)
    if set(state) != set(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise ValueError(f"Checkpoint LoRA does not match the model: missing {missing[:3]}, unexpected {extra[:3]}.")
    with torch.no_grad():
        named = dict(module.named_parameters())
        for key, value in state.items():
            target = named[_adapter_name(key)]
            target.copy_(value.to(device=target.device, dtype=target.dtype))


def _adapter_name(key: str) -> str:
    for part in (".lora_A.", ".lora_B."):
        if part in key:
            return key.replace(part, f"{part}{ADAPTER}.")
    raise ValueError(f"Not a LoRA tensor name: {key!r}.")


def dataset_fingerprint(examples: Sequence[TrainingExample]) -> str:
    """sha256 over the examples' ids and captions in order (what a resume must see again)."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(example.id.encode())
        digest.update(b"\0")
        digest.update(example.caption.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _flush(pending: list[tuple[int, torch.Tensor, float]], loss_log: LossLog) -> list[float]:
    """Read pending losses back (one device sync), append them to the log, empty `pending`."""
    values = torch.stack([loss for _, loss, _ in pending]).float().cpu().tolist()
    for (step, _, lr), value in zip(pending, values):
        loss_log.append(step, value, lr)
    pending.clear()
    return values


def _place(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> None:
    """Move to `device`; cast only when the dtype changes (diffusers warns on every dtype cast)."""
    module.to(device)
    if next(module.parameters()).dtype != dtype:
        module.to(dtype=dtype)


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0]) >> 1
