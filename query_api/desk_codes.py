"""The desk's provider table (``desk_static/provider-codes.json``), made from the mapping tables
of docs/providers.md, which are its only source: the JSON is never edited by hand.

``python -m query_api.desk_codes`` writes it; ``--check`` exits 1 (naming the file) when it
differs from the docs. Each ``###`` section of "Mapping tables" names its adapter (a line
``Adapter `<name>```) and holds one table: provider word(s) | canonical | why | retry, where
retry is empty or ``may help: <note>`` / ``will not help: <note>`` (docs/providers.md).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "providers.md"
JSON = Path(__file__).resolve().parent / "desk_static" / "provider-codes.json"
SOURCE = "docs/providers.md, Mapping tables"

_ADAPTER = re.compile(r"^Adapter `([a-z0-9-]+)`", re.MULTILINE)


class DocFormatError(ValueError):
    """The mapping tables are not in the shape the module docstring describes."""


def rows(doc: str) -> list[dict[str, str]]:
    """Every row of the mapping tables, in order: ``provider`` (adapter), ``section``,
    ``when``, ``status``, ``why``, ``retry``, ``retryNote``. Raises :class:`DocFormatError`."""
    try:
        part = doc.split("\n## Mapping tables", 1)[1].split("\n## ", 1)[0]
    except IndexError:
        raise DocFormatError("no '## Mapping tables' section") from None
    out = []
    for section in re.split(r"^### ", part, flags=re.MULTILINE)[1:]:
        title = section.splitlines()[0].strip()
        adapter = _ADAPTER.search(section)
        if adapter is None:
            raise DocFormatError(f"section {title!r} names no adapter")
        table = [line for line in section.splitlines() if line.startswith("|")][2:]
        for line in table:
            cells = [cell.strip() for cell in line.strip()[1:-1].split("|")]
            if len(cells) != 4:
                raise DocFormatError(f"{title}: not four cells: {line[:60]!r}")
            when, status, why, retry = cells
            advice, _, note = retry.partition(": ")
            out.append(
                {
                    "provider": adapter[1],
                    "section": title,
                    "when": when,
                    "status": status,
                    "why": why,
                    "retry": advice,
                    "retryNote": note,
                }
            )
    return out


def render(doc: str) -> str:
    """The JSON text of the desk's table (one-space indent, UTF-8 text, final newline)."""
    document: dict[str, Any] = {"source": SOURCE, "rows": rows(doc)}
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    """Write the JSON (exit 0), or with ``--check`` compare it (exit 1 when it differs)."""
    text = render(DOC.read_text(encoding="utf-8"))
    if "--check" in argv:
        if JSON.read_text(encoding="utf-8") != text:
            print(f"{JSON} differs from {DOC}: python -m query_api.desk_codes", file=sys.stderr)
            return 1
        return 0
    JSON.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
