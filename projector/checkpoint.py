"""Where a generation stands in the log: its recorded positions, as commands and results.

After each batch (and its dead letters) the store records, per partition, the offset after
the batch's last record; only ever forward. The projector resumes from these positions
(projector.positions), so a projection that lost writes is rebuilt from the log rather than
left incomplete; a partition whose position vanished is noticed after its next batch (it
is reported as new) or by the runner's idle check, and read again from the beginning.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka.structs import ConsumerRecord

from projector.commands import ScriptedPipelines


def offsets_after(records: Iterable[ConsumerRecord[bytes, bytes]]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the offset after the last of ``records`` there."""
    out: dict[tuple[str, int], int] = {}
    for r in records:
        key = (r.topic, r.partition)
        out[key] = max(out.get(key, 0), r.offset + 1)
    return out


def record_command(
    io: ScriptedPipelines, key: str, positions: dict[tuple[str, int], int]
) -> tuple[Any, ...]:
    """The POSITIONS script call recording ``positions`` in the HASH ``key``."""
    args: list[Any] = []
    for (topic, partition), offset in sorted(positions.items()):
        args += [f"{topic}:{partition}", offset]
    return io.evalsha("positions", [key], args)


def new_partitions(reply: Sequence[bytes]) -> list[int]:
    """The partitions the POSITIONS reply says had no recorded position before."""
    return [int(field.rsplit(b":", 1)[1]) for field in reply]


def fields(topic: str, partitions: Iterable[int]) -> list[str]:
    """The position fields of ``partitions``."""
    return [f"{topic}:{p}" for p in partitions]
