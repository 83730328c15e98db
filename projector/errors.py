"""Errors of the projector, each saying whether retrying can help."""

from __future__ import annotations


class ProjectorError(Exception):
    """Root of projector errors; ``retriable`` tells the batch loop to retry or to stop."""

    retriable = False


class WriteConflict(ProjectorError):  # noqa: N818 - names the condition, like Redis' own
    """A message changed under us more times than the retry budget allows. Retriable."""

    retriable = True


class CorruptState(ProjectorError):  # noqa: N818 - names the condition
    """A stored value cannot be decoded; the projector stops rather than overwrite it."""
