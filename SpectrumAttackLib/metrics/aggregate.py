"""Collect per-case metrics and reduce them over cases (MONAI's Metric/Cumulative style: add, aggregate, reset).

A case is any nested dict of metrics, usually the output of :func:`compute_case_metrics`. Numeric leaves are
averaged over cases ignoring ``None``/NaN (an undefined HD95 or an unavailable LPIPS does not count as 0), per
field and per class. Other leaves (preset, units, status strings) are kept in the mean when every case agrees and
dropped otherwise. Tables merge (one per worker or per rank) and round-trip through their JSON file.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from SpectrumAttackLib.report.jsonable import dump_json, to_jsonable

__all__ = ["MetricsTable"]

_MISSING = object()
Leaves = dict[tuple[str, ...], Any]


def _flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Leaves:
    """``{"a": {"b": 1}}`` → ``{("a", "b"): 1}``; keys as tuples so names with dots survive."""
    leaves: Leaves = {}
    for key, value in tree.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and value:
            leaves.update(_flatten(value, path))
        else:
            leaves[path] = value
    return leaves


def _unflatten(leaves: Leaves) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in leaves.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


class MetricsTable:
    """Per-case metrics with nan-aware means over cases.

    Example:
        >>> table = MetricsTable()
        >>> table.add("case_0001", compute_case_metrics(...))
        >>> table.aggregate()["adversarial"]["dice"]
        >>> table.to_csv("metrics.csv"); table.to_json("metrics.json")
    """

    def __init__(self) -> None:
        self._cases: dict[str, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self._cases)

    @property
    def case_ids(self) -> list[str]:
        """Case ids in insertion order."""
        return list(self._cases)

    def case(self, case_id: str) -> dict[str, Any]:
        """A copy of the metrics stored for ``case_id`` (NaN/inf already turned into ``None``)."""
        return copy.deepcopy(self._cases[case_id])

    def add(self, case_id: str, metrics: Mapping[str, Any]) -> None:
        """Store the metrics of one case.

        Raises:
            ValueError: ``case_id`` is empty or already present, or ``metrics`` is not a mapping.
        """
        if not isinstance(case_id, str) or not case_id:
            raise ValueError(f"case_id must be a non-empty string, got {case_id!r}.")
        if case_id in self._cases:
            raise ValueError(f"case_id must be unique in the table, got {case_id!r} twice.")
        if not isinstance(metrics, Mapping):
            raise ValueError(f"metrics must be a dict of metric values, got {type(metrics).__name__}.")
        self._cases[case_id] = to_jsonable(metrics)

    def reset(self) -> None:
        """Forget every case."""
        self._cases.clear()

    def merge(self, other: MetricsTable) -> MetricsTable:
        """Add every case of ``other`` (e.g. another rank's table) and return ``self``.

        Raises:
            ValueError: a case id is in both tables (nothing is added then).
        """
        clash = sorted(set(self._cases) & set(other._cases))
        if clash:
            raise ValueError(f"case_id must be unique across merged tables, got {clash!r} in both.")
        for case_id, metrics in other._cases.items():
            self._cases[case_id] = copy.deepcopy(metrics)
        return self

    def _columns(self) -> list[tuple[str, ...]]:
        """Paths of the numeric leaves, in order of first appearance over the cases."""
        columns: dict[tuple[str, ...], None] = {}
        for metrics in self._cases.values():
            for path, value in _flatten(metrics).items():
                if _is_number(value):
                    columns.setdefault(path, None)
        return list(columns)

    def aggregate(self) -> dict[str, Any]:
        """Nested dict of means over cases, same layout as a case.

        A numeric field is the mean of its finite values over the cases that have one (``None`` if none do);
        a non-numeric field is kept if all cases that have it agree. Empty table → ``{}``.
        """
        flat = [_flatten(m) for m in self._cases.values()]
        numeric = set(self._columns())
        paths: dict[tuple[str, ...], None] = {}
        for leaves in flat:
            paths.update(dict.fromkeys(leaves))
        result: Leaves = {}
        for path in paths:
            values = [leaves.get(path, _MISSING) for leaves in flat]
            values = [v for v in values if v is not _MISSING]
            if path in numeric:
                finite = [float(v) for v in values if _finite(v)]
                result[path] = math.fsum(finite) / len(finite) if finite else None
            elif all(v == values[0] for v in values):
                result[path] = values[0]
        return _unflatten(result)

    def counts(self) -> dict[str, Any]:
        """Nested dict giving, for each numeric field, how many cases contributed a finite value to its mean."""
        flat = [_flatten(m) for m in self._cases.values()]
        return _unflatten({p: sum(_finite(leaves.get(p)) for leaves in flat) for p in self._columns()})

    def rows(self) -> list[dict[str, Any]]:
        """``[{"case_id": ..., "metrics": {...}}, ...]``: the cases as written by :meth:`to_json`."""
        return [{"case_id": k, "metrics": copy.deepcopy(v)} for k, v in self._cases.items()]

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> MetricsTable:
        """Rebuild a table from :meth:`rows` (or the ``"cases"`` list of a JSON file)."""
        table = cls()
        for row in rows:
            if not isinstance(row, Mapping) or "case_id" not in row or "metrics" not in row:
                raise ValueError(f"rows must be dicts with 'case_id' and 'metrics', got {row!r}.")
            table.add(row["case_id"], row["metrics"])
        return table

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> MetricsTable:
        """Read a file written by :meth:`to_json`."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, Mapping) or "cases" not in data:
            raise ValueError(f"path must be a metrics JSON file with a 'cases' list, got {str(path)!r}.")
        return cls.from_rows(data["cases"])

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write ``{"num_cases", "cases": rows, "mean": aggregate(), "count": counts()}`` as strict JSON."""
        payload = {"num_cases": len(self), "cases": self.rows(), "mean": self.aggregate(), "count": self.counts()}
        return dump_json(path, payload)

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write one row per case plus a final ``mean`` row; columns are the numeric fields joined by ``.``.

        Empty cells are undefined values (``None``/NaN). Non-numeric fields (units, statuses) are in the JSON only.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = self._columns()
        mean = _flatten(self.aggregate()) if self._cases else {}

        def cells(leaves: Leaves) -> list[str]:
            return [repr(float(leaves[c])) if _finite(leaves.get(c)) else "" for c in columns]

        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["case_id", *(".".join(c) for c in columns)])
            for case_id, metrics in self._cases.items():
                writer.writerow([case_id, *cells(_flatten(metrics))])
            writer.writerow(["mean", *cells(mean)])
        return path
