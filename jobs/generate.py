"""Bulk avatars: for every photo, 2D avatars in the chosen styles and/or a textured, rigged 3D head.

    python -m jobs.generate --input PATH --output DIR [--modes 2d,3d] [--style cartoon|all] [--engine offline]
        [--base-model PATH --lora FILE --ip-adapter FILE] [--head-engine auto|... --flame FILE --flame-embedding FILE]
        [--num-actors N] [--batch-size N] [--resume] [--address ADDR]

PATH is a photo folder, archive or list file (aligned here first), or the output folder of
`jobs.preprocess` (recognised by its manifest; its shards are used as they are). Three Ray stages, each
with its own actor pool: alignment (CPU) → 2D (a GPU when the engine wants one) → 3D (CPU). Writes
DIR/avatars/<id>/..., DIR/results.parquet (one row per input, `dataset.schema.RESULTS_SCHEMA`),
DIR/manifest.json, DIR/report.html and DIR/job.log (what Ray and native libraries print; the console
shows it with --verbose).

Identical photos under different names are computed once per run (`actors.ray_actors.ContentClaims`).
One job per output folder at a time (`common.OutputLock`); `--resume` continues only a run recorded with
the same settings (`resume_settings`, recorded in the manifest before any work). Every mistake a user
can make ends as one line on stderr and exit code 2, before any work.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from jobs import common
from jobs.common import StagePlan, UserError

log = logging.getLogger("jobs.generate")

# Engine options that change how fast, not what, an engine computes: --resume may change them.
THROUGHPUT_OPTIONS = ("batch_size",)


def build_parser(catalog=None) -> argparse.ArgumentParser:
    """The CLI, generated from `AvatarRequest` and the engines' options (choices from `catalog`)."""
    from actors import options as opts
    from actors.config import add_config_arguments
    from actors.engines import default_catalog
    from actors.request import AvatarRequest

    catalog = catalog or default_catalog()
    parser = common.OneLineParser(prog="python -m jobs.generate", description=__doc__.split("\n\n")[0])
    io = parser.add_argument_group("input and output")
    io.add_argument("--input", required=True, type=Path, help="photos (folder, .zip/.tar(.gz) archive or list file), "
                                                              "or a jobs.preprocess output folder")
    io.add_argument("--output", required=True, type=Path, help="output folder (must not be inside --input)")
    io.add_argument("--resume", action="store_true", help="continue a run in --output: skip inputs it already finished")
    io.add_argument("--no-report", action="store_true", help="skip report.html")
    avatar = parser.add_argument_group("avatars")
    opts.add_arguments(avatar, AvatarRequest, catalog.choices(), defaults=AvatarRequest(modes=("2d", "3d"), styles=("cartoon",)))
    add_config_arguments(parser, catalog)
    common.add_cluster_args(parser)
    parser.add_argument("--fuse-avatar-stages", action="store_true",
                        help="run 2D and 3D in one actor pool instead of two (fewer processes on one small machine; "
                             "the 3D work then runs where the 2D engine runs)")
    parser.set_defaults(catalog=catalog)
    return parser


def request_from_args(args: argparse.Namespace):
    from actors import options as opts
    from actors.request import AvatarRequest

    try:
        return opts.from_namespace(AvatarRequest, args)
    except ValueError as error:
        raise UserError(str(error)) from None


def config_from_args(args: argparse.Namespace):
    from actors.config import config_from_args as build

    try:
        return build(args, args.catalog)
    except ValueError as error:
        raise UserError(str(error)) from None


def check_engines(request, config, catalog):
    """The request resolved, and its engines checked here on the driver (validates files, loads nothing)."""
    from actors.pipeline import check_engines as check

    try:
        return check(request, config, catalog)
    except (ValueError, FileNotFoundError) as error:
        raise UserError(str(error)) from None


def resume_settings(args: argparse.Namespace, request, config, catalog) -> dict:
    """Everything that decides what a results row holds: the input, every request field, the engines that
    run (the head engine as resolved) and their options, the input limits. `--resume` refuses to continue
    a run recorded with other values (`common.check_resume`)."""
    settings = {"input": str(args.input), "max_bytes": config.max_bytes, "max_pixels": config.max_pixels}
    settings.update(request.to_dict())
    settings["modes"] = sorted(request.modes)
    if "2d" in request.modes:
        settings.update(_engine_settings(catalog.stylizers, request.engine, config))
    if "3d" in request.modes:
        settings["head_engine"] = catalog.resolve_head(request.head_engine, config.engine_options)
        settings["views"] = config.render_views
        settings.update(_engine_settings(catalog.heads, settings["head_engine"], config))
    return common.plain_settings(settings)


def _engine_settings(registry, name: str, config) -> dict:
    options = _options_dict(config.options_for(registry.engine_class(name)))
    return {f"{name}.{key}": value for key, value in options.items() if key not in THROUGHPUT_OPTIONS}


