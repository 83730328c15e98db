"""Errors of the projector, replay and dead-letter commands, under one root.

Each error's ``retriable`` flag is what the retry loop reads (:func:`is_transient`, used by
``projector.batch.until_done``): a retriable error repeats the same step with back-off until it
applies; any other error stops the process before it commits its offsets, so nothing is
skipped. Setting the flag on a new error is the whole change needed to make it retried.
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "AheadOfLog",
    "CorruptState",
    "GenerationError",
    "ProjectorError",
    "ReplayRefused",
    "WriteConflict",
    "is_transient",
]


class ProjectorError(Exception):
    """Root of projector errors; ``retriable`` says whether repeating the step can help."""

    retriable = False


class WriteConflict(ProjectorError):  # noqa: N818 - names the condition, like Redis' own
    """A message changed under us more times than the retry budget allows. Retriable."""

    retriable = True


class CorruptState(ProjectorError):  # noqa: N818 - names the condition
    """A stored value cannot be decoded; the projector stops rather than overwrite it."""


class AheadOfLog(ProjectorError):  # noqa: N818 - names the condition
    """The projection reflects offsets the log does not have (the topic was recreated).

    Not retriable: rebuild the projection with ``msgstatus replay``.
    """


class GenerationError(ProjectorError):
    """A generation switch was refused: another replay switched first. Not retriable."""


class ReplayRefused(ProjectorError):  # noqa: N818 - names the outcome
    """The new generation could be behind the served one, so the switch was not made."""


_REDIS_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
"""Failures of the connection, not of the command: the same command can succeed later.
redis-py's errors carry no flag, so these classes stand in for one."""


def is_transient(exc: BaseException) -> bool:
    """True when a retry of the same step can cure ``exc``: a projector error flagged
    ``retriable``, or Redis unreachable or too slow."""
    if isinstance(exc, ProjectorError):
        return exc.retriable
    return isinstance(exc, _REDIS_UNREACHABLE)
