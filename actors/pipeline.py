"""Per-photo building blocks shared by the batch jobs and the HTTP service.

Follow one photo: `PhotoPreparer.prepare` reads and decodes it and aligns the face (a shard row,
`dataset.schema.SHARD_SCHEMA`); `result_row_from_shard` starts its results row
(`dataset.schema.RESULTS_SCHEMA`); `Avatars2DMaker` and then `Heads3DMaker` add their columns and write
their files under `OUTPUT/avatars/<id>/`. The batch job runs each in its own Ray stage
(`actors.ray_actors`); `AvatarPipeline` chains them for a single photo (the service). Every input ends in
exactly one row: failures become a status and a reason code, never an exception that loses the row.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Callable

from actors.config import PipelineConfig
from actors.engines import EngineCatalog, default_catalog
from actors.request import AvatarRequest
from actors.stage_results import Failure, apply, fail
from dataset.reasons import InputRejected, Reason, Status

Progress = Callable[[float, str], None]


def source_id(source: str) -> str:
    """Id for an input whose bytes could not be read: sha256 of its name (documented in the schema)."""
    return hashlib.sha256(("source:" + source).encode("utf-8", "surrogateescape")).hexdigest()


class PhotoPreparer:
    """Reads, decodes and aligns one input into a shard row. Models load on first use."""

    def __init__(self, config: PipelineConfig | None = None, input_root: str | Path | None = None) -> None:
        self.config = config or PipelineConfig()
        self.input_root = input_root  # the --input path: files resolving outside it are refused
        self._aligner = None
        self._reader = None
        self._decoder = None

    @property
    def decoder(self):
        """Decodes in a child process bounded in CPU time and memory (`dataset.decode_guard`); started on first use."""
        if self._decoder is None:
            from dataset.decode_guard import ImageDecoder

            self._decoder = ImageDecoder(max_pixels=self.config.max_pixels)
        return self._decoder

    @property
    def aligner(self):
        if self._aligner is None:
            from actors.align.aligner import FaceAligner

            self._aligner = FaceAligner(upscale=self.config.upscale)
        return self._aligner

    @property
    def reader(self):
        if self._reader is None:
            from dataset.sources import InputReader

            self._reader = (InputReader.for_input(self.input_root, max_bytes=self.config.max_bytes) if self.input_root
                            else InputReader(max_bytes=self.config.max_bytes))
        return self._reader

    def prepare(self, source: str, data: bytes | None = None, extra: dict | None = None) -> dict:
        """The shard row for `source` (its bytes read here unless `data` is given)."""
        from dataset.decode import content_id, decode_image
        from dataset.shards import face_to_row, rejection_row

        started = time.perf_counter()
        item_id, width, height = "", 0, 0
        try:
            if data is None:
                data = self.reader.read(source)
            item_id = content_id(data)
            rgb = decode_image(data, max_pixels=self.config.max_pixels, decoder=self.decoder)
            height, width = rgb.shape[:2]
            row = face_to_row(item_id, source, self.aligner.align(rgb), width, height, extra)
        except InputRejected as rejected:
            row = rejection_row(item_id or source_id(source), source, Status.REJECTED.value, rejected.reason.value,
                                rejected.detail, width=width, height=height, extra=extra)
        except Exception as error:  # a broken stage must not lose the row
            row = rejection_row(item_id or source_id(source), source, Status.FAILED.value, Reason.INTERNAL_ERROR.value,
                                f"{type(error).__name__}: {error}", width=width, height=height, extra=extra)
        row["ms_align"] = (time.perf_counter() - started) * 1000.0
        return row

    def close(self) -> None:
        if self._aligner is not None:
            self._aligner.close()
            self._aligner = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None


def result_row_from_shard(row: dict, request: AvatarRequest) -> dict:
    """The part of a result row known before generation: identity, status and input tone."""
    from dataset.schema import RESULTS_SCHEMA, empty_row

    result = empty_row(RESULTS_SCHEMA)
    result.update(
        id=row["id"], source=row["source"], status=row["status"], reason=row.get("reason") or "",
        detail=row.get("detail") or "", modes=",".join(request.modes), engine=request.engine,
        seed=request.item_seed(row["id"]) if row.get("id") else request.seed, num_faces=row.get("num_faces"),
        ita_in=row.get("ita"), mst_in=row.get("mst"), ms_align=row.get("ms_align"),
        eye_distance_px=row.get("eye_distance_px"), upscale_factor=row.get("upscale_factor"),
    )
    return result


class _Maker:
    """What both avatar makers share: the config, the catalog, and turning shard rows into faces."""

    mode: str  # "2d" or "3d"
    label: str  # progress message

    def __init__(self, config: PipelineConfig | None = None, catalog: EngineCatalog | None = None) -> None:
        self.config = config or PipelineConfig()
        self.catalog = catalog or default_catalog()
        self._stage = None
        self._stage_for: AvatarRequest | None = None

    def make(self, rows: list[dict], results: list[dict], request: AvatarRequest, output_dir: str | Path,
             progress: Progress | None = None) -> list[dict]:
        """Add this maker's columns (or a failure) to `results` (one per shard row, updated in place)."""
        from dataset.images import write_png
        from dataset.shards import row_to_face

        if request.modes and self.mode not in request.modes:
            return results
        output_dir = Path(output_dir)
        faces, keep = [], []
        for i, (row, result) in enumerate(zip(rows, results)):
            if result["status"] != Status.OK.value:
                continue
            try:
                faces.append(row_to_face(row))
                keep.append(i)
            except Exception as error:  # noqa: BLE001 - a damaged shard row
                fail(result, Reason.INTERNAL_ERROR, f"cannot decode shard row: {error}")
        if not faces:
            return results
        ids = [rows[i]["id"] for i in keep]
        out_dirs = [output_dir / "avatars" / item_id for item_id in ids]
        for path, face in zip(out_dirs, faces):
            if not (path / "input.png").exists():
                write_png(path / "input.png", face.crop)  # the aligned input, shown beside the avatars
        if progress:
            progress(0.35 if self.mode == "2d" else 0.65, self.label)
        try:
            outcomes = self.stage(request).run(faces, ids, out_dirs)
        except ValueError as error:  # the engine refused its options (missing weights, ...)
            outcomes = [Failure(self.reason, str(error))] * len(faces)
        for i, outcome in zip(keep, outcomes):
            apply(results[i], outcome, output_dir)
        return results

    def stage(self, request: AvatarRequest):
        if self._stage_for != request:
            self._stage = self._build(request)
            self._stage_for = request
        return self._stage

    def close(self) -> None:
        self._stage = self._stage_for = None


