"""Bulk avatars: for every photo, 2D avatars in the chosen styles and/or a textured 3D head.

    python -m jobs.generate --input PATH --output DIR [--modes 2d,3d] [--style cartoon|all] [--engine offline]
        [--base-model PATH --lora FILE --ip-adapter PATH] [--flame MODEL.pkl --flame-embedding EMB.npz]
        [--num-actors N] [--batch-size N] [--resume] [--address ADDR]

PATH is a photo folder, archive or list file (aligned here first), or the output folder of
`jobs.preprocess` (its shards are used as they are). Writes DIR/avatars/<id>/..., DIR/results.parquet
(one row per input, `dataset.schema.RESULTS_SCHEMA`), DIR/manifest.json and DIR/report.html.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from jobs import common

log = logging.getLogger("jobs.generate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, type=Path, help="photos (folder/archive/list) or a preprocess output folder")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--modes", default="2d,3d", help="2d, 3d or 2d,3d (default)")
    parser.add_argument("--style", default="cartoon", help="anime, cartoon, realistic, sketch, a comma list, or all")
    parser.add_argument("--engine", default="offline", help="2D engine: offline (default, no weights) or diffusers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strength", type=float, default=0.6)
    parser.add_argument("--size", type=int, default=512, help="2D avatar side in pixels")
    parser.add_argument("--no-tone-lock", action="store_true", help="disable the skin-tone guard")
    parser.add_argument("--tone-threshold", type=float, default=4.0, help="|ΔITA| in degrees that triggers correction")
    parser.add_argument("--base-model", help="diffusers: local Stable Diffusion 1.5-family folder or cached repo id")
    parser.add_argument("--lora", help="diffusers: LoRA .safetensors (diffusers or kohya naming)")
    parser.add_argument("--ip-adapter", help="diffusers: IP-Adapter folder or .safetensors")
    parser.add_argument("--image-encoder", help="diffusers: IP-Adapter image encoder folder")
    parser.add_argument("--steps", type=int, default=None, help="diffusers: denoising steps (default 25)")
    parser.add_argument("--low-vram", default="none", choices=("none", "model_offload", "sequential_offload", "vae_tiling"))
    parser.add_argument("--device", default=None, help="torch device for diffusion/FLAME (default: cuda when the actor has a GPU, else cpu)")
    parser.add_argument("--head-engine", default="auto", choices=("auto", "canonical", "flame"))
    parser.add_argument("--flame", help="FLAME model .pkl (your licensed copy)")
    parser.add_argument("--flame-embedding", help="FLAME mediapipe_landmark_embedding.npz")
    parser.add_argument("--flame-texture", help="FLAME_texture.npz (UV layout), optional")
    parser.add_argument("--texture-size", type=int, default=1024)
    parser.add_argument("--no-views", action="store_true", help="skip the 7 rendered views")
    parser.add_argument("--no-report", action="store_true", help="skip report.html")
    parser.add_argument("--resume", action="store_true", help="skip inputs already in OUTPUT/results_parts/")
    common.add_cluster_args(parser)
    return parser


def request_from_args(args: argparse.Namespace):
    from actors.request import AvatarRequest

    options = {key: value for key, value in {
        "base_model": args.base_model, "lora": args.lora, "ip_adapter": args.ip_adapter,
        "image_encoder": args.image_encoder, "low_vram": None if args.low_vram == "none" else args.low_vram,
        "steps": args.steps,
    }.items() if value}
    try:
        return AvatarRequest(
            modes=args.modes, styles=args.style, engine=args.engine, seed=args.seed, strength=args.strength,
            size=args.size, tone_lock=not args.no_tone_lock, tone_threshold=args.tone_threshold,
            head_engine=args.head_engine, texture_size=args.texture_size, engine_options=options,
        )
    except ValueError as error:
        raise SystemExit(f"Invalid options: {error}") from None


def check_engine(request) -> None:
    """Build the 2D engine once on the driver: its constructor only validates (paths, formats), loads nothing."""
    if "2d" not in request.modes:
        return
    from actors.stylize2d.registry import create_engine

    try:
        create_engine(request.engine, **request.engine_options)
    except ValueError as error:
        raise SystemExit(f"Invalid options for the {request.engine} engine: {error}") from None


def config_from_args(args: argparse.Namespace):
    from actors.pipeline import PipelineConfig

    config = PipelineConfig(flame_model=args.flame, flame_embedding=args.flame_embedding,
                            flame_texture=args.flame_texture, device=args.device, render_views=not args.no_views)
    try:
        config.check_inputs()
    except ValueError as error:
        raise SystemExit(f"Invalid options: {error}") from None
    return config


def avatar_resources(request, args: argparse.Namespace) -> dict:
    """Diffusion actors take a whole GPU when the cluster has one; everything else runs on CPUs."""
    import ray

    wants_gpu = request.engine == "diffusers" and (args.device or "cuda").startswith("cuda")
    if wants_gpu and ray.cluster_resources().get("GPU", 0) >= 1:
        return {"num_gpus": 1}
    return {"num_cpus": args.cpus_per_actor}


def _drop_sources(done: set[str]):
    """A batch function that drops rows whose source is in `done` (for --resume over shards)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    done_array = pa.array(sorted(done), type=pa.string())

    def drop(batch: pa.Table) -> pa.Table:
        return batch.filter(pc.invert(pc.is_in(batch.column("source"), value_set=done_array)))

    return drop


