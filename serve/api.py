"""HTTP routes: submit a photo, poll the job, download its files, delete it; health.

Errors are JSON `{"error": <code>, "detail": <text>}` with these statuses:
400 malformed request body, 404 unknown/expired id or file name (also anything that is not a
server-issued id or a published file name), 413 upload over the byte limit, 415 bytes that are not
a JPEG/PNG/WebP image, 422 invalid options (AvatarRequest's own message), an unreadable header or
an image header declaring more pixels than the decompression-bomb guard allows, 429 queue full
(with Retry-After).
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve.outputs import MEDIA_TYPES, view_sort_key
from serve.runner import QueueFull
from serve.service import AvatarService
from serve.store import JobNotFound, JobRecord
from serve.uploads import UploadRejected

router = APIRouter()

NO_STORE = {"Cache-Control": "no-store"}  # results are biometric data: no caches on the way


class ApiError(Exception):
    def __init__(self, status_code: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status_code, self.code, self.detail, self.headers = status_code, code, detail, headers or {}


class ErrorBody(BaseModel):
    error: str
    detail: str


class JobAccepted(BaseModel):
    id: str
    status: str
    status_url: str


class JobStatus(BaseModel):
    id: str
    status: str  # queued | running | done | rejected | failed
    progress: float  # 0..1
    message: str
    reason: str  # reason code when rejected/failed (dataset.reasons.Reason), else ""
    detail: str
    created_at: float
    finished_at: float | None
    expires_at: float | None  # results are deleted at this unix time
    request: dict[str, Any]
    metrics: dict[str, Any]
    files: dict[str, str]  # public name -> download URL


def error_response(status_code: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status_code, error.code, error.detail, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        parts = []
        for item in error.errors():
            where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path"))
            parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return error_response(422, "invalid_request", "; ".join(parts) or "Invalid request.")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}.get(error.status_code, "http_error")
        return error_response(error.status_code, code, str(error.detail), getattr(error, "headers", None))


def _service(request: Request) -> AvatarService:
    return request.app.state.service


def build_request(
    *,
    modes: str,
    styles: str | None,
    engine: str | None,
    seed: int | None,
    strength: float | None,
    size: int | None,
    tone_lock: bool | None,
    tone_threshold: float | None,
    head_engine: str | None,
    texture_size: int | None,
):
    """An `AvatarRequest` from form values; its own ValueError (one rule, one message) on bad options."""
    from actors.request import AvatarRequest

    options = dict(
        modes=modes,
        styles=styles,
        engine=engine,
        seed=seed,
        strength=strength,
        size=size,
        tone_lock=tone_lock,
        tone_threshold=tone_threshold,
        head_engine=head_engine,
        texture_size=texture_size,
    )
    return AvatarRequest(**{k: v for k, v in options.items() if v is not None})


_ERRORS = {status: {"model": ErrorBody} for status in (404, 413, 415, 422, 429)}


@router.post(
    "/v1/avatars",
    status_code=202,
    response_model=JobAccepted,
    responses={s: _ERRORS[s] for s in (413, 415, 422, 429)},
    summary="Submit a photo",
)
async def create_avatar(
    request: Request,
    photo: UploadFile = File(..., description="JPEG, PNG or WebP; the type is read from the bytes."),
    modes: str = Form("2d", description="Comma-separated: 2d, 3d."),
    style: str | None = Form(None, description="One 2D style: anime, cartoon, realistic, sketch (or 'all')."),
    styles: str | None = Form(None, description="Comma-separated 2D styles (alternative to `style`)."),
    engine: str | None = Form(None, description="2D engine: offline (default) or diffusers."),
    seed: int | None = Form(None),
    strength: float | None = Form(None),
    size: int | None = Form(None),
    tone_lock: bool | None = Form(None, description="Skin-tone guard (default on)."),
    tone_threshold: float | None = Form(None),
    head_engine: str | None = Form(None),
    texture_size: int | None = Form(None),
) -> JSONResponse:
    service = _service(request)
    if style and styles:
        raise ApiError(422, "invalid_options", "Give `style` or `styles`, not both.")
    try:
        avatar_request = build_request(
            modes=modes,
            styles=styles or style,
            engine=engine,
            seed=seed,
            strength=strength,
            size=size,
            tone_lock=tone_lock,
            tone_threshold=tone_threshold,
            head_engine=head_engine,
            texture_size=texture_size,
        )
    except ValueError as error:
        raise ApiError(422, "invalid_options", str(error)) from None
    limit = service.settings.max_upload_bytes
    data = await photo.read(limit + 1)
    await photo.close()
    try:
        record = await run_in_threadpool(service.submit, data, avatar_request)
    except UploadRejected as error:
        raise ApiError(error.status_code, error.code, error.detail) from None
    except QueueFull as error:
        raise ApiError(429, "queue_full", str(error), {"Retry-After": str(error.retry_after_s)}) from None
    status_url = str(request.url_for("get_avatar", job_id=record.id))
    return JSONResponse(
        {"id": record.id, "status": record.status, "status_url": status_url},
        status_code=202,
        headers={"Location": status_url, **NO_STORE},
    )


@router.get("/v1/avatars/{job_id}", response_model=JobStatus, responses={404: _ERRORS[404]}, summary="Job status")
def get_avatar(job_id: str, request: Request) -> JSONResponse:
    record = _load(_service(request), job_id)
    return JSONResponse(job_status(record, request), headers=NO_STORE)


@router.get(
    "/v1/avatars/{job_id}/files/{name}",
    responses={404: _ERRORS[404], 200: {"content": {m: {} for m in MEDIA_TYPES.values()}}},
    summary="Download a result file",
)
def get_avatar_file(job_id: str, name: str, request: Request) -> FileResponse:
    try:
        path = _service(request).file(job_id, name)
    except JobNotFound:
        raise ApiError(404, "not_found", "No such job or file (it may have expired or been deleted).") from None
    media_type = MEDIA_TYPES[path.suffix]
    return FileResponse(
        path,
        media_type=media_type,
        filename=name,
        content_disposition_type="inline" if media_type == "image/png" else "attachment",
        headers=NO_STORE,
    )


@router.delete("/v1/avatars/{job_id}", status_code=204, responses={404: _ERRORS[404]}, summary="Delete a job and its data")
def delete_avatar(job_id: str, request: Request) -> Response:
    if not _service(request).delete(job_id):
        raise ApiError(404, "not_found", "No such job (it may have expired or been deleted).")
    return Response(status_code=204)


@router.get("/healthz", summary="Liveness and queue state")
def healthz(request: Request) -> dict[str, Any]:
    return _service(request).health()


def _load(service: AvatarService, job_id: str) -> JobRecord:
    try:
        return service.get(job_id)
    except JobNotFound:
        raise ApiError(404, "not_found", "No such job (it may have expired or been deleted).") from None


def job_status(record: JobRecord, request: Request) -> dict[str, Any]:
    """The public view of a job: status, progress, metrics and download links."""
    names = sorted(record.files, key=_listing_order)
    return {
        "id": record.id,
        "status": record.status,
        "progress": record.progress,
        "message": record.message,
        "reason": record.reason,
        "detail": record.detail,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
        "expires_at": record.expires_at,
        "request": record.request,
        "metrics": job_metrics(record.result),
        "files": {n: str(request.url_for("get_avatar_file", job_id=record.id, name=n)) for n in names},
    }


def _listing_order(name: str) -> tuple:
    """Avatars and models first (by name), then the views from left to right."""
    return (1, view_sort_key(name), "") if name.startswith("view_") else (0, 0, name)


def job_metrics(row: dict[str, Any]) -> dict[str, Any]:
    """Skin tone in/out per style, identity, landmark error and timings from a pipeline row."""
    if not row:
        return {}
    styles = row.get("styles") or []

    def per_style(column: str) -> list:
        values = row.get(column) or []
        return list(values) + [None] * (len(styles) - len(values))

    columns = ("ita_raw", "mst_raw", "ita_out", "mst_out", "tone_correction", "identity", "identity_reason")
    table = {column: per_style(column) for column in columns}
    return {
        "ita_in": row.get("ita_in"),
        "mst_in": row.get("mst_in"),
        "num_faces": row.get("num_faces"),
        "styles": [{"style": s, **{c: table[c][i] for c in columns}} for i, s in enumerate(styles)],
        "head_engine": row.get("head_engine"),
        "nme": row.get("nme"),
        "ms": {k[3:]: row.get(k) for k in ("ms_align", "ms_2d", "ms_3d") if row.get(k) is not None},
    }
