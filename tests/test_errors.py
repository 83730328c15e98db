"""The projector's one retry mechanism: the ``retriable`` flag, read by the retry loop."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from projector import errors
from projector.batch import until_done


def test_every_projector_error_has_one_root_and_says_whether_it_is_retriable() -> None:
    """Each exported error derives from ProjectorError; only WriteConflict is retriable."""
    exported = [getattr(errors, name) for name in errors.__all__ if name != "is_transient"]
    for cls in exported:
        assert issubclass(cls, errors.ProjectorError)
    assert {cls.__name__ for cls in exported if cls.retriable} == {"WriteConflict"}


def test_is_transient_reads_the_flag_and_names_redis_outages() -> None:
    """A flagged error, a lost Redis connection and an OSError are transient; nothing else."""
    assert errors.is_transient(errors.WriteConflict("busy"))
    assert errors.is_transient(RedisConnectionError("down"))
    assert errors.is_transient(ConnectionRefusedError())
    assert not errors.is_transient(errors.CorruptState("bad"))
    assert not errors.is_transient(ResponseError("WRONGTYPE"))
    assert not errors.is_transient(ValueError("bug"))


async def test_until_done_retries_a_newly_flagged_error_and_stops_on_others() -> None:
    """Setting ``retriable`` on an error is all it takes for the loop to retry it."""

    class Flaky(errors.ProjectorError):
        retriable = True

    calls = 0

    async def step() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise Flaky("once more")
        return "done"

    assert await until_done(step, retry_max_s=0.01) == "done"
    assert calls == 3

    async def broken() -> None:
        await asyncio.sleep(0)
        raise errors.CorruptState("never retried")

    with pytest.raises(errors.CorruptState):
        await until_done(broken, retry_max_s=0.01)