def stage_plans(args: argparse.Namespace, request, config, catalog, aligning: bool) -> list[StagePlan]:
    """The actor pools of this run: alignment, 2D and 3D as needed, sized to fit the cluster."""
    import ray

    cluster = ray.cluster_resources()
    wants_gpu = ("2d" in request.modes and catalog.stylizers[request.engine].wants_gpu(
        config.options_for(catalog.stylizers[request.engine]), config.device) and cluster.get("GPU", 0) >= 1)
    fused = getattr(args, "fuse_avatar_stages", False) and {"2d", "3d"} <= set(request.modes)
    cpu_stages = [name for name, needed in (("alignment", aligning), ("2D", "2d" in request.modes and not wants_gpu),
                                            ("3D", "3d" in request.modes and not fused)) if needed]
    cpus = common.cpus_per_actor(args, args.num_actors * len(cpu_stages), common.cpu_stage_cpus())
    plans = []
    if aligning:
        plans.append(StagePlan("alignment", args.num_actors, num_cpus=cpus, cpu_node=True))
    if fused:
        gpu_actors = max(1, min(args.num_actors, int(cluster.get("GPU", 0))))
        plans.append(StagePlan("2D+3D", gpu_actors, num_gpus=1) if wants_gpu else
                     StagePlan("2D+3D", args.num_actors, num_cpus=cpus, cpu_node=True))
        return plans
    if "2d" in request.modes:
        gpu_actors = max(1, min(args.num_actors, int(cluster.get("GPU", 0))))  # one GPU each
        plans.append(StagePlan("2D", gpu_actors, num_gpus=1) if wants_gpu else
                     StagePlan("2D", args.num_actors, num_cpus=cpus, cpu_node=True))
    if "3d" in request.modes:
        plans.append(StagePlan("3D", args.num_actors, num_cpus=cpus, cpu_node=True))
    return plans


@dataclass(frozen=True)
class Pending:
    """The inputs a run still has to do: sources to align, or (a preprocess output) its shard folder."""

    count: int
    sources: list[str] | None = None  # photos, archives, list files: aligned in this run
    shards_dir: Path | None = None  # a jobs.preprocess output: its rows are used as they are


def pending_inputs(input_path: Path, done: set[str]) -> Pending:
    """What is left to do; reads names (or shard sources), not photos, and needs no Ray."""
    from dataset.shards import read_shards
    from dataset.sources import is_preprocess_output
    from dataset.sources import list_inputs, printable_source

    if is_preprocess_output(input_path):
        if (common.read_manifest(input_path) or {}).get("state") == "running":
            raise UserError(f"--input {input_path} is the output of a preprocess run that has not finished (it is "
                            "still running, or was stopped: finish it with jobs.preprocess --resume).")
        shards_dir = input_path / "shards"
        sources = read_shards(shards_dir, columns=["source"]).column("source").to_pylist()
        return Pending(count=sum(1 for s in sources if s not in done), shards_dir=shards_dir)
    sources = [s for s in list_inputs(input_path) if printable_source(s) not in done]
    return Pending(count=len(sources), sources=sources)


def build_plan(args: argparse.Namespace, request, config, pending: Pending, done: set[str], local: bool):
    """The Ray Data plan: inputs → (alignment actors) → 2D actors → 3D actors → summary rows, and the
    content-claims actor the first avatar stage asks (identical photos are computed once)."""
    import ray
    from ray.data import ActorPoolStrategy

    from actors.ray_actors import AlignActor, AvatarActor, Head3DActor, Stylize2DActor, start_content_claims
    from dataset.results import content_holders

    catalog = args.catalog
    plans = stage_plans(args, request, config, catalog, aligning=pending.shards_dir is None)
    common.check_resources(plans, local)
    cluster = ray.cluster_resources()
    batch_size = common.effective_batch_size(pending.count, args.num_actors, args.batch_size)
    if pending.shards_dir is not None:
        dataset = ray.data.read_parquet(str(pending.shards_dir))
        if done:
            dataset = dataset.map_batches(_drop_sources(done), batch_format="pyarrow")
    else:
        dataset = ray.data.from_items([{"source": s} for s in pending.sources],
                                      override_num_blocks=common.num_blocks(pending.count, args.num_actors, batch_size))
    output = str(args.output.resolve())
    # Seeded with the runs this one resumes: an input identical to one already done is not computed again.
    claims = start_content_claims(content_holders(args.output / "results_parts") if done else {})
    actor_classes = {"2D": Stylize2DActor, "3D": Head3DActor, "2D+3D": AvatarActor}

    def pool(plan) -> ActorPoolStrategy:
        return ActorPoolStrategy(size=common.pool_size(plan.actors, pending.count))

    avatar_stages = [(plan, actor_classes[plan.name]) for plan in plans if plan.name != "alignment"]
    for plan in plans:
        if plan.name == "alignment":
            dataset = dataset.map_batches(
                AlignActor, fn_constructor_kwargs={"config": config, "input_root": str(args.input)},
                batch_size=batch_size, batch_format="pyarrow", compute=pool(plan),
                **plan.ray_args(cluster))
    for index, (plan, cls) in enumerate(avatar_stages):
        dataset = dataset.map_batches(
            cls, fn_constructor_kwargs={"request": request, "config": config, "output_dir": output,
                                        "last": index == len(avatar_stages) - 1, "catalog": catalog,
                                        "claims": claims if index == 0 else None},
            batch_size=batch_size, batch_format="pyarrow", compute=pool(plan),
            **plan.ray_args(cluster))
    return dataset, claims


