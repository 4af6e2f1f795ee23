"""The per-epoch training log, ``<save_model_dir>/train_log.csv``."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["LOG_COLUMNS", "TrainLog"]

#: one row per epoch; empty cells where a value does not apply (no validation, no adversarial term).
LOG_COLUMNS = ("epoch", "loss", "loss_clean", "loss_adversarial", "loss_freq", "lr", "val_dice", "seconds")


class TrainLog:
    """Append-only CSV of epoch records, rewritten on resume to keep only epochs up to the resumed one.

    Args:
        path: the CSV file.
        keep_up_to: on resume, the epoch the run continues from: rows of later epochs (from an interrupted or
            abandoned continuation) are dropped. ``None`` starts a new log.
    """

    def __init__(self, path: str | Path, keep_up_to: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows: list[dict[str, str]] = []
        if keep_up_to is not None and self.path.is_file():
            with self.path.open(newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["epoch"]) <= keep_up_to]
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
            writer.writeheader()
            writer.writerows({k: row.get(k, "") for k in LOG_COLUMNS} for row in rows)

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one epoch's record (keys of :data:`LOG_COLUMNS`; ``None`` or missing → empty cell)."""
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=LOG_COLUMNS).writerow(
                {k: "" if record.get(k) is None else _format(record[k]) for k in LOG_COLUMNS}
            )


def _format(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
