"""Start the avatar service: `python app.py [--host 127.0.0.1] [--port 7860] [--base-model PATH ...]`.

API and OpenAPI docs at /docs, the Gradio UI at /ui. Every setting (the service's limits and the engines'
weights and device) can also come from `AVATAR_*` environment variables named after the flags
(`--base-model` ⇔ `AVATAR_BASE_MODEL`); flags given here win.
"""
from __future__ import annotations

import argparse


def build_parser(catalog) -> argparse.ArgumentParser:
    from actors import options as opts
    from actors.config import add_config_arguments, config_from_environ
    from serve.settings import ServeSettings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    service = parser.add_argument_group("service")
    opts.add_arguments(service, ServeSettings, defaults=ServeSettings.from_env())
    add_config_arguments(parser, catalog, defaults=config_from_environ(catalog), limits=False)
    return parser


def main(argv: list[str] | None = None) -> None:
    from actors import options as opts
    from actors.config import config_from_args
    from actors.engines import default_catalog
    from serve.settings import ServeSettings

    catalog = default_catalog()
    parser = build_parser(catalog)
    args = parser.parse_args(argv)
    from serve.app import create_app
    from serve.server import run

    try:
        settings = opts.from_namespace(ServeSettings, args)
        config = config_from_args(args, catalog)
    except ValueError as error:
        parser.error(str(error))
    run(create_app(settings, config=config, catalog=catalog), settings, host=args.host, port=args.port,
        log_level=args.log_level)


if __name__ == "__main__":
    main()
