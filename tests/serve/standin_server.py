"""`python -m tests.serve.standin_server --pipeline hanging --port P --results-dir D [settings...]`: the
service as `python app.py` runs it (`serve.server.run`), with a stand-in pipeline from
`tests.serve.standins`, for tests that signal the server process itself (SIGTERM)."""
from __future__ import annotations

import argparse
from functools import partial

from tests.serve import standins

PIPELINES = {"fast": standins.FastPipeline, "hanging": standins.HangingPipeline,
             "slow": partial(standins.SlowPipeline, 1.0)}


def main(argv: list[str] | None = None) -> None:
    from actors import options as opts
    from serve.app import create_app
    from serve.server import run
    from serve.settings import ServeSettings

    parser = argparse.ArgumentParser()
    parser.add_argument("--pipeline", choices=sorted(PIPELINES), required=True)
    parser.add_argument("--port", type=int, required=True)
    opts.add_arguments(parser, ServeSettings, defaults=ServeSettings(ui=False))
    args = parser.parse_args(argv)
    settings = opts.from_namespace(ServeSettings, args)
    run(create_app(settings, pipeline_factory=PIPELINES[args.pipeline]), settings, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
