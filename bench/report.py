"""The results table (Markdown) and its place in ``docs/benchmarks.md``.

``write_docs`` replaces only the text between the two marker comments, so the prose of the
document stays as written; a missing document is created with the markers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import Row

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"


def _met(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "**no**")


def render_table(rows: Sequence[Row]) -> str:
    """``path | ours | reference | ratio | target | met?`` in Markdown, notes as footnotes."""
    lines = [
        "| path | ours | reference | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for row in rows:
        mark = ""
        if row.note:
            notes.append(row.note)
            mark = f" [{len(notes)}]"
        lines.append(
            f"| {row.path}{mark} | {row.ours} | {row.reference} | {row.ratio} | {row.target} "
            f"| {_met(row.met)} |"
        )
    if notes:
        lines.append("")
        lines += [f"[{i}] {note}" for i, note in enumerate(notes, 1)]
    return "\n".join(lines)


def render_results(rows: Sequence[Row], meta: dict[str, Any]) -> str:
    """The generated section: run facts, machine facts, table, failures."""
    facts = meta["facts"]
    out = [
        START,
        f"Run `{meta['run_id']}` on {facts['date']}: {meta['mode']} run "
        f"({meta['rounds']} rounds, {meta['duration_s']:g} s per wrk run), "
        f"{meta['elapsed_s']} s in all; Kafka {meta['kafka']}, Redis {meta['redis']}.",
        "",
        "| machine | |",
        "|---|---|",
    ]
    for key in ("nproc", "cpu", "memory", "kernel", "python", "redis", "kafka", "java", "wrk"):
        out.append(f"| {key} | {facts[key]} |")
    out.append(f"| libraries | {facts['libraries']} |")
    out.append(f"| code measured | {facts['code']} |")
    out += ["", render_table(rows)]
    for name, err in meta.get("errors", {}).items():
        out.append(f"\n`{name}` did not complete in this run: {err}")
    out.append(END)
    return "\n".join(out)


def write_docs(path: Path, rows: Sequence[Row], meta: dict[str, Any]) -> None:
    """Put the results section into ``path`` (between the markers, or as a new file)."""
    section = render_results(rows, meta)
    if path.exists():
        text = path.read_text()
        if START in text and END in text:
            head, rest = text.split(START, 1)
            tail = rest.split(END, 1)[1]
            path.write_text(head + section + tail)
            return
        path.write_text(text.rstrip() + "\n\n## Results\n\n" + section + "\n")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Benchmarks\n\n## Results\n\n" + section + "\n")
