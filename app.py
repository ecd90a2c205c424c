"""Start the avatar service: `python app.py [--host 127.0.0.1] [--port 7860]`.

API and OpenAPI docs at /docs, the Gradio UI at /ui. Every setting can also come from `AVATAR_*`
environment variables (see serve/settings.py); flags given here win.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--results-dir", type=Path, help="where jobs and results are stored")
    parser.add_argument("--ttl", type=float, dest="ttl_s", help="seconds results are kept after a job ends")
    parser.add_argument("--workers", type=int, help="concurrent jobs (each loads its own models)")
    parser.add_argument("--max-pending", type=int, help="jobs that may wait for a worker before 429")
    parser.add_argument("--no-ui", action="store_false", dest="ui", default=None, help="do not mount the Gradio UI")
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import uvicorn

    from serve.app import create_app
    from serve.settings import ServeSettings

    settings = ServeSettings.from_env(
        results_dir=args.results_dir, ttl_s=args.ttl_s, workers=args.workers, max_pending=args.max_pending, ui=args.ui
    )
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
