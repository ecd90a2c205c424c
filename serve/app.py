"""`create_app(settings)`: the FastAPI app (API, OpenAPI docs at /docs, Gradio UI at /ui).

All state (settings, the job service with its queue and store) lives on `app.state`; the service
starts and stops with the app's lifespan, so uvicorn, tests and Ray Serve replicas all run it the same way.
"""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from serve.api import install_error_handlers, router
from serve.body_limit import BodySizeLimit
from serve.runner import PipelineFactory
from serve.service import AvatarService
from serve.settings import MB, ServeSettings

FORM_OVERHEAD_BYTES = 1 * MB  # room for multipart boundaries and option fields beside the photo


def create_app(settings: ServeSettings | None = None, *, pipeline_factory: PipelineFactory | None = None) -> FastAPI:
    """Build the app. `pipeline_factory` makes one pipeline per worker (default: `actors.pipeline.AvatarPipeline`).

    The job service starts in the ASGI lifespan: serve the app with uvicorn, Ray Serve or another server
    that runs lifespan events (an ASGI test transport without lifespan leaves jobs queued).
    """
    settings = settings or ServeSettings.from_env()
    service = AvatarService(settings, pipeline_factory)

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
    )
    app.state.settings = settings
    app.state.service = service
    install_error_handlers(app)
    app.include_router(router)
    app.add_middleware(
        BodySizeLimit,
        max_body_bytes=settings.max_upload_bytes + FORM_OVERHEAD_BYTES,
        max_upload_bytes=settings.max_upload_bytes,
    )

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("ui/" if settings.ui else "docs")

    if settings.ui:
        from serve.ui import mount_ui

        mount_ui(app, service)
    return app
