"""Preprocess photos into Parquet shards: decode, detect, 478 landmarks, align, segment, skin tone.

    python -m jobs.preprocess --input PATH --output DIR [--num-actors N] [--batch-size N] [--resume] [--address ADDR]

PATH is a folder (recursive), a .zip/.tar(.gz) archive, or a list file. Writes DIR/shards/part-*.parquet
(one row per input, `dataset.schema.SHARD_SCHEMA`) and DIR/manifest.json. With `--imfdb` the IMFDB
annotation files under PATH are joined onto the rows.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from jobs import common
from jobs.common import StagePlan, UserError

log = logging.getLogger("jobs.preprocess")


def build_parser() -> argparse.ArgumentParser:
    parser = common.OneLineParser(prog="python -m jobs.preprocess", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, type=Path, help="photo folder, .zip/.tar(.gz) archive, or list file")
    parser.add_argument("--output", required=True, type=Path, help="output folder (shards/ and manifest.json)")
    parser.add_argument("--resume", action="store_true", help="skip inputs already in OUTPUT/shards/")
    parser.add_argument("--imfdb", action="store_true", help="join IMFDB annotations found under --input")
    from actors import options as opts
    from actors.align.upscale import UpscaleOptions
    from actors.config import PipelineConfig

    opts.add_arguments(parser.add_argument_group("limits"), PipelineConfig, exclude=("device", "render_views"))
    opts.add_arguments(parser.add_argument_group("small faces", "Real-ESRGAN super-resolution before alignment"),
                       UpscaleOptions)
    common.add_cluster_args(parser)
    return parser


def pending_sources(input_path: Path, shards_dir: Path, resume: bool) -> tuple[list[str], int]:
    """Inputs still to do, and how many were skipped as already done."""
    from dataset.shards import pending_sources as not_in_shards
    from dataset.sources import list_inputs

    sources = list_inputs(input_path)
    if not resume:
        return sources, 0
    todo = not_in_shards(sources, shards_dir)
    return todo, len(sources) - len(todo)


def run(args: argparse.Namespace) -> dict:
    started = time.time()
    common.check_cluster_args(args)
    common.absolute_paths(args, "input!", "output!")
    if not args.input.exists():
        raise UserError(f"--input {args.input} does not exist.")
    common.check_output(args.input, args.output)
    with common.OutputLock(args.output):
        common.check_output_job(args.output, "preprocess")
        return _run_locked(args, started)


def resume_settings(args: argparse.Namespace) -> dict:
    """What decides what a shard row holds: `--resume` refuses to continue a run recorded with others."""
    from actors.config import PipelineConfig

    config = PipelineConfig()
    return common.plain_settings({"input": str(args.input), "imfdb": args.imfdb, "max_bytes": config.max_bytes,
                                  "max_pixels": config.max_pixels})


def _run_locked(args: argparse.Namespace, started: float) -> dict:
    import ray
    from ray.data import ActorPoolStrategy

    from actors import options as opts
    from actors.align.upscale import UpscaleOptions
    from actors.config import PipelineConfig
    from actors.ray_actors import AlignActor

    shards_dir = args.output / "shards"
    if shards_dir.exists() and any(shards_dir.glob("*.parquet")) and not args.resume:
        raise UserError(f"{shards_dir} already holds shards: pass --resume to continue, or choose another --output.")
    settings = resume_settings(args)
    if args.resume:
        common.check_resume(args.output, settings)
    shards_dir.mkdir(parents=True, exist_ok=True)

    todo, skipped = pending_sources(args.input, shards_dir, args.resume)
    print(f"{len(todo)} inputs to process" + (f", {skipped} already done" if skipped else ""))
    annotations = None
    if args.imfdb:
        from dataset.imfdb import imfdb_annotations_by_path
        from dataset.sources import canonical_path

        annotations = imfdb_annotations_by_path(canonical_path(args.input))  # keyed like list_inputs' sources
    try:
        config = opts.from_namespace(PipelineConfig, args, upscale=opts.from_namespace(UpscaleOptions, args))
    except ValueError as error:
        raise UserError(str(error)) from None
    statuses, reasons = common.Counter(), common.Counter()
    dashboard = None
    parameters = vars(args)
    if todo:
        with common.stderr_to(None if args.verbose else args.output / common.JOB_LOG):
            dashboard = common.connect(args.address, args.verbose)
            if dashboard:
                print(f"Ray dashboard: {dashboard}")
            cluster = ray.cluster_resources()
            plan = StagePlan("alignment", args.num_actors, cpu_node=True,
                             num_cpus=common.cpus_per_actor(args, args.num_actors, common.cpu_stage_cpus()))
            common.check_resources([plan], local=len([n for n in ray.nodes() if n.get("Alive")]) == 1)
            batch_size = common.effective_batch_size(len(todo), args.num_actors, args.batch_size)
            dataset = ray.data.from_items([{"source": s} for s in todo],
                                          override_num_blocks=common.num_blocks(len(todo), args.num_actors, batch_size))
            dataset = dataset.map_batches(
                AlignActor,
                fn_constructor_kwargs={"config": config, "input_root": str(args.input), "shards_dir": str(shards_dir),
                                       "annotations": annotations},
                batch_size=batch_size, batch_format="pyarrow",
                compute=ActorPoolStrategy(size=common.pool_size(plan.actors, len(todo))), **plan.ray_args(cluster),
            )
            # Recorded before any work, so that --resume after a kill knows what this run was.
            common.write_manifest(args.output / "manifest.json", job="preprocess", parameters=parameters,
                                  statuses=common.Counter(), reasons=common.Counter(), started=started,
                                  extra={"settings": settings, "state": "running"})
            statuses, reasons = common.consume(dataset.iter_batches(batch_format="numpy", batch_size=None), len(todo),
                                               "Aligning")
    from dataset.shards import read_shards

    table = read_shards(shards_dir, columns=["status", "reason"])
    all_statuses, all_reasons = common.status_counts(table)
    manifest = common.write_manifest(
        args.output / "manifest.json", job="preprocess", parameters=parameters, statuses=all_statuses,
        reasons=all_reasons, started=started,
        extra={"settings": settings, "state": "finished", "skipped_as_done": skipped,
               "this_run": {"counts": dict(statuses), "reasons": dict(reasons)}},
    )
    lines = [f"Shards: {shards_dir}"]
    if todo and not args.verbose:
        lines.append(f"Log:    {args.output / common.JOB_LOG} (Ray and model warnings; --verbose shows them here)")
    if dashboard:
        lines.append(f"Ray dashboard (logs, per-stage progress): {dashboard}")
    common.print_summary(manifest["counts"], manifest["reasons"], lines)
    return manifest


def main(argv: list[str] | None = None) -> int:
    return common.run_main(run, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
