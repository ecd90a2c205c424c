"""The Ray Serve config: it parses, its import path resolves, and it builds the same app."""
from pathlib import Path

import pytest
import yaml

CONFIG = Path(__file__).resolve().parents[2] / "serve" / "serve_config.yaml"


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def test_config_is_a_valid_serve_deploy_schema(config):
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema(**config)
    [application] = schema.applications
    assert application.route_prefix == "/"
    assert schema.http_options.host == "127.0.0.1"


def test_import_path_resolves_to_a_builder_of_the_named_deployment(config, tmp_path):
    import importlib

    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
    from ray.serve.deployment import Application

    [application] = config["applications"]
    module_name, attribute = application["import_path"].split(":")
    builder = getattr(importlib.import_module(module_name), attribute)
    args = {**application["args"], "results_dir": str(tmp_path)}
    app = call_user_app_builder_with_args_if_necessary(builder, args)
    assert isinstance(app, Application)
    deployment_names = {d["name"] for d in application["deployments"]}
    from serve.deployment import AvatarDeployment

    assert AvatarDeployment.name in deployment_names
    assert hasattr(AvatarDeployment.func_or_class, "__serve_build_asgi_app__")


def test_builder_refuses_bad_settings_before_any_replica_starts():
    from serve.deployment import build_app

    with pytest.raises(ValueError, match="workers"):
        build_app({"workers": 0})
    with pytest.raises(TypeError):
        build_app({"no_such_setting": 1})


def test_replicas_build_the_same_fastapi_app_with_the_config_args(config, tmp_path):
    from fastapi import FastAPI

    from serve.deployment import build_asgi_app

    [application] = config["applications"]
    app = build_asgi_app({**application["args"], "results_dir": str(tmp_path), "ui": False})
    assert isinstance(app, FastAPI)
    paths = set(app.openapi()["paths"])
    assert {"/v1/avatars", "/v1/avatars/{job_id}", "/v1/avatars/{job_id}/files/{name}", "/healthz"} <= paths
    settings = app.state.settings
    assert (settings.ttl_s, settings.workers, settings.max_pending) == (
        application["args"]["ttl_s"], application["args"]["workers"], application["args"]["max_pending"],
    )
