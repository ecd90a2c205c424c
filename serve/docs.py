"""The API documentation page, working offline: Swagger UI at /docs.

FastAPI's own pages load Swagger UI's script and styles from a CDN, so they are blank on a machine
without internet access (and they tell a third party who reads our docs). The assets here come from
the PyPI package `fastapi-offline` (Swagger UI 5; MIT), served from its installed folder; nothing on the
page refers to another host (the validator badge, which would ask validator.swagger.io, is off).
ReDoc is not offered: its page fetches its logo from the vendor's CDN whatever the options.
"""
from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"


def mount_offline_docs(app: FastAPI, *, docs_url: str = "/docs") -> None:
    """Serve Swagger UI at `docs_url` with packaged assets. Build `app` with `docs_url=None, redoc_url=None`."""
    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS_URL, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # the badge would ask validator.swagger.io
        )
