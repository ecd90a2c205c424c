"""Every engine and style name the CLI, the API (OpenAPI enums) and the UI offer comes from the registries.

A test engine registered in an extended catalog shows up in all three, and requests naming it pass
validation; names that are not registered are refused everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from actors.engines import AUTO_HEAD, EngineCatalog, Registry, default_catalog
from actors.reconstruct3d.head import CanonicalHeadEngine
from jobs import generate
from serve.app import create_app
from serve.service import AvatarService
from serve.settings import ServeSettings
from serve.ui import build_ui


class WatercolourStylizer:
    """A test 2D engine with a style of its own."""

    name = "watercolour"
    styles = ("watercolour", "realistic")

    @dataclass(frozen=True)
    class Options:
        def check_inputs(self) -> None:
            return None

    def __init__(self, options=None, *, device=None):
        self.options = options

    @classmethod
    def wants_gpu(cls, options, device):
        return False

    def stylize(self, faces, style, request, seeds):
        raise NotImplementedError


class ClayHeadEngine(CanonicalHeadEngine):
    """A test head engine."""

    name = "clay"


def cli_choices(catalog: EngineCatalog) -> dict[str, tuple]:
    parser = generate.build_parser(catalog)
    actions = {action.dest.split(".")[-1]: action for action in parser._actions}
    style_help = actions["styles"].help
    offered_styles = tuple(style_help.split("from ", 1)[1].split(" (default")[0].split(", "))
    return {"engine": tuple(actions["engine"].choices), "head_engine": tuple(actions["head_engine"].choices),
            "styles": offered_styles}


def api_choices(catalog: EngineCatalog, tmp_path) -> dict[str, tuple]:
    app = create_app(ServeSettings(results_dir=tmp_path, ui=False), catalog=catalog)
    schemas = app.openapi()["components"]["schemas"]
    properties = schemas["AvatarOptions"]["properties"]

    def enum(name):
        schema = next(s for s in properties[name].get("anyOf", [properties[name]]) if s.get("type") != "null")
        return tuple((schema.get("items") or schema)["enum"])

    return {"engine": enum("engine"), "head_engine": enum("head_engine"), "styles": enum("styles")}


def ui_choices(catalog: EngineCatalog, tmp_path) -> dict[str, tuple]:
    demo = build_ui(AvatarService(ServeSettings(results_dir=tmp_path), catalog=catalog))
    by_id = {getattr(block, "elem_id", None): block for block in demo.blocks.values()}

    def choices(elem_id):
        return tuple(value for _, value in by_id[elem_id].choices)

    return {"engine": choices("engine"), "head_engine": choices("head-engine"), "styles": choices("style")}


def expected(catalog: EngineCatalog) -> dict[str, tuple]:
    return {"engine": catalog.stylizers.names, "head_engine": (AUTO_HEAD, *catalog.heads.names),
            "styles": catalog.styles}


@pytest.fixture(scope="module")
def extended() -> EngineCatalog:
    return default_catalog().with_stylizer(WatercolourStylizer).with_head(ClayHeadEngine)


@pytest.mark.parametrize("which", ["default", "extended"])
def test_cli_api_and_ui_offer_exactly_the_registered_names(which, extended, tmp_path):
    catalog = default_catalog() if which == "default" else extended
    want = expected(catalog)
    cli = cli_choices(catalog)
    assert cli["engine"] == want["engine"] and cli["head_engine"] == want["head_engine"]
    assert cli["styles"] == (*want["styles"], "all")
    api = api_choices(catalog, tmp_path / "api")
    assert api["engine"] == want["engine"] and api["head_engine"] == want["head_engine"]
    assert api["styles"] == (*want["styles"], "all")
    assert ui_choices(catalog, tmp_path / "ui") == want
    if which == "extended":
        assert "watercolour" in want["engine"] and "watercolour" in want["styles"] and "clay" in want["head_engine"]


def test_requests_are_checked_against_the_catalog(extended):
    from actors.request import AvatarRequest

    request = AvatarRequest(engine="watercolour", styles=("watercolour",), head_engine="clay")
    assert extended.resolve_request(request).styles == ("watercolour",)
    with pytest.raises(ValueError, match="Unknown 2D engine 'watercolour'"):
        default_catalog().resolve_request(request)
    with pytest.raises(ValueError, match="offline engine has no style 'watercolour'"):
        extended.resolve_request(AvatarRequest(styles=("watercolour",)))
    assert extended.resolve_request(AvatarRequest(engine="watercolour", styles=("all",))).styles == WatercolourStylizer.styles


def test_registry_names_come_from_the_classes():
    registry = Registry("2D engine", [WatercolourStylizer])
    assert registry.names == ("watercolour",) and registry.default == "watercolour"
    with pytest.raises(ValueError, match="Two 2D engines"):
        registry.with_engine(WatercolourStylizer)
    with pytest.raises(ValueError, match="choose from watercolour"):
        registry.engine_class("oil")
