"""Lazy re-exports for package ``__init__`` files, so that importing a package does not import torch or MONAI."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving ``name`` from submodule ``where[name]`` of ``package`` on first use.

    Example (in a package's ``__init__.py``)::

        __getattr__ = lazy_getattr(__name__, {"load_model": "loading"})
    """

    def resolve(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return resolve
