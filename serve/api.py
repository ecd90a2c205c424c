"""HTTP routes: submit a photo, poll the job, download its files, delete it; health.

Errors are JSON `{"error": <code>, "detail": <text>}` with these statuses:
400 malformed request body, 404 unknown/expired id or file name (also anything that is not a
server-issued id or a published file name), 405 a method the path does not have (`Allow` lists the
ones it has), 408 a request body slower than `body_timeout_s`, 413 upload over the byte limit, 415
bytes that are not a JPEG/PNG/WebP image, 422 invalid options (a form field outside the schema, empty,
repeated or unknown; AvatarRequest's own message), an unreadable header, a decompression or scan bomb
(the decoding guard's reason code), 429 queue full (with Retry-After). `serve.openapi` states all of
it in `/openapi.json`.
"""
from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import AfterValidator, BaseModel, Field, create_model
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


JobState = Literal["queued", "running", "done", "rejected", "failed"]


class JobAccepted(BaseModel):
    id: str = Field(description="the job's id: 32 lowercase hex characters, issued by the server")
    status: JobState
    status_url: str = Field(description="where to poll the job (also the Location header)")


class JobStatus(BaseModel):
    id: str
    status: JobState
    progress: float = Field(ge=0, le=1)
    message: str
    reason: str = Field(description="when rejected or failed: the pipeline's reason code (dataset.reasons.Reason) or "
                                    "the service's own (timeout, interrupted, worker_crashed, internal_error); else empty")
    detail: str
    created_at: float
    started_at: float | None = Field(description="when the job left the queue (its time budget counts from here)")
    finished_at: float | None = Field(description="null until the job ends")
    expires_at: float | None = Field(description="unix time at which the results are deleted; null until the job ends")
    request: dict[str, Any]
    metrics: dict[str, Any]
    files: dict[str, str] = Field(description="public file name -> download URL (empty until the job is done)")
    file_names: list[str] = Field(description="the keys of `files`, in listing order")