class Avatars2DMaker(_Maker):
    """The 2D columns and files: one avatar per style, tone-guarded, with its identity score."""

    mode, label, reason = "2d", "Drawing the 2D avatar", Reason.ENGINE_ERROR

    def __init__(self, config: PipelineConfig | None = None, catalog: EngineCatalog | None = None,
                 landmarks_fn: Callable | None = None) -> None:
        super().__init__(config, catalog)
        self._landmarks = landmarks_fn  # re-detects landmarks on avatars; an own aligner when not given
        self._aligner = None
        self._identity = None
        self._engines: dict[str, Any] = {}

    def _build(self, request: AvatarRequest):
        from actors.metrics.identity import IdentityModel
        from actors.stylize2d.stage import Avatar2DStage

        if request.engine not in self._engines:
            self._engines[request.engine] = self.config.create(self.catalog.stylizers, request.engine)
        if self._identity is None:
            self._identity = IdentityModel()
        return Avatar2DStage(self.catalog.resolve_request(request), self._engines[request.engine], self._identity,
                             landmarks_fn=self._landmarks_fn())

    def _landmarks_fn(self):
        if self._landmarks is None:
            from actors.align.aligner import FaceAligner

            self._aligner = FaceAligner()
            self._landmarks = self._aligner.landmarks
        return self._landmarks

    def close(self) -> None:
        super().close()
        if self._aligner is not None:
            self._aligner.close()
            self._aligner = None
            self._landmarks = None


class Heads3DMaker(_Maker):
    """The 3D columns and files: a fitted, textured head with its 7 views."""

    mode, label, reason = "3d", "Building the 3D head", Reason.RECONSTRUCTION_ERROR

    def __init__(self, config: PipelineConfig | None = None, catalog: EngineCatalog | None = None) -> None:
        super().__init__(config, catalog)
        self._engines: dict[str, Any] = {}

    def head_engine(self, request: AvatarRequest) -> str:
        return self.catalog.resolve_head(request.head_engine, self.config.engine_options)

    def _build(self, request: AvatarRequest):
        from actors.reconstruct3d.stage import Reconstruct3DStage

        name = self.head_engine(request)
        if name not in self._engines:
            self._engines[name] = self.config.create(self.catalog.heads, name)
        return Reconstruct3DStage(request, self._engines[name], render_views=self.config.render_views)


def finish(results: list[dict]) -> list[dict]:
    """Stamp the rows with the time they were produced (the report's throughput plot)."""
    finished = time.time()
    for result in results:
        result["finished_at"] = finished
    return results


def check_engines(request: AvatarRequest, config: PipelineConfig, catalog: EngineCatalog) -> AvatarRequest:
    """The request resolved against the catalog, with the engines it needs checked against the config.
    One ValueError with the precise reason (the CLI exits 2 with it, the API answers 422)."""
    request = catalog.resolve_request(request)
    if "2d" in request.modes:
        problem = config.engine_problem(catalog.stylizers, request.engine)
        if problem:
            raise ValueError(problem)
    if "3d" in request.modes:
        name = catalog.resolve_head(request.head_engine, config.engine_options)
        problem = config.engine_problem(catalog.heads, name)
        if problem:
            raise ValueError(problem)
    return request


class AvatarPipeline:
    """Align, then make avatars, for one photo (the HTTP service and the UI use this)."""

    def __init__(self, config: PipelineConfig | None = None, catalog: EngineCatalog | None = None) -> None:
        self.config = config or PipelineConfig()
        self.catalog = catalog or default_catalog()
        self.preparer = PhotoPreparer(self.config)
        self.makers = (
            Avatars2DMaker(self.config, self.catalog, landmarks_fn=lambda rgb: self.preparer.aligner.landmarks(rgb)),
            Heads3DMaker(self.config, self.catalog),
        )

    def process(self, source: str, data: bytes, request: AvatarRequest, output_dir: str | Path,
                progress: Progress | None = None) -> dict:
        if progress:
            progress(0.05, "Finding the face")
        row = self.preparer.prepare(source, data)
        results = [result_row_from_shard(row, request)]
        for maker in self.makers:
            maker.make([row], results, request, output_dir, progress)
        result = finish(results)[0]
        if progress:
            progress(1.0, "Done" if result["status"] == Status.OK.value else f"Stopped: {result['reason']}")
        return result

    def close(self) -> None:
        self.preparer.close()
        for maker in self.makers:
            maker.close()