def _drop_sources(done: set[str]):
    """A batch function that drops rows whose source is in `done` (for --resume over shards)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    done_array = pa.array(sorted(done), type=pa.string())

    def drop(batch: pa.Table) -> pa.Table:
        return batch.filter(pc.invert(pc.is_in(batch.column("source"), value_set=done_array)))

    return drop


def run(args: argparse.Namespace) -> dict:
    from dataset.results import merge_results, parts_sources

    started = time.time()
    common.check_cluster_args(args)
    common.absolute_paths(args, "input!", "output!", *_path_options(args))
    request = request_from_args(args)
    config = config_from_args(args)
    request = check_engines(request, config, args.catalog)
    if not args.input.exists():
        raise UserError(f"--input {args.input} does not exist.")
    common.check_output(args.input, args.output)
    with common.OutputLock(args.output):
        common.check_output_job(args.output, "generate")
        parts_dir = args.output / "results_parts"
        if any(parts_dir.glob("part-*.parquet")) and not args.resume:
            raise UserError(f"{args.output} already holds results: pass --resume to continue, or choose another --output.")
        settings = resume_settings(args, request, config, args.catalog)
        if args.resume:
            common.check_resume(args.output, settings)
        done = parts_sources(parts_dir) if args.resume else set()
        pending = pending_inputs(args.input, done)
        print(f"{pending.count} inputs to process" + (f", {len(done)} already done" if done else ""))
        parameters = {k: v for k, v in vars(args).items() if k != "catalog" and "." not in k}
        extra = {"request": request.to_dict(), "settings": settings,
                 "engines": {k: _options_dict(v) for k, v in config.engine_options.items()},
                 "skipped_as_done": len(done), "started_at": started}
        dashboard = None
        if pending.count:
            log_path = None if args.verbose else args.output / common.JOB_LOG
            with common.stderr_to(log_path):
                dashboard = common.connect(args.address, args.verbose)
                if dashboard:
                    print(f"Ray dashboard: {dashboard}")
                dataset, _claims = build_plan(args, request, config, pending, done, _is_single_node())
                # Recorded before any work, so that --resume after a kill knows what this run was.
                common.write_manifest(args.output / "manifest.json", job="generate", parameters=parameters,
                                      statuses=common.Counter(), reasons=common.Counter(), started=started,
                                      extra={**extra, "state": "running"})
                common.consume(dataset.iter_batches(batch_format="numpy", batch_size=None), pending.count, "Generating")

        results = merge_results(parts_dir, args.output / "results.parquet")
        statuses, reasons = common.status_counts(results)
        manifest = common.write_manifest(
            args.output / "manifest.json", job="generate", parameters=parameters, statuses=statuses, reasons=reasons,
            started=started, extra={**extra, "state": "finished"},
        )
        lines = [f"Results: {args.output / 'results.parquet'}", f"Avatars: {args.output / 'avatars'}/<id>/"]
        if not args.no_report:
            from dataset.report import write_report

            lines.append(f"Report:  {write_report(args.output)}")
        if pending.count and not args.verbose:
            lines.append(f"Log:     {args.output / common.JOB_LOG} (Ray and model warnings; --verbose shows them here)")
        if dashboard:
            lines.append(f"Ray dashboard (logs, per-stage progress): {dashboard}")
        common.print_summary(manifest["counts"], manifest["reasons"], lines)
        return manifest


def _is_single_node() -> bool:
    """A one-machine Ray (started here, or a test's): nothing will scale it up, so the pools must fit it."""
    import ray

    return len([node for node in ray.nodes() if node.get("Alive")]) == 1


def _path_options(args: argparse.Namespace) -> list[str]:
    """Names of engine options that hold paths (made absolute on the driver for the workers)."""
    return [name for name in vars(args) if name.split(".")[-1] in
            ("base_model", "lora", "ip_adapter", "image_encoder", "model", "embedding", "texture")]


def _options_dict(options) -> dict:
    import dataclasses

    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options) if "help" in f.metadata}


def main(argv: list[str] | None = None, catalog=None) -> int:
    return common.run_main(run, build_parser(catalog), argv)


if __name__ == "__main__":
    sys.exit(main())
