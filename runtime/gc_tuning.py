"""Garbage-collector settings for long-running service processes (no aiohttp: the projector
uses them too)."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Move start-up objects out of the collector's sight and collect the young generation
    less often: full collections over a large heap were the p99 of cached reads (measured:
    p99 30 ms -> 13 ms at 64 connections, bench/read_by_id). Request and batch objects die
    young and are freed by reference counting; cycles are still collected, in larger steps.
    Call it once, after start-up and before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
