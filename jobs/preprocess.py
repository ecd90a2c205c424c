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

log = logging.getLogger("jobs.preprocess")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs.preprocess", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, type=Path, help="photo folder, .zip/.tar(.gz) archive, or list file")
    parser.add_argument("--output", required=True, type=Path, help="output folder (shards/ and manifest.json)")
    parser.add_argument("--resume", action="store_true", help="skip inputs already in OUTPUT/shards/")
    parser.add_argument("--imfdb", action="store_true", help="join IMFDB annotations found under --input")
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
    import ray
    from ray.data import ActorPoolStrategy

    from actors.pipeline import PipelineConfig
    from actors.ray_actors import AlignActor

    started = time.time()
    common.check_cluster_args(args)
    common.absolute_paths(args, "input!", "output!")
    if not args.input.exists():
        raise SystemExit(f"--input {args.input} does not exist.")
    shards_dir = args.output / "shards"
    if shards_dir.exists() and any(shards_dir.glob("*.parquet")) and not args.resume:
        raise SystemExit(f"{shards_dir} already holds shards: pass --resume to continue, or choose another --output.")
    shards_dir.mkdir(parents=True, exist_ok=True)

    todo, skipped = pending_sources(args.input, shards_dir, args.resume)
    log.info("%d inputs to process, %d already done", len(todo), skipped)
    annotations = None
    if args.imfdb:
        from dataset.imfdb import imfdb_annotations_by_path
        from dataset.sources import canonical_path

        annotations = imfdb_annotations_by_path(canonical_path(args.input))  # keyed like list_inputs' sources
    statuses, reasons = common.Counter(), common.Counter()
    if todo:
        common.connect(args.address)
        config = PipelineConfig()
        args.batch_size = common.effective_batch_size(len(todo), args.num_actors, args.batch_size)
        dataset = ray.data.from_items([{"source": s} for s in todo],
                                      override_num_blocks=common.num_blocks(len(todo), args.num_actors, args.batch_size))
        dataset = dataset.map_batches(
            AlignActor,
            fn_constructor_kwargs={"config": config, "input_root": str(args.input), "shards_dir": str(shards_dir),
                                   "annotations": annotations},
            batch_size=args.batch_size, batch_format="pyarrow",
            compute=ActorPoolStrategy(size=args.num_actors), num_cpus=args.cpus_per_actor,
        )
        statuses, reasons = common.consume(dataset.iter_batches(batch_format="numpy", batch_size=None), len(todo),
                                           "Aligning")
    from dataset.shards import read_shards

    table = read_shards(shards_dir, columns=["status", "reason"])
    all_statuses, all_reasons = common.status_counts(table)
    manifest = common.write_manifest(
        args.output / "manifest.json", job="preprocess", parameters=vars(args), statuses=all_statuses,
        reasons=all_reasons, started=started,
        extra={"skipped_as_done": skipped, "this_run": {"counts": dict(statuses), "reasons": dict(reasons)}},
    )
    log.info("Shards in %s: %s", shards_dir, manifest["counts"])
    return manifest


def main(argv: list[str] | None = None) -> int:
    common.setup_logging()
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
