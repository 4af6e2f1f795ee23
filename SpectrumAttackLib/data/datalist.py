"""Split files ("datalists"): the seed's ``--data_dir`` + ``--json_list`` pair, MSD and nnU-Net v1 alike.

Format (the seed's ``dataset_synapse_18_12.json``, MSD ``dataset.json``)::

    {"training":   [{"image": "imagesTr/img0001.nii.gz", "label": "labelsTr/label0001.nii.gz"}, ...],
     "validation": [{"image": "imagesTr/img0002.nii.gz", "label": "labelsTr/label0002.nii.gz"}, ...],
     "test":       ["imagesTs/img0061.nii.gz", ...]}

Paths are relative to ``data_dir`` (or absolute); bare strings (MSD ``test``) become ``{"image": path}``.
Torch-free.

Example:
    >>> from SpectrumAttackLib.data.sample_data import SAMPLE_SPLIT, ensure_sample_data
    >>> cases = load_datalist(ensure_sample_data(), SAMPLE_SPLIT, "validation")
    >>> sorted(cases[0])
    ['image', 'label']
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["PATH_KEYS", "load_datalist"]

#: Entry fields that hold file paths (a path or a list of paths, e.g. several MRI sequences).
PATH_KEYS = ("image", "label")
_UNSET = (None, "", "None")


def _resolve(value: Any, root: Path, where: str) -> str | list[str]:
    if isinstance(value, list):
        return [str(_resolve(v, root, where)) for v in value]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a file path or a list of paths, got {value!r}.")
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (root / path).resolve())


def _paths(case: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for field in PATH_KEYS:
        value = case.get(field)
        out += [value] if isinstance(value, str) else list(value or [])
    return out


def load_datalist(
    data_dir: str | os.PathLike | None,
    json_list: str | os.PathLike | None,
    key: str = "training",
    *,
    check_files: bool = True,
) -> list[dict[str, Any]]:
    """Read one list (``"training"``, ``"validation"``, ``"test"``, ...) of a split file, with absolute paths.

    Args:
        data_dir: dataset root holding the images (``--data_dir``).
        json_list: split file: a name inside ``data_dir`` or a path (``--json_list``).
        key: which list to read. Default ``"training"``.
        check_files: verify that every image and label file exists. Default True.

    Returns:
        One dict per case: ``image`` (and ``label`` when given) as absolute path strings; other fields kept.

    Raises:
        ValueError: ``data_dir`` or ``json_list`` not given; the file is not a JSON object; ``key`` is absent (the
            message lists the lists present) or empty; an entry has no ``image``.
        FileNotFoundError: ``data_dir``, the split file, or listed image/label files do not exist.
    """
    if data_dir in _UNSET:
        raise ValueError(f"--data_dir must be the dataset folder (imagesTr/, labelsTr/, split json), got {data_dir!r}.")
    if json_list in _UNSET:
        raise ValueError(f"--json_list must name the split file inside --data_dir, got {json_list!r}.")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--data_dir must be an existing folder, got {str(root)!r} (not found).")
    split = Path(json_list).expanduser()
    split = split if split.is_absolute() or split.is_file() else root / split
    if not split.is_file():
        raise FileNotFoundError(f"--json_list must be a split file in --data_dir or a path, got {str(json_list)!r} "
                                f"(looked for {str(split)!r}).")  # fmt: skip
    try:
        content = json.loads(split.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--json_list must be a JSON file, got {str(split)!r} ({exc}).") from None
    if not isinstance(content, dict):
        raise ValueError(f"--json_list must hold a JSON object with case lists, got {type(content).__name__}.")
    lists = [k for k, v in content.items() if isinstance(v, list)]
    if key not in lists:
        raise ValueError(f"key must be one of the lists in {split.name} ({', '.join(map(repr, lists))}), got {key!r}.")
    cases = []
    for index, raw in enumerate(content[key]):
        where = f"entry {index} of {key!r} in {split.name}"
        entry = {"image": raw} if isinstance(raw, (str, list)) else dict(raw) if isinstance(raw, dict) else None
        if entry is None or "image" not in entry:
            raise ValueError(f"{where} must be a path or a dict with an 'image' path, got {raw!r}.")
        for field in PATH_KEYS:
            if field in entry:
                entry[field] = _resolve(entry[field], root, f"{where} field {field!r}")
        cases.append(entry)
    if not cases:
        raise ValueError(f"key must name a non-empty list in {split.name}, got {key!r} (empty).")
    if check_files:
        paths = [path for case in cases for path in _paths(case)]
        missing = [p for p in paths if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(
                f"--data_dir must contain the files listed in {split.name} under {key!r}: {len(missing)} of "
                f"{len(paths)} are missing (no such file), e.g. {missing[0]!r}."
            )
    return cases
