"""Ray Data actor classes: thin wrappers that hold the per-photo building blocks of `actors.pipeline`.

Three stages, each a `map_batches` with its own actor pool and resources, so each scales on its own
node type: `AlignActor` (CPU: decode + align) → `Stylize2DActor` (the 2D engine: a GPU when the engine
wants one, else CPU) → `Head3DActor` (CPU). Between the avatar stages a batch travels as its shard
columns plus a `result` struct column (the results row so far). The last stage of a run writes each
batch as its own results part, atomically, so a killed actor or driver loses at most the batch in
flight and `--resume` recomputes nothing that was written. Ray Data restarts killed actors and retries
their batches.

Identical photos under different names (one content id, the sha256 of the bytes) are computed once per
run: the first avatar stage asks a `ContentClaims` actor, before any work, which input holds each id;
the others skip every stage and are written with `duplicate_of` set, and `dataset.results.merge_results`
gives them the holder's files and columns.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow as pa

from actors.config import PipelineConfig
from actors.engines import EngineCatalog
from actors.pipeline import Avatars2DMaker, Heads3DMaker, PhotoPreparer, finish, result_row_from_shard
from actors.request import AvatarRequest

SUMMARY_COLUMNS = ("source", "id", "status", "reason")
RESULT_COLUMN = "result"
DUPLICATE_COLUMN = "duplicate_of"  # dataset.schema.RESULTS_SCHEMA: the source whose outputs this row shares


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


class ContentClaims:
    """Which input computes each content id in a run: the first to ask holds the id.

    A claim remembers its holder's source, so asking again for the same source (its batch retried after
    an actor died) gets the claim back: a retry computes, a duplicate never does. `holders` seeds the
    claims of the runs a `--resume` continues. Run as a Ray actor (`start_content_claims`); if it is lost,
    its replacement starts from the seed again, and an id may then be computed twice: wasted work, never
    a wrong row.
    """

    def __init__(self, holders: dict[str, str] | None = None) -> None:
        self._holders = dict(holders or {})

    def claim(self, items: list[tuple[str, str]]) -> list[str]:
        """For each (content id, source): the source that computes that id (the caller's own if it holds it)."""
        return [self._holders.setdefault(item_id, source) for item_id, source in items]


def start_content_claims(holders: dict[str, str] | None = None):
    """A `ContentClaims` Ray actor for one run (no CPU reserved; restarted and retried if it dies)."""
    import ray

    remote = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(ContentClaims)
    return remote.remote(holders or {})


def mark_duplicates(results: list[dict], claims) -> None:
    """Set `duplicate_of` on each `ok` row whose content id another input holds (asks `claims`, a
    `ContentClaims` actor, once per batch). Rows of one batch with one id: the first holds it."""
    import ray

    from dataset.reasons import Status

    ok = [result for result in results if result["status"] == Status.OK.value and result.get("id")]
    if not ok:
        return
    holders = ray.get(claims.claim.remote([(result["id"], result["source"]) for result in ok]))
    for result, holder in zip(ok, holders):
        if holder != result["source"]:
            result[DUPLICATE_COLUMN] = holder


class _AvatarStageActor:
    """Shard rows (+ results so far) → this stage's files and columns; the last stage writes a results part."""

    def __init__(self, request: AvatarRequest, config: PipelineConfig, output_dir: str, last: bool,
                 catalog: EngineCatalog | None = None, claims=None) -> None:
        _one_thread_per_actor()
        self.request = request
        self.makers = self._makers(config, catalog)
        self.output_dir = Path(output_dir)
        self.last = last
        self.claims = claims  # a ContentClaims actor (the run's first avatar stage only)

    def _makers(self, config, catalog) -> list:
        raise NotImplementedError

    def __call__(self, batch: pa.Table) -> pa.Table:
        from dataset.results import RESULT_STRUCT, results_to_table
        from dataset.shards import write_table_atomic

        carried = RESULT_COLUMN in batch.column_names
        results = (batch.column(RESULT_COLUMN).to_pylist() if carried else None)
        rows = (batch.drop_columns([RESULT_COLUMN]) if carried else batch).to_pylist()
        if results is None:
            results = [result_row_from_shard(row, self.request) for row in rows]
            if self.claims is not None:
                mark_duplicates(results, self.claims)
        todo = [i for i, result in enumerate(results) if not result.get(DUPLICATE_COLUMN)]
        if todo:
            for maker in self.makers:  # results are updated in place
                maker.make([rows[i] for i in todo], [results[i] for i in todo], self.request, self.output_dir)
        if not self.last:
            shards = batch.drop_columns([RESULT_COLUMN]) if carried else batch
            return shards.append_column(RESULT_COLUMN, pa.array(results, type=RESULT_STRUCT))
        table = results_to_table(finish(results))
        write_table_atomic(table, self.output_dir / "results_parts" / f"part-{uuid.uuid4().hex}.parquet")
        return summary(table)


class Stylize2DActor(_AvatarStageActor):
    """The 2D stage: avatars in every requested style."""

    def _makers(self, config, catalog) -> list:
        return [Avatars2DMaker(config, catalog)]


class Head3DActor(_AvatarStageActor):
    """The 3D stage: the fitted, textured head and its views."""

    def _makers(self, config, catalog) -> list:
        return [Heads3DMaker(config, catalog)]


class AvatarActor(_AvatarStageActor):
    """2D and 3D in one actor (`--fuse-avatar-stages`): fewer processes on one small machine."""

    def _makers(self, config, catalog) -> list:
        return [Avatars2DMaker(config, catalog), Heads3DMaker(config, catalog)]
