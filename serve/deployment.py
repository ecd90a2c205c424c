"""Ray Serve deployment of the same FastAPI app (API + UI): `serve run serve/serve_config.yaml`.

Each replica builds the app with `create_app` at start-up (late-bound ingress), so its job service,
queue and sweeper start with the replica's ASGI lifespan. Job records and files live in
`results_dir`; replicas that share that folder (one node, or a shared file system) serve each
other's jobs, so `GET /v1/avatars/{id}` works whichever replica answers. Each replica bounds its
own work (`workers` + `max_pending`) and answers 429 when full.
"""
from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application


def build_asgi_app(options: dict[str, Any]):
    """The replica's app: settings from `AVATAR_*` environment variables, overridden by `options`."""
    from serve.app import create_app
    from serve.settings import ServeSettings

    return create_app(ServeSettings.from_env(**options))


@serve.deployment(name="AvatarService", ray_actor_options={"num_cpus": 1}, max_ongoing_requests=64, health_check_period_s=10)
@serve.ingress()
class AvatarDeployment:
    """One replica: the FastAPI app with its own workers (each loads the models once)."""

    def __init__(self, **options: Any) -> None:
        self._options = options

    def __serve_build_asgi_app__(self):
        return build_asgi_app(self._options)


def build_app(args: dict) -> Application:
    """Application builder for `serve run serve.deployment:build_app key=value ...` and the config's `args`.

    `args` are ServeSettings fields (e.g. results_dir, ttl_s, workers, max_pending); they are
    validated here, before any replica starts.
    """
    from serve.settings import ServeSettings

    ServeSettings.from_env(**args)  # raises ValueError / TypeError on a bad option
    return AvatarDeployment.bind(**args)


app = AvatarDeployment.bind()
