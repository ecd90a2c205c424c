"""Train the `indianface` LoRA from preprocessing shards on one GPU worker.

    python -m jobs.train_lora --shards DIR --base-model PATH --output DIR [--rank 16] [--steps N]
        [--batch-size N] [--resolution 512] [--learning-rate LR] [--low-vram] [--train-text-encoder]
        [--checkpoint-every N] [--sample-every N] [--caption-template "..."] [--min-face-size PX]
        [--max-yaw DEG] [--balance-mst] [--resume] [--address ADDR] [--device auto|cpu|cuda]

Reads the `ok` rows of DIR/shards/*.parquet with Ray Data, applies the filters, captions each row
("indianface, photo of a young woman, smiling, brown skin"), and trains in one Ray actor: with
`num_gpus=1` when a GPU is wanted (`--device cuda`, or `auto` on a cluster with GPUs), else on the
CPU. Ray picks the card and sets CUDA_VISIBLE_DEVICES in the actor, so the trainer uses "cuda:0".
Only NVIDIA cards count: a laptop's Intel iGPU is invisible to CUDA and Ray, so an iGPU + RTX laptop
trains on the RTX card, and an iGPU-only laptop needs `--device cpu`. With several NVIDIA cards,
set `CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=<nvidia-smi index>` where Ray starts (this job,
or `ray start`) to offer Ray only the card to train on. A 4 GB card needs `--low-vram`.

Outputs in --output: pytorch_lora_weights.safetensors (diffusers `load_lora_weights`),
indianface_lora_kohya.safetensors (WebUI/ComfyUI), loss_log.csv, loss_curve.png, samples/,
checkpoints/, training_summary.json, manifest.json. Without --address it starts a local Ray; under
`ray job submit` it joins that cluster.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from pathlib import Path

from actors.train.captions import DEFAULT_TEMPLATE, check_template
from actors.train.config import TrainConfig
from actors.train.selection import RowFilter
from jobs import common
from jobs.common import UserError

log = logging.getLogger("jobs.train_lora")


def build_parser() -> argparse.ArgumentParser:
    parser = common.OneLineParser(prog="python -m jobs.train_lora", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", required=True, type=Path, help="preprocess output folder (holding shards/)")
    parser.add_argument("--base-model", required=True, type=Path, help="diffusers Stable Diffusion 1.x folder")
    parser.add_argument("--output", required=True, type=Path, help="output folder for the LoRA and logs")
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16; alpha = rank)")
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps (default 1000)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per step (default 1)")
    parser.add_argument("--resolution", type=int, default=512, help="training resolution in pixels (default 512)")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="AdamW learning rate (default 1e-4)")
    parser.add_argument("--lr-warmup-steps", type=int, default=0, help="linear warm-up steps (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data order, noise and timesteps (default 0)")
    parser.add_argument("--low-vram", action="store_true",
                        help="keep only the UNet on the GPU, gradient checkpointing on (for 4 GB cards)")
    parser.add_argument("--train-text-encoder", action="store_true", help="also train a LoRA on the text encoder")
    parser.add_argument("--mixed-precision", default="auto", choices=("auto", "no", "fp16", "bf16"),
                        help="CUDA precision (default auto: bf16 where supported, else fp16)")
    parser.add_argument("--checkpoint-every", type=int, default=250, help="checkpoint interval in steps (0: off)")
    parser.add_argument("--sample-every", type=int, default=250, help="sample-image interval in steps (0: off)")
    parser.add_argument("--sample-steps", type=int, default=25, help="denoising steps per sample image")
    parser.add_argument("--trigger-word", default="indianface", help="trigger word (default indianface)")
    parser.add_argument("--caption-template", default=DEFAULT_TEMPLATE,
                        help="caption format; fields {trigger} {subject} {gender} {age} {expression} {skin} {mst} "
                             f"(default {DEFAULT_TEMPLATE!r})")
    parser.add_argument("--min-face-size", type=float, default=None,
                        help="drop faces whose shorter bbox side is below this many source pixels")
    parser.add_argument("--max-yaw", type=float, default=None, help="drop faces turned more than this many degrees")
    parser.add_argument("--balance-mst", action="store_true",
                        help="resample so every Monk Skin Tone group has as many rows as the largest")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --output")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto: a GPU worker when the cluster has a GPU, else CPU (default auto)")
    parser.add_argument("--num-cpus", type=float, default=1.0, help="CPUs the trainer actor reserves (default 1)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join (default: $RAY_ADDRESS under `ray job submit`, else a local Ray)")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's TrainConfig; bad values exit with the config's own message."""
    try:
        check_template(args.caption_template)
        return TrainConfig(
            base_model=str(args.base_model), output_dir=str(args.output), rank=args.rank, steps=args.steps,
            batch_size=args.batch_size, resolution=args.resolution, learning_rate=args.learning_rate,
            lr_warmup_steps=args.lr_warmup_steps, seed=args.seed, device=args.device,
            mixed_precision=args.mixed_precision, low_vram=args.low_vram, train_text_encoder=args.train_text_encoder,
            trigger_word=args.trigger_word, checkpoint_every=args.checkpoint_every, resume=args.resume,
            sample_every=args.sample_every, sample_steps=args.sample_steps,
        )
    except ValueError as error:
        raise UserError(str(error)) from None


