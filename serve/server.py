"""Run the app under uvicorn with the service's connection limits: one place for `python app.py`,
the tests' live server and `bench.serve`, so all three meet slow clients and SIGTERM the same way.

- `header_timeout_s`: the headers of a request must arrive in time (`serve.slow_clients`).
- `keep_alive_s`: an idle kept-alive connection is closed after it.
- `shutdown_timeout_s`: on SIGTERM, open connections (Gradio's event streams, slow clients) get this
  long to finish; then the lifespan stops the job service, which kills running jobs at once.
The body deadline is app-level (`BodyReadDeadline`, added by `create_app`), so it holds under Ray Serve too.
"""
from __future__ import annotations

from serve.settings import ServeSettings
from serve.slow_clients import header_deadline_protocol


def server_config(app, settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 7860,
                  log_level: str = "info"):
    """A `uvicorn.Config` for `app` with `settings`' connection limits (port 0: any free port)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        http=header_deadline_protocol(settings.header_timeout_s),
        timeout_keep_alive=settings.keep_alive_s,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )


def run(app, settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 7860, log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM."""
    import uvicorn

    uvicorn.Server(server_config(app, settings, host=host, port=port, log_level=log_level)).run()
