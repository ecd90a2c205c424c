"""Ray Data actor classes: thin wrappers that hold the per-photo building blocks of `actors.pipeline`.

Ray Data constructs one instance per actor of a pool (`compute=ActorPoolStrategy(size=N)`) and calls
it on batches (pyarrow tables). Models load once per actor. Writers put each batch in its own Parquet
file, atomically, so a killed actor or driver loses at most the batch in flight and `--resume`
recomputes nothing that was written. Ray Data restarts killed actors and retries their batches.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow as pa

from actors.pipeline import AvatarMaker, PhotoPreparer, PipelineConfig
from actors.request import AvatarRequest

SUMMARY_COLUMNS = ("source", "id", "status", "reason")


def _one_thread_per_actor() -> None:
    """Actors parallelise by process: keep OpenCV from spawning a thread pool per actor on shared cores."""
    import cv2

    cv2.setNumThreads(1)


def summary(table: pa.Table) -> pa.Table:
    """The small table a writer hands back to the driver (counts, progress)."""
    return table.select(list(SUMMARY_COLUMNS))


class AlignActor:
    """source → shard row (decode + align). Returns full shard rows, or writes them and returns a summary."""

    def __init__(self, config: PipelineConfig, input_root: str, shards_dir: str | None = None,
                 annotations: dict | None = None) -> None:
        _one_thread_per_actor()
        self.preparer = PhotoPreparer(config, input_root=input_root)
        self.shards_dir = Path(shards_dir) if shards_dir else None
        self.annotations = annotations or {}

    def __call__(self, batch: pa.Table) -> pa.Table:
        from dataset.shards import rows_to_table, write_shard

        rows = [self.preparer.prepare(source, extra=self.annotations.get(source)) for source in batch.column("source").to_pylist()]
        if self.shards_dir is None:
            return rows_to_table(rows)
        write_shard(rows, self.shards_dir / f"part-{uuid.uuid4().hex}.parquet")
        return summary(rows_to_table(rows))


class AvatarActor:
    """Shard rows → avatar files and result rows, written as one results part per batch."""

    def __init__(self, request: AvatarRequest, config: PipelineConfig, output_dir: str) -> None:
        _one_thread_per_actor()
        self.request = request
        self.maker = AvatarMaker(config)
        self.output_dir = Path(output_dir)
        self.parts_dir = self.output_dir / "results_parts"

    def __call__(self, batch: pa.Table) -> pa.Table:
        from dataset.results import results_to_table
        from dataset.shards import write_table_atomic

        rows = self.maker.make(batch.to_pylist(), self.request, self.output_dir)
        table = results_to_table(rows)
        write_table_atomic(table, self.parts_dir / f"part-{uuid.uuid4().hex}.parquet")
        return summary(table)
