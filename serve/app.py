"""`create_app(settings)`: the FastAPI app (API, offline OpenAPI docs at /docs and /redoc, Gradio UI at /ui).

All state (settings, the job service with its queue and store) lives on `app.state`; the service
starts and stops with the app's lifespan, so uvicorn, tests and Ray Serve replicas all run it the same way.
"""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from serve.api import avatar_routes, install_error_handlers, router
from serve.body_limit import BodySizeLimit
from serve.docs import mount_offline_docs
from serve.openapi import complete_openapi
from serve.runner import PipelineFactory
from serve.service import AvatarService
from serve.settings import MB, ServeSettings
from serve.slow_clients import BodyReadDeadline

FORM_OVERHEAD_BYTES = 1 * MB  # room for multipart boundaries and option fields beside the photo


def create_app(settings: ServeSettings | None = None, *, config=None, catalog=None,
               pipeline_factory: PipelineFactory | None = None) -> FastAPI:
    """Build the app. `config` (`actors.config.PipelineConfig`, default: from `AVATAR_*` variables) says which
    engines and weights this server runs; `catalog` which engines exist (every name the API and UI offer).
    `pipeline_factory` makes one pipeline per worker (default: `actors.pipeline.AvatarPipeline`).

    The job service starts in the ASGI lifespan: serve the app with uvicorn, Ray Serve or another server
    that runs lifespan events (an ASGI test transport without lifespan leaves jobs queued).
    """
    from actors.config import config_from_environ
    from actors.engines import default_catalog

    settings = settings or ServeSettings.from_env()
    catalog = catalog or default_catalog()
    config = config or config_from_environ(catalog)
    service = AvatarService(settings, pipeline_factory, config=config, catalog=catalog)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        service.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    app = FastAPI(
        title="Indian Avatar AI",
        version="0.1.0",
        description=(
            "2D and 3D avatars from one face photo, tuned for Indian faces and skin tones. Submit with "
            "`POST /v1/avatars`, poll `GET /v1/avatars/{id}`, download from `files`. Results expire after "
            f"{settings.ttl_s:g} s (face photos are biometric data); `DELETE` removes them at once."
        ),
        lifespan=lifespan,
        docs_url=None,  # served offline by serve.docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.service = service
    install_error_handlers(app)
    app.include_router(avatar_routes(catalog))
    app.include_router(router)
    app.add_middleware(
        BodySizeLimit,
        max_body_bytes=settings.max_upload_bytes + FORM_OVERHEAD_BYTES,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(BodyReadDeadline, timeout_s=settings.body_timeout_s)  # outermost: times every route
    mount_offline_docs(app)

    def openapi() -> dict:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            generated = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = complete_openapi(generated, catalog, service.config)
        return app.openapi_schema

    app.openapi = openapi

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("ui/" if settings.ui else "docs")

    if settings.ui:
        from serve.ui import mount_ui

        mount_ui(app, service)
    return app
