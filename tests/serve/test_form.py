"""The submit form refuses what it does not understand (issue 13, item 17): `modes=""` silently became
`2d`; an empty value, an unknown field (the CLI's `style=`) or a single-valued field given twice is
now 422 naming the field. A fast stand-in pipeline: only the API layer is under test."""
from __future__ import annotations

import httpx
import pytest

from serve.app import create_app
from serve.settings import ServeSettings
from tests.serve.conftest import live_server
from tests.serve.standins import FastPipeline


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = ServeSettings(results_dir=tmp_path_factory.mktemp("results"), ui=False, max_pending=64)
    with live_server(create_app(settings, pipeline_factory=FastPipeline)) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        yield client


def post(client, photo, data):
    return client.post("/v1/avatars", files={"photo": ("p.jpg", photo, "image/jpeg")}, data=data)


@pytest.mark.parametrize("field", ["modes", "styles", "engine", "seed", "strength", "size", "tone_lock",
                                   "tone_max_ita", "tone_max_hue", "head_engine", "texture_size"])
@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_value_is_422_naming_the_field(client, astronaut_jpeg, field, value):
    response = post(client, astronaut_jpeg, {field: value})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request" and response.json()["detail"].startswith(field)


def test_an_unknown_field_is_422(client, astronaut_jpeg):
    response = post(client, astronaut_jpeg, {"style": "anime"})  # the CLI's flag, not the form's field
    assert response.status_code == 422 and response.json()["detail"].startswith("style:")
    assert "styles" in response.json()["detail"]


def test_a_single_valued_field_given_twice_is_422(client, astronaut_jpeg):
    response = post(client, astronaut_jpeg, {"engine": ["offline", "offline"]})
    assert response.status_code == 422 and response.json()["detail"].startswith("engine")


@pytest.mark.parametrize("options, expected", [
    ({}, {"modes": ["2d"], "styles": ["realistic"], "texture_size": 1024}),
    ({"modes": ["2d", "3d"], "styles": ["anime", "sketch"], "texture_size": "512", "size": "264"},
     {"modes": ["2d", "3d"], "styles": ["anime", "sketch"], "texture_size": 512, "size": 264}),
    ({"styles": ["all", "all"]}, {"styles": ["anime", "cartoon", "realistic", "sketch"]}),
    ({"tone_lock": "false"}, {"tone_lock": False}),
])
def test_valid_forms_are_accepted_as_sent(client, astronaut_jpeg, options, expected):
    response = post(client, astronaut_jpeg, options)
    assert response.status_code == 202, response.text
    request = client.get(response.json()["status_url"]).json()["request"]
    assert {key: request[key] for key in expected} == expected


@pytest.mark.parametrize("options, field", [
    ({"styles": ["all", "anime"]}, "styles"), ({"size": "260"}, "size"), ({"texture_size": "300"}, "texture_size"),
    ({"strength": "nan"}, "strength"), ({"strength": "inf"}, "strength"), ({"modes": "2d,3d"}, "modes"),
])
def test_values_the_schema_forbids_are_422(client, astronaut_jpeg, options, field):
    response = post(client, astronaut_jpeg, options)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def test_405_names_every_method_of_the_path(client):
    response = client.put("/v1/avatars/" + "0" * 32)
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"
    assert client.patch("/v1/avatars").headers["allow"] == "POST"


def test_openapi_states_the_answers_and_links(client):
    document = client.get("/openapi.json").json()
    submit = document["paths"]["/v1/avatars"]["post"]
    assert {"202", "400", "408", "413", "415", "422", "429"} <= set(submit["responses"])
    assert "Retry-After" in submit["responses"]["429"]["headers"]
    assert set(submit["responses"]["202"]["links"]) == {"GetAvatar", "DeleteAvatar"}
    body = submit["requestBody"]["content"]["multipart/form-data"]
    assert body["encoding"]["photo"]["contentType"] == "image/jpeg, image/png, image/webp"
    schema = document["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    assert schema["additionalProperties"] is False and schema["required"] == ["photo"]
    assert schema["properties"]["size"]["multipleOf"] == 8
    assert schema["properties"]["texture_size"]["enum"] == [256, 512, 1024, 2048]
    assert all("null" not in str(field.get("anyOf", "")) for field in schema["properties"].values())
