"""Training checkpoints: everything needed to resume a run exactly where it stopped.

`OUTPUT/checkpoints/step-000100/` holds
- `lora.safetensors`: the LoRA parameters (peft keys, `unet.` / `text_encoder.` prefixed);
- `training_state.pt`: optimizer, LR scheduler, grad scaler and RNG states (tensors and plain
  Python values only; loaded with `torch.load(weights_only=True)`, so no pickled code runs);
- `trainer_state.json`: the step, the settings a resume must match, the training-set fingerprint.
A checkpoint is written into a temporary folder and renamed, so a killed run never leaves half a one.
"""
from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINTS = "checkpoints"
LORA_FILE = "lora.safetensors"
STATE_FILE = "training_state.pt"
META_FILE = "trainer_state.json"


@dataclass
class Checkpoint:
    step: int
    lora: dict[str, torch.Tensor]
    training_state: dict[str, Any]
    meta: dict[str, Any]
    path: Path


def checkpoint_path(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"step-{step:06d}"


def save_checkpoint(output_dir: str | Path, step: int, lora: dict[str, torch.Tensor],
                    training_state: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write checkpoint `step` atomically and return its folder."""
    from safetensors.torch import save_file

    final = checkpoint_path(output_dir, step)
    temporary = final.with_name(final.name + ".partial")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    save_file({k: v.detach().to("cpu").contiguous() for k, v in lora.items()}, str(temporary / LORA_FILE))
    torch.save(training_state, temporary / STATE_FILE)
    (temporary / META_FILE).write_text(json.dumps({**meta, "step": step}, indent=2, sort_keys=True))
    shutil.rmtree(final, ignore_errors=True)
    temporary.rename(final)
    return final


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoint folders, oldest first."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(".partial")
             and (p / META_FILE).is_file() and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint folder (CPU tensors)."""
    from safetensors.torch import load_file

    path = Path(path)
    meta = json.loads((path / META_FILE).read_text())
    state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    return Checkpoint(step=int(meta["step"]), lora=load_file(str(path / LORA_FILE)), training_state=state,
                      meta=meta, path=path)


def prune_checkpoints(output_dir: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints."""
    for old in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def capture_rng() -> dict[str, Any]:
    """Global RNG states (torch CPU/CUDA, Python, NumPy) as tensors and plain values."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
