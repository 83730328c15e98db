"""Fixtures: one shared stack of the three services against the real Kafka and Redis."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from hypothesis import settings

from tests.support.stack import Stack, new_stack

# The fault tests need three brokers: `make test-cluster` runs them, `make test` does not.
collect_ignore = [] if os.environ.get("MSGSTATUS_CLUSTER_TESTS") == "1" else ["cluster"]


@pytest.fixture(scope="session")
async def stack() -> AsyncIterator[Stack]:
    """Ingest, projector and read API, started once for the session (own topic/generation)."""
    s = new_stack()
    await s.start()
    yield s
    await s.close()


# Machines differ threefold and share their cores with Kafka and Redis: no per-example
# deadline (hypothesis' default 200 ms fails under load without finding anything).
settings.register_profile("msgstatus", deadline=None)
settings.load_profile("msgstatus")
