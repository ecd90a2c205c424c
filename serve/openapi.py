"""The OpenAPI document, completed with what FastAPI cannot infer, so that it states every rule the
server enforces and every answer it gives (schemathesis checks both in `tests/serve/test_contract.py`).

FastAPI generates the fields, enums and bounds from the form model; this module adds:

- the submit body as one object: the photo (binary, `encoding` naming the three image types the
  server accepts) beside the options, no other field (`additionalProperties: false`), `all` alone in
  `styles`, and the rules that span fields (`allOf`): each 2D engine's own styles; no 2D or 3D engine
  this server is not configured for (`AvatarService.check_request`'s 422), when that mode is
  requested (absent `modes` means the request's default);
- the path parameters' formats (server-issued ids, published file names);
- response headers (`Location` on 202, `Retry-After` on 429) and the 404/405 answers;
- links: POST → GET status, DELETE; GET status → itself (polling), a file, DELETE; a file → DELETE —
  so a stateful run follows a job through its life.
"""
from __future__ import annotations

import copy
from typing import Any

from actors.engines import ALL_STYLES, AUTO_HEAD
from serve.store import FILE_NAME_PATTERN, JOB_ID_PATTERN
from serve.uploads import SUPPORTED_TYPES

SUBMIT = ("/v1/avatars", "post")
STATUS = ("/v1/avatars/{job_id}", "get")
FILE = ("/v1/avatars/{job_id}/files/{name}", "get")
DELETE = ("/v1/avatars/{job_id}", "delete")


def complete_openapi(document: dict[str, Any], catalog, config) -> dict[str, Any]:
    """A copy of FastAPI's `document` with the additions listed in the module docstring."""
    from actors.request import AvatarRequest

    document = copy.deepcopy(document)
    paths, schemas = document["paths"], document["components"]["schemas"]
    submit = paths[SUBMIT[0]][SUBMIT[1]]
    form = submit["requestBody"]["content"]["multipart/form-data"]
    body_name = form["schema"]["$ref"].rsplit("/", 1)[1]
    options = schemas["AvatarOptions"]
    defaults = AvatarRequest()
    schemas[body_name] = {
        "title": body_name,
        "type": "object",
        "properties": {
            "photo": {"type": "string", "contentMediaType": "application/octet-stream",
                      "description": "JPEG, PNG or WebP, at most the server's byte and pixel limits; the type is read "
                                     "from the bytes (the file name and part Content-Type are ignored)."},
            **copy.deepcopy(options["properties"]),
        },
        "required": ["photo"],
        "additionalProperties": False,
        "allOf": cross_field_rules(catalog, config, defaults),
    }
    properties = schemas[body_name]["properties"]
    properties["styles"] = styles_schema(properties["styles"])
    form["encoding"] = {"photo": {"contentType": ", ".join(SUPPORTED_TYPES)}}
    for name, field in schemas[body_name]["properties"].items():
        if field.get("type") == "array":
            form["encoding"][name] = {"style": "form", "explode": True}  # repeated form keys

    submit["responses"]["202"]["headers"] = {
        "Location": {"description": "the status URL", "schema": {"type": "string"}}}
    submit["responses"]["429"]["headers"] = {
        "Retry-After": {"description": "seconds until a worker is likely free", "schema": {"type": "integer", "minimum": 1}}}
    submit["responses"]["202"]["links"] = {
        "GetAvatar": {"operationId": "get_avatar", "parameters": {"job_id": "$response.body#/id"}},
        "DeleteAvatar": {"operationId": "delete_avatar", "parameters": {"job_id": "$response.body#/id"}},
    }
    paths[STATUS[0]][STATUS[1]]["responses"]["200"]["links"] = {
        "GetAvatar": {"operationId": "get_avatar", "parameters": {"job_id": "$response.body#/id"},
                      "description": "poll again until the job ends"},
        "GetAvatarFile": {"operationId": "get_avatar_file",
                          "parameters": {"job_id": "$response.body#/id", "name": "$response.body#/file_names/0"}},
        "DeleteAvatar": {"operationId": "delete_avatar", "parameters": {"job_id": "$response.body#/id"}},
    }
    paths[FILE[0]][FILE[1]]["responses"]["200"]["links"] = {
        "DeleteAvatar": {"operationId": "delete_avatar", "parameters": {"job_id": "$request.path.job_id"}},
    }
    for path, operations in paths.items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "job_id":
                    parameter["schema"] = {"type": "string", "pattern": f"^{JOB_ID_PATTERN.pattern}$",
                                           "description": "a server-issued job id", "title": "Job Id"}
                elif parameter["in"] == "path" and parameter["name"] == "name":
                    parameter["schema"] = {"type": "string", "pattern": f"^{FILE_NAME_PATTERN.pattern}$",
                                           "description": "a public file name from the job's `files`", "title": "Name"}
            if operation is not submit:
                operation["responses"].pop("422", None)  # path parameters are plain strings: nothing to refuse
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return document


def cross_field_rules(catalog, config, defaults) -> list[dict[str, Any]]:
    """JSON Schema for the request rules that span fields (see the module docstring), each written as
    a forbidden combination (`not`), a form fuzzers negate correctly."""
    rules: list[dict[str, Any]] = []
    default_engine = defaults.engine
    for name, cls in catalog.stylizers.items():
        offered = [*cls.styles, ALL_STYLES]
        foreign = [style for style in catalog.choices()["styles"] if style not in offered]
        engine = _field_is("engine", name, name == default_engine)
        if foreign:
            rules.append({"not": {"allOf": [engine, {"required": ["styles"], "properties": {
                "styles": {"contains": {"enum": foreign}}}}]}})
        if not set(defaults.styles) <= set(cls.styles):
            rules.append({"not": {"allOf": [engine, {"not": {"required": ["styles"]}}]}})
    for name in catalog.stylizers.names:
        if config.engine_problem(catalog.stylizers, name):
            rules.append({"not": {"allOf": [_mode_wanted("2d", defaults), _field_is("engine", name, name == default_engine)]}})
    for name in catalog.heads.names:
        if name != AUTO_HEAD and config.engine_problem(catalog.heads, name):
            rules.append({"not": {"allOf": [_mode_wanted("3d", defaults),
                                            _field_is("head_engine", name, name == defaults.head_engine)]}})
    return rules


def styles_schema(styles: dict[str, Any]) -> dict[str, Any]:
    """`styles` is a list of style names, or `all` alone (given once or repeated)."""
    names = [name for name in styles["items"]["enum"] if name != ALL_STYLES]
    return {**styles, "anyOf": [{"items": {"enum": names}}, {"items": {"const": ALL_STYLES}}]}


def _field_is(field: str, value: str, is_default: bool) -> dict[str, Any]:
    given = {"required": [field], "properties": {field: {"const": value}}}
    return {"anyOf": [{"not": {"required": [field]}}, given]} if is_default else given


def _mode_wanted(mode: str, defaults) -> dict[str, Any]:
    given = {"required": ["modes"], "properties": {"modes": {"contains": {"const": mode}}}}
    return {"anyOf": [{"not": {"required": ["modes"]}}, given]} if mode in defaults.modes else given