def shards_folder(path: Path) -> Path:
    """DIR/shards when it exists, else DIR itself; it must hold .parquet files."""
    folder = path / "shards" if (path / "shards").is_dir() else path
    if not folder.is_dir() or not any(folder.glob("*.parquet")):
        raise UserError(f"no Parquet shards in {folder} (run jobs.preprocess first).")
    return folder


def check_output(config: TrainConfig) -> None:
    from actors.train.checkpoint import list_checkpoints

    output = config.output_path
    if not config.resume and (list_checkpoints(output) or (output / "pytorch_lora_weights.safetensors").exists()):
        raise UserError(f"{output} already holds a training run: pass --resume to continue it, "
                         "or choose another --output.")


def load_examples(folder: Path, config: TrainConfig, row_filter: RowFilter, template: str, balance: bool):
    """Read, filter, decode and caption the shard rows with Ray Data; returns (examples, counts)."""
    import ray

    from actors.train.examples import READ_COLUMNS, examples_from_rows, prepare_batch
    from actors.train.selection import balance_by_mst

    dataset = ray.data.read_parquet(str(folder)).select_columns(list(READ_COLUMNS))  # projection is pushed down
    prepared = dataset.map_batches(
        prepare_batch, batch_format="pandas", batch_size=64,
        fn_kwargs={"resolution": config.resolution, "row_filter": row_filter, "trigger": config.trigger_word,
                   "template": template},
    )
    rows = prepared.take_all()
    counts = Counter({"rows": len(rows)})
    counts.update(f"dropped_{row['dropped']}" for row in rows if row["dropped"])
    examples = examples_from_rows(rows, config.resolution)
    counts["kept"] = len(examples)
    if balance and examples:
        examples = [examples[i] for i in balance_by_mst([e.mst for e in examples], seed=config.seed)]
    counts["training_examples"] = len(examples)
    return examples, counts


def wants_gpu(device: str) -> bool:
    """cuda → yes, cpu → no, auto → whether the cluster has a GPU."""
    import ray

    if device == "auto":
        return ray.cluster_resources().get("GPU", 0) >= 1
    return device == "cuda"


def run(args: argparse.Namespace) -> dict:
    import ray

    from actors.train.models import check_base_model
    from actors.train.ray_worker import trainer_actor

    started = time.time()
    common.absolute_paths(args, "shards!", "output!", "base_model")
    config = config_from_args(args)
    try:
        row_filter = RowFilter(min_face_size=args.min_face_size, max_yaw=args.max_yaw)
        check_base_model(config.base_model)
    except ValueError as error:
        raise UserError(str(error)) from None
    if args.num_cpus <= 0:
        raise UserError("--num-cpus must be positive.")
    folder = shards_folder(args.shards)
    check_output(config)
    config.output_path.mkdir(parents=True, exist_ok=True)

    common.connect(args.address, getattr(args, "verbose", False))
    examples, counts = load_examples(folder, config, row_filter, args.caption_template, args.balance_mst)
    log.info("Training rows: %s", dict(counts))
    if not examples:
        raise UserError(f"no training rows left in {folder}: {dict(counts)}.")

    use_gpu = wants_gpu(config.device)
    actor = trainer_actor(config, use_gpu=use_gpu, num_cpus=args.num_cpus)
    log.info("Trainer actor: num_gpus=%d; placement %s", int(use_gpu), ray.get(actor.placement.remote()))
    result = ray.get(actor.fit.remote(ray.put(examples)))
    ray.kill(actor)
    log.info("Finished at step %d on %s: loss %.4f → %.4f; LoRA %s", result["final_step"], result["device"],
             result["first_loss"] or float("nan"), result["last_loss"] or float("nan"), result["lora_path"])
    statuses = Counter({"ok": counts["kept"], "dropped": counts["rows"] - counts["kept"]})
    reasons = Counter({k.removeprefix("dropped_"): v for k, v in counts.items() if k.startswith("dropped_")})
    common.write_manifest(
        config.output_path / "manifest.json", job="train_lora",
        parameters={**vars(args), "config": config.to_dict()}, statuses=statuses, reasons=reasons, started=started,
        extra={"training_examples": counts["training_examples"], "use_gpu": use_gpu,
               "result": {k: v for k, v in result.items() if k != "losses"}},
    )
    return result


def main(argv: list[str] | None = None) -> int:
    return common.run_main(run, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