def build_plan(args: argparse.Namespace, request, config, done: set[str]):
    """The Ray Data plan: inputs → (alignment actors) → avatar actors → summary rows."""
    import ray
    from ray.data import ActorPoolStrategy

    from actors.ray_actors import AlignActor, AvatarActor

    shards_dir = args.input / "shards"
    if shards_dir.is_dir():
        from dataset.shards import read_shards

        total = read_shards(shards_dir, columns=["source"]).num_rows
        dataset = ray.data.read_parquet(str(shards_dir))
        if done:
            dataset = dataset.map_batches(_drop_sources(done), batch_format="pyarrow")
        pending = total - len(done)
        args.batch_size = common.effective_batch_size(pending, args.num_actors, args.batch_size)
    else:
        from dataset.sources import list_inputs, printable_source

        sources = [s for s in list_inputs(args.input) if printable_source(s) not in done]
        pending = len(sources)
        if not sources:
            return None, 0
        args.batch_size = common.effective_batch_size(pending, args.num_actors, args.batch_size)
        dataset = ray.data.from_items([{"source": s} for s in sources],
                                      override_num_blocks=common.num_blocks(len(sources), args.num_actors, args.batch_size))
        dataset = dataset.map_batches(
            AlignActor, fn_constructor_kwargs={"config": config, "input_root": str(args.input)}, batch_size=args.batch_size, batch_format="pyarrow",
            compute=ActorPoolStrategy(size=args.num_actors), num_cpus=args.cpus_per_actor,
        )
    dataset = dataset.map_batches(
        AvatarActor,
        fn_constructor_kwargs={"request": request, "config": config, "output_dir": str(args.output.resolve())},
        batch_size=args.batch_size, batch_format="pyarrow", compute=ActorPoolStrategy(size=args.num_actors),
        **avatar_resources(request, args),
    )
    return dataset, pending


def run(args: argparse.Namespace) -> dict:
    from dataset.results import done_sources, merge_results

    started = time.time()
    common.check_cluster_args(args)
    common.absolute_paths(args, "input!", "output!", "base_model", "lora", "ip_adapter", "image_encoder", "flame",
                          "flame_embedding", "flame_texture")
    request = request_from_args(args)
    config = config_from_args(args)
    check_engine(request)
    if not args.input.exists():
        raise SystemExit(f"--input {args.input} does not exist.")
    parts_dir = args.output / "results_parts"
    if parts_dir.exists() and any(parts_dir.glob("part-*.parquet")) and not args.resume:
        raise SystemExit(f"{args.output} already holds results: pass --resume to continue, or choose another --output.")
    args.output.mkdir(parents=True, exist_ok=True)
    done = done_sources(parts_dir) if args.resume else set()

    common.connect(args.address)
    dataset, pending = build_plan(args, request, config, done)
    log.info("%d inputs to process, %d already done", pending, len(done))
    if dataset is not None and pending:
        common.consume(dataset.iter_batches(batch_format="numpy", batch_size=None), pending, "Generating")

    results = merge_results(parts_dir, args.output / "results.parquet")
    statuses, reasons = common.status_counts(results)
    manifest = common.write_manifest(
        args.output / "manifest.json", job="generate", parameters=vars(args), statuses=statuses, reasons=reasons,
        started=started, extra={"request": request.to_dict(), "skipped_as_done": len(done), "started_at": started},
    )
    if not args.no_report:
        from dataset.report import write_report

        write_report(args.output)
    log.info("Results: %s  %s", args.output / "results.parquet", manifest["counts"])
    return manifest


def main(argv: list[str] | None = None) -> int:
    common.setup_logging()
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