class Health(BaseModel):
    status: Literal["ok"]
    workers: int
    max_pending: int
    queued: int
    running: int
    mean_job_s: float | None
    job_timeout_s: float
    worker_restarts: int


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
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}.get(error.status_code, "http_error")
        headers = dict(getattr(error, "headers", None) or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return error_response(error.status_code, code, str(error.detail), headers or None)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers for this path. (Starlette's 405 names the methods of the
    first route that matched the path only; GET and DELETE of `/v1/avatars/{id}` are two routes.)"""
    from starlette.routing import Match

    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return sorted(allowed)


def _service(request: Request) -> AvatarService:
    return request.app.state.service


# Rules of AvatarRequest.check_inputs that a field's own type does not carry, stated to OpenAPI here.
_MULTIPLE_OF = {"size": 8}


def request_form_model(catalog) -> type[BaseModel]:
    """The form fields of `POST /v1/avatars`, generated from `AvatarRequest`: one optional field per option
    (absent: the request's default), with its help, enum (names from `catalog`) and bounds, so OpenAPI
    states what the server enforces. List fields are repeated form keys (`styles=anime&styles=sketch`);
    a value may not be empty (`serve.api.check_form_fields`)."""
    from actors import options as opts
    from actors.request import MAX_STYLES, AvatarRequest

    fields: dict[str, Any] = {}
    for spec in opts.specs(AvatarRequest, catalog.choices()):
        constraints: dict[str, Any] = {key: value for key, value in (("ge", spec.minimum), ("le", spec.maximum))
                                       if value is not None}
        if spec.choices and spec.kind is int:
            # A Literal of ints refuses the form's text "1024": parse as int, then check the choice.
            item = Annotated[int, AfterValidator(partial(_one_of, spec.choices))]
            constraints["json_schema_extra"] = {"enum": list(spec.choices)}
        elif spec.choices:
            item = Literal[spec.choices]  # type: ignore[valid-type]
        else:
            item = spec.kind
        annotation = list[item] if spec.kind is tuple else item
        if spec.kind is float:
            constraints["allow_inf_nan"] = False
        if spec.name in _MULTIPLE_OF:
            constraints["multiple_of"] = _MULTIPLE_OF[spec.name]
        if spec.kind is tuple:
            # Repeats are dropped (AvatarRequest de-duplicates); the count is bounded before that.
            constraints = {"min_length": 1, "max_length": MAX_STYLES if spec.name == "styles" else len(spec.choices or ())}
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        description = spec.help + ("; here: one form field per value" if spec.kind is tuple else "")
        fields[spec.name] = (annotation, Field(default, description=description, **constraints))
    return create_model("AvatarOptions", **fields)


def _one_of(choices: tuple, value):
    if value not in choices:
        raise ValueError(f"must be one of {', '.join(map(str, choices))}")
    return value


def build_request(form: BaseModel):
    """An `AvatarRequest` from the submitted form (absent fields took the request's defaults)."""
    from actors.request import AvatarRequest

    return AvatarRequest(**form.model_dump())


def check_form_fields(form, allowed: set[str], lists: set[str]) -> None:
    """A field the schema does not name, an empty value, or a single-valued field given twice: 422
    naming the field. (FastAPI reads an empty form value as "absent", so `modes=` would silently become
    the default; an unknown field such as the CLI's `style=` would be ignored.)"""
    seen: dict[str, int] = {}
    for key, value in form.multi_items():
        if key not in allowed:
            raise ApiError(422, "invalid_request", f"{key}: not a field of this form (fields: {', '.join(sorted(allowed))})")
        seen[key] = seen.get(key, 0) + 1
        if isinstance(value, str) and not value.strip():
            raise ApiError(422, "invalid_request", f"{key}: must not be empty")
        if seen[key] > 1 and key not in lists:
            raise ApiError(422, "invalid_request", f"{key}: given {seen[key]} times; give it once")


_ERRORS = {status: {"model": ErrorBody} for status in (400, 404, 408, 413, 415, 422, 429)}


def avatar_routes(catalog) -> APIRouter:
    """`POST /v1/avatars`, whose form is generated for `catalog`'s engines and styles."""
    form_model = request_form_model(catalog)
    list_fields = {name for name, field in form_model.model_fields.items() if field.annotation is not None
                   and getattr(field.annotation, "__origin__", None) is list}
    allowed_fields = {*form_model.model_fields, "photo"}
    routes = APIRouter()

    async def create_avatar(request, options, photo=File(..., description="JPEG, PNG or WebP; the type is read from the bytes.")):
        service = _service(request)
        check_form_fields(await request.form(), allowed_fields, list_fields)
        try:
            avatar_request = service.check_request(build_request(options))
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

    # Annotations as objects (this module's are strings): the form model exists only inside this function.
    create_avatar.__annotations__ = {"request": Request, "options": Annotated[form_model, Form()],
                                     "photo": UploadFile, "return": JSONResponse}
    routes.post("/v1/avatars", status_code=202, response_model=JobAccepted, operation_id="create_avatar",
                responses={s: _ERRORS[s] for s in (400, 408, 413, 415, 422, 429)}, summary="Submit a photo")(create_avatar)
    return routes


@router.get("/v1/avatars/{job_id}", response_model=JobStatus, responses={404: _ERRORS[404]}, summary="Job status",
            operation_id="get_avatar")
def get_avatar(job_id: str, request: Request) -> JSONResponse:
    record = _load(_service(request), job_id)
    return JSONResponse(job_status(record, request), headers=NO_STORE)


@router.get(
    "/v1/avatars/{job_id}/files/{name}",
    responses={404: _ERRORS[404], 200: {"content": {m: {"schema": {"type": "string", "format": "binary"}}
                                                    for m in MEDIA_TYPES.values()}}},
    summary="Download a result file",
    operation_id="get_avatar_file",
    response_class=FileResponse,
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


@router.delete("/v1/avatars/{job_id}", status_code=204, responses={404: _ERRORS[404]}, summary="Delete a job and its data",
               operation_id="delete_avatar", response_class=Response)
def delete_avatar(job_id: str, request: Request) -> Response:
    if not _service(request).delete(job_id):
        raise ApiError(404, "not_found", "No such job (it may have expired or been deleted).")
    return Response(status_code=204)


@router.get("/healthz", summary="Liveness and queue state", response_model=Health, operation_id="healthz")
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
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "expires_at": record.expires_at,
        "request": record.request,
        "metrics": job_metrics(record.result),
        "files": {n: str(request.url_for("get_avatar_file", job_id=record.id, name=n)) for n in names},
        "file_names": names,
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
