"""Strict JSON for results and manifests: NaN and ±inf become ``null``, never the non-standard ``NaN`` token.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which strict parsers (JavaScript, ``jq``, many
JSON libraries) reject. Every JSON file SpectrumAttack writes goes through :func:`to_jsonable` and is dumped with
``allow_nan=False``, so a non-finite value can never slip through silently.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from enum import Enum
from pathlib import Path, PurePath
from typing import Any

__all__ = ["dump_json", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Convert ``value`` recursively into plain JSON types.

    Rules: ``float`` NaN/±inf → ``None``; numpy and 0-d torch scalars → Python numbers; 1-D or larger arrays and
    tensors → nested lists; ``Enum`` → its value; paths → ``str``; tuples and sets → lists (sets sorted by
    ``repr``); mapping keys → ``str``. Anything else is written as its ``repr`` so that a manifest never fails
    because of one exotic argument.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [to_jsonable(v) for v in sorted(value, key=repr)]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return to_jsonable(value.tolist())
    return repr(value)


def dump_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as strict, indented UTF-8 JSON (after :func:`to_jsonable`) and return the path.

    The parent folder is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_jsonable(data), indent=2, allow_nan=False, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path
