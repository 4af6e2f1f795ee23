"""Where an audit keeps its finished cells while it runs, so an interrupted audit continues where it stopped.

Each process appends one JSON line per finished record to its own file in the audit's staging folder
(``cells.rank<r>.jsonl`` and ``clean.rank<r>.jsonl``), flushed and synced to disk before the next cell starts. A
line cut short by an interruption is ignored on reading. ``--resume`` reads every file back and keeps the records
whose fingerprint matches a cell of the new plan (same case, model weights, attack, parameters, budget, seed and
metric settings), so only those cells are skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from SpectrumAttackLib.report.jsonable import to_jsonable

__all__ = ["CellStore"]


class CellStore:
    """Append-only record files of one audit in ``folder`` (the staging folder).

    Args:
        folder: an existing folder shared by every process of the audit.
        rank: this process's rank (its own files, so processes never write the same file).
    """

    KINDS = ("cells", "clean")

    def __init__(self, folder: str | os.PathLike, rank: int = 0) -> None:
        self.folder = Path(folder)
        self.rank = int(rank)

    def _file(self, kind: str) -> Path:
        return self.folder / f"{kind}.rank{self.rank}.jsonl"

    def append(self, kind: str, record: dict[str, Any]) -> None:
        """Write one record of ``kind`` (``"cells"`` or ``"clean"``) durably."""
        line = json.dumps(to_jsonable(record), allow_nan=False, sort_keys=True)
        with self._file(kind).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read(self, kind: str) -> list[dict[str, Any]]:
        """Every complete record of ``kind`` written by any rank (cut-off lines skipped)."""
        records = []
        for path in sorted(self.folder.glob(f"{kind}.rank*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and "fingerprint" in record:
                    records.append(record)
        return records

    def figure(self, fingerprint: str) -> Path:
        """Where the slice figure of the cell ``fingerprint`` is kept until the report embeds it."""
        return self.folder / f"cellfig-{fingerprint}.png"

    def clear(self) -> None:
        """Remove every record file and cell figure (before the results are moved into place, or to start
        afresh)."""
        for kind in self.KINDS:
            for path in self.folder.glob(f"{kind}.rank*.jsonl"):
                path.unlink()
        for path in self.folder.glob("cellfig-*.png"):
            path.unlink()

    @staticmethod
    def latest(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Records by fingerprint; a fingerprint written twice keeps its last record."""
        return {r["fingerprint"]: r for r in records}
