"""Per-photo building blocks shared by the batch jobs and the HTTP service.

Follow one photo: `PhotoPreparer.prepare` reads and decodes it and aligns the face (a shard row,
`dataset.schema.SHARD_SCHEMA`); `AvatarMaker.make` turns shard rows into result rows
(`dataset.schema.RESULTS_SCHEMA`) through the 2D stage (`actors.stylize2d.stage`) and the 3D stage
(`actors.reconstruct3d.stage`), writing files under `OUTPUT/avatars/<id>/`. `AvatarPipeline` chains
both for a single photo (the service). Every input ends in exactly one row: failures become a status
and a reason code, never an exception that loses the row.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from actors.request import AvatarRequest
from dataset.reasons import InputRejected, Reason, Status

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class PipelineConfig:
    """Where the user's weights are and how inputs are guarded. Everything defaults to offline models."""

    flame_model: str | None = None  # FLAME generic_model.pkl / flame2023.pkl (user-supplied)
    flame_embedding: str | None = None  # mediapipe_landmark_embedding.npz
    flame_texture: str | None = None  # FLAME_texture.npz (vt/ft), optional
    device: str | None = None  # torch device for diffusion / FLAME; None = CPU unless an engine option says otherwise
    engine_options: dict[str, Any] = field(default_factory=dict)  # defaults for the 2D engine (base_model, lora, ...)
    max_bytes: int = 64 << 20  # largest input file read
    max_pixels: int = 40_000_000  # decompression-bomb guard
    render_views: bool = True

    def check_inputs(self) -> None:
        if self.flame_model and not self.flame_embedding:
            raise ValueError("A FLAME model needs its landmark embedding: pass flame_embedding (mediapipe_landmark_embedding.npz).")
        for name in ("flame_model", "flame_embedding", "flame_texture"):
            value = getattr(self, name)
            if value and not Path(value).is_file():
                raise ValueError(f"{name}: no file at {value}.")
        if self.max_bytes <= 0 or self.max_pixels <= 0:
            raise ValueError("max_bytes and max_pixels must be positive.")


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

    @property
    def aligner(self):
        if self._aligner is None:
            from actors.align.aligner import FaceAligner

            self._aligner = FaceAligner()
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
            rgb = decode_image(data, max_pixels=self.config.max_pixels)
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


def result_row_from_shard(row: dict, request: AvatarRequest) -> dict:
    """The part of a result row known before generation: identity, status and input tone."""
    from dataset.schema import RESULTS_SCHEMA, empty_row

    result = empty_row(RESULTS_SCHEMA)
    result.update(
        id=row["id"], source=row["source"], status=row["status"], reason=row.get("reason") or "",
        detail=row.get("detail") or "", modes=",".join(request.modes), engine=request.engine,
        seed=request.item_seed(row["id"]) if row.get("id") else request.seed, num_faces=row.get("num_faces"),
        ita_in=row.get("ita"), mst_in=row.get("mst"), ms_align=row.get("ms_align"),
    )
    return result


