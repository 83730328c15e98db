"""Problem types the project owns: documents name them, both services serve their pages."""

from __future__ import annotations

import uuid

import orjson

from schemas import problems
from tests.support.stack import Stack


async def _page(stack: Stack, base: str, path: str) -> tuple[int, str]:
    async with stack.http.get(base + path) as resp:
        return resp.status, await resp.text()


async def test_both_services_serve_a_page_for_every_problem_type(stack: Stack) -> None:
    """GET /problems/<name> answers each type's title and explanation on ingest and API."""
    for base in (stack.ingest_url, stack.api_url):
        for kind in problems.PROBLEM_TYPES.values():
            status, text = await _page(stack, base, kind.uri)
            assert status == 200
            assert text.startswith(f"{kind.title} ({kind.status})")
        status, _ = await _page(stack, base, problems.TYPE_PATH + "no-such-type")
        assert status == 404


async def test_read_api_problems_name_their_project_owned_type(stack: Stack) -> None:
    """403, 400 and 404 of the read API carry the type URI and the fixed title of their type."""
    missing_key = await stack.get(f"/api/messagestatus/{uuid.uuid4()}", api_key=None)
    bad_id = await stack.get("/api/messagestatus/not-a-uuid")
    unknown = await stack.get(f"/api/messagestatus/{uuid.uuid4()}")
    for reply, kind in (
        (missing_key, problems.FORBIDDEN),
        (bad_id, problems.INVALID_FIELD),
        (unknown, problems.NOT_FOUND),
    ):
        assert reply.status == kind.status
        assert (reply.body["type"], reply.body["title"]) == (kind.uri, kind.title)


async def test_ingest_problems_name_their_project_owned_type(stack: Stack) -> None:
    """A bad signature is /problems/unauthenticated; a bad body /problems/invalid-body."""
    unsigned = await stack.post({"status": "SENT"}, secret="whsec_" + "QUJD" * 8)
    invalid = await stack.post(b"[1]")
    assert unsigned.body["type"] == problems.UNAUTHENTICATED.uri
    assert invalid.body["type"] == problems.INVALID_BODY.uri
    assert invalid.body["title"] == problems.INVALID_BODY.title


async def test_http_layer_refusals_are_about_blank_with_the_status_phrase(stack: Stack) -> None:
    """An unknown path is about:blank titled "Not Found", on both services."""
    for base in (stack.ingest_url, stack.api_url):
        async with stack.http.get(base + "/no/such/path") as resp:
            body = orjson.loads(await resp.read())
        assert resp.status == 404
        assert (body["type"], body["title"]) == ("about:blank", "Not Found")
