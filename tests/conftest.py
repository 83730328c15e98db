"""Fixtures: one shared stack of the three services against the real Kafka and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.stack import Stack, new_stack


@pytest.fixture(scope="session")
async def stack() -> AsyncIterator[Stack]:
    """Ingest, projector and read API, started once for the session (own topic/generation)."""
    s = new_stack()
    await s.start()
    yield s
    await s.close()
