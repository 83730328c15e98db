"""Batches of Redis commands sent as one pipeline, with Lua scripts called by SHA.

redis-py's own pipeline object costs more per command than the Redis side of the projection's
writes, so commands go as argument tuples straight through a pooled connection of the
synchronous client (packed by redis-py with hiredis), about half the cost of the asyncio
pipeline. A server that lost the scripts (restart, SCRIPT FLUSH, failover: NOSCRIPT) gets them
loaded again and the batch re-run, which is harmless because every projection step is
idempotent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from redis import Redis
from redis.exceptions import NoScriptError, ResponseError

from runtime import cluster_pipeline, redis_client

Commands = list[tuple[Any, ...]]
"""Redis commands as argument tuples, e.g. ``("SET", key, value)``."""


class ScriptedPipelines:
    """Runs command batches on ``redis`` (synchronous, bytes); ``sources`` maps script names to
    Lua source. Raises redis-py connection errors and the first error reply of a batch."""

    def __init__(self, redis: Redis, sources: dict[str, str]) -> None:
        self.redis = redis
        self._sources = sources
        self._sha: dict[str, str] = {}
        # Redis names a script by the SHA1 of its source, so callers can name it up front.
        self.shas = {
            n: hashlib.sha1(src.encode(), usedforsecurity=False).hexdigest()
            for n, src in sources.items()
        }

    def evalsha(self, name: str, keys_: Sequence[str], args: Sequence[Any]) -> tuple[Any, ...]:
        """The command tuple of a call of the script ``name`` (for :meth:`execute`)."""
        return ("EVALSHA", self.shas[name], len(keys_), *keys_, *args)

    def execute(self, cmds: Commands) -> list[Any]:
        """Run ``cmds`` as one pipeline; load the scripts and run again on NOSCRIPT.

        Raises the first error reply, and redis-py connection errors."""
        return self.run(lambda out: out.extend(cmds))

    def _load(self) -> None:
        # Replaced whole, never filled in place: a thread that finds it non-empty must find
        # every script in it (stores are used from worker threads, possibly several at once).
        self._sha = {name: str(self.redis.script_load(src)) for name, src in self._sources.items()}

    def script(self, cmds: Commands, name: str, keys_: Sequence[str], args: Sequence[Any]) -> None:
        """Append an EVALSHA of the script ``name`` to ``cmds``."""
        cmds.append(("EVALSHA", self._sha[name], len(keys_), *keys_, *args))

    def run(self, build: Callable[[Commands], None]) -> list[Any]:
        """Run the commands ``build`` appends as one pipeline; reload scripts on NOSCRIPT."""
        if not self._sha:
            self._load()
        for _ in range(3):
            cmds: Commands = []
            build(cmds)
            results = self._send(cmds)
            if not any(isinstance(r, NoScriptError) for r in results):
                for result in results:
                    if isinstance(result, Exception):
                        raise result
                return results
            self._load()
        raise NoScriptError("scripts vanished again right after loading them")

    def _send(self, cmds: Commands) -> list[Any]:
        """Send commands in one write and read every reply (error replies as exceptions).

        A connection that failed mid-way is disconnected, never returned to the pool with
        replies outstanding (docs/pitfalls.md: redis-py#2624). On a Redis Cluster the
        commands go to the masters of their slots (``runtime.cluster_pipeline``).
        """
        if not cmds:
            return []
        if redis_client.is_cluster(self.redis):
            return cluster_pipeline.send(self.redis, cmds)
        pool = self.redis.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command(conn.pack_commands(cmds))  # type: ignore[no-untyped-call]
            results: list[Any] = []
            for _ in cmds:
                try:
                    results.append(conn.read_response())
                except ResponseError as exc:
                    results.append(exc)
        except BaseException:
            conn.disconnect()  # type: ignore[no-untyped-call]
            raise
        finally:
            pool.release(conn)
        return results
