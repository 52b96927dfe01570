"""GET /openapi.json describes every route the service registers."""
from __future__ import annotations

import re

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from emotion_sensing.config import Settings
from emotion_sensing.service.app import create_app


@pytest.fixture
async def served(models_dir):
    app = create_app(Settings(models_dir=models_dir, modalities=("text",)))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        yield app, http
    await server.close()


def _template(resource: web.AbstractResource) -> str:
    if isinstance(resource, web.StaticResource):
        return resource.canonical.rstrip("/") + "/{path}"
    return resource.canonical


async def test_every_registered_route_is_documented(served):
    app, http = served
    async with http.get("/openapi.json") as response:
        assert response.status == 200
        doc = await response.json()
    assert doc["openapi"].startswith("3.")
    registered = {(_template(route.resource), route.method.lower())
                  for route in app.router.routes() if route.method not in ("HEAD", "*")}
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert registered, "no routes registered?"
    missing = sorted(registered - documented)
    assert not missing, f"routes missing from openapi.py: {missing}"


async def test_the_document_is_self_consistent(served):
    _, http = served
    async with http.get("/openapi.json") as response:
        doc = await response.json()
    schemas = doc["components"]["schemas"]
    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(doc).replace("'", '"')))
    assert refs and refs <= set(schemas), refs - set(schemas)
    for path, item in doc["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            assert operation["responses"], (path, method)
            in_path = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert in_path == names, (path, method, in_path)
    # The error schema every 4xx uses.
    error = schemas["Error"]["properties"]["error"]
    assert error["required"] == ["code", "message"]
    turns = doc["paths"]["/v1/sessions/{session_id}/turns"]["post"]
    assert turns["responses"]["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "image/jpeg" in doc["paths"]["/v1/face"]["post"]["requestBody"]["content"]


async def test_a_real_error_matches_the_documented_schema(served):
    _, http = served
    async with http.post("/v1/text", data=b"{oops", headers={"Content-Type": "application/json"}) as response:
        body = await response.json()
    assert response.status == 400
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