class AvatarMaker:
    """Turns shard rows into result rows: 2D avatars and 3D heads, files under `output_dir/avatars/<id>/`.

    Stages are built for a request on first use and kept while the request stays the same, so a batch
    actor (one request) loads its models once.
    """

    def __init__(self, config: PipelineConfig | None = None, landmarks_fn: Callable | None = None) -> None:
        self.config = config or PipelineConfig()
        self._landmarks = landmarks_fn  # re-detects landmarks on avatars; an own aligner when not given
        self._stages_for: AvatarRequest | None = None
        self._stage2d = None
        self._stage3d = None
        self._aligner = None
        self._identity = None
        self._engines: dict[tuple, Any] = {}

    # Shared models -----------------------------------------------------------------------------
    def _landmarks_fn(self):
        if self._landmarks is None:
            from actors.align.aligner import FaceAligner

            self._aligner = FaceAligner()
            self._landmarks = self._aligner.landmarks
        return self._landmarks

    def _identity_model(self):
        if self._identity is None:
            from actors.metrics.identity import IdentityModel

            self._identity = IdentityModel()
        return self._identity

    def _engine(self, request: AvatarRequest):
        from actors.stylize2d.registry import create_engine

        options = {**self.config.engine_options, **request.engine_options}
        if request.engine == "diffusers" and self.config.device and "device" not in options:
            options["device"] = self.config.device
        key = (request.engine, tuple(sorted((k, str(v)) for k, v in options.items())))
        if key not in self._engines:
            self._engines[key] = create_engine(request.engine, **options)
        return self._engines[key]

    def _stages(self, request: AvatarRequest):
        if self._stages_for != request:
            self._stage2d = self._stage3d = None
            if "2d" in request.modes:
                from actors.stylize2d.stage import Avatar2DStage

                self._stage2d = Avatar2DStage(request, engine=self._engine(request), identity=self._identity_model(),
                                              landmarks_fn=self._landmarks_fn())
            if "3d" in request.modes:
                from actors.reconstruct3d.stage import Reconstruct3DStage

                self._stage3d = Reconstruct3DStage(
                    request, flame_model=self.config.flame_model, flame_embedding=self.config.flame_embedding,
                    flame_texture=self.config.flame_texture, device=self.config.device,
                    render_views=self.config.render_views,
                )
            self._stages_for = request
        return self._stage2d, self._stage3d

    # Generation --------------------------------------------------------------------------------
    def make(self, rows: list[dict], request: AvatarRequest, output_dir: str | Path,
             progress: Progress | None = None) -> list[dict]:
        """One result row per shard row, in order."""
        from dataset.shards import row_to_face

        output_dir = Path(output_dir)
        results = [result_row_from_shard(row, request) for row in rows]
        ready = [i for i, row in enumerate(rows) if row["status"] == Status.OK.value]
        faces, keep = [], []
        for i in ready:
            try:
                faces.append(row_to_face(rows[i]))
                keep.append(i)
            except Exception as error:  # a damaged shard row
                _fail(results[i], Reason.INTERNAL_ERROR, f"cannot decode shard row: {error}")
        ids = [rows[i]["id"] for i in keep]
        out_dirs = [output_dir / "avatars" / item_id for item_id in ids]
        for path, face in zip(out_dirs, faces):
            path.mkdir(parents=True, exist_ok=True)
            _write_png(path / "input.png", face.crop)  # the aligned input, shown beside the avatars
        try:
            stage2d, stage3d = self._stages(request)
        except ValueError as error:  # the engine refused its options (missing weights, ...)
            for i in keep:
                _fail(results[i], Reason.ENGINE_ERROR, str(error))
            return self._finish(results)
        for stage, reason, fraction, label in (
            (stage2d, Reason.ENGINE_ERROR, 0.35, "Drawing the 2D avatar"),
            (stage3d, Reason.RECONSTRUCTION_ERROR, 0.65, "Building the 3D head"),
        ):
            if stage is None or not faces:
                continue
            if progress:
                progress(fraction, label)
            try:
                outputs = stage.run(faces, ids, out_dirs)
            except Exception as error:  # the whole batch failed in this stage
                outputs = [{"error": f"{type(error).__name__}: {error}"}] * len(faces)
            for i, output in zip(keep, outputs):
                _merge(results[i], output, reason, output_dir)
        return self._finish(results)

    @staticmethod
    def _finish(results: list[dict]) -> list[dict]:
        finished = time.time()
        for result in results:
            result["finished_at"] = finished
        return results

    def close(self) -> None:
        if self._aligner is not None:
            self._aligner.close()
            self._aligner = None
            self._landmarks = None


def _write_png(path: Path, rgb) -> None:
    import cv2

    if not path.exists():
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _fail(result: dict, reason: Reason, detail: str) -> None:
    if result["status"] == Status.OK.value:
        result.update(status=Status.FAILED.value, reason=reason.value, detail=detail)


def _relative(value: Any, root: Path) -> Any:
    if isinstance(value, (str, Path)) and Path(value).is_absolute():
        try:
            return str(Path(value).relative_to(root))
        except ValueError:
            return str(value)
    if isinstance(value, list):
        return [_relative(v, root) for v in value]
    return value


def _merge(result: dict, output: dict, reason: Reason, root: Path) -> None:
    if "error" in output:
        _fail(result, reason, output["error"])
        return
    for key, value in output.items():
        if key in result:
            result[key] = _relative(value, root)


class AvatarPipeline:
    """Align, then make avatars, for one photo (the HTTP service and the UI use this)."""

    def __init__(self, config: PipelineConfig | None = None) -> None:
        self.config = config or PipelineConfig()
        self.config.check_inputs()
        self.preparer = PhotoPreparer(self.config)
        self.maker = AvatarMaker(self.config, landmarks_fn=lambda rgb: self.preparer.aligner.landmarks(rgb))

    def process(self, source: str, data: bytes, request: AvatarRequest, output_dir: str | Path,
                progress: Progress | None = None) -> dict:
        if progress:
            progress(0.05, "Finding the face")
        row = self.preparer.prepare(source, data)
        result = self.maker.make([row], request, output_dir, progress)[0]
        if progress:
            progress(1.0, "Done" if result["status"] == Status.OK.value else f"Stopped: {result['reason']}")
        return result

    def close(self) -> None:
        self.preparer.close()
        self.maker.close()

