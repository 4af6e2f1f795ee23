"""The module file as the Slicer application imports it, on slicer-core, with Slicer's own parameterNodeWrapper.

``../shared/third_party/slicer-v5.12.3/parameterNodeWrapper`` is Slicer's wrapper package, unmodified (its README
says how to load it). It imports ``qt`` and ``ctk``, and the module file imports ``slicer.i18n`` and the
``slicer.ScriptedLoadableModule`` base classes; none of those is exercised by the parameter node, so they are
import-only placeholders here. :func:`application_module` installs them, imports ``SpectrumAttack.py`` under its
own name, and restores ``sys.modules`` and the ``slicer`` package afterwards, so nothing leaks into other tests.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import slicer
from slicer_helpers import MODULE_DIR, ROOT

#: Where CI keeps Slicer's own wrapper, beside the clone or above a worktree (absent in a user's clone: the tests
#: that need it skip).
WRAPPER_FOLDER = next((folder / "shared" / "third_party" / "slicer-v5.12.3" for folder in ROOT.parents
                       if (folder / "shared" / "third_party" / "slicer-v5.12.3").is_dir()),
                      ROOT.parent / "shared" / "third_party" / "slicer-v5.12.3")
#: Slicer's Qt widget classes the wrapper names in annotations (``slicer.qMRMLNodeComboBox``): placeholders too.
_SLICER_WIDGETS = tuple(sorted({name for path in (WRAPPER_FOLDER / "parameterNodeWrapper").glob("*.py")
                                for name in re.findall(r"slicer\.(q[A-Za-z]+)", path.read_text())}))
_SLICER_ATTRIBUTES = ("app", "parameterNodeWrapper", "i18n", "ScriptedLoadableModule", *_SLICER_WIDGETS)


def _placeholder(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__dict__.update(attributes)
    return module


class _Base:
    """Import-only stand-in for the ``ScriptedLoadableModule*`` base classes (never exercised here)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass


def _class_namespace(name: str) -> types.ModuleType:
    """A placeholder whose every attribute is an empty class (``qt.QPushButton`` in annotations, base classes)."""
    classes: dict[str, type] = {}
    return _placeholder(name, __getattr__=lambda attribute: classes.setdefault(attribute, type(attribute, (), {})))


def _install_placeholders() -> None:
    sys.modules["qt"] = _class_namespace("qt")
    sys.modules["ctk"] = _class_namespace("ctk")
    i18n = _placeholder("slicer.i18n", tr=lambda text: text, translate=lambda context, text: text)
    scripted = _placeholder("slicer.ScriptedLoadableModule", **{
        name: type(name, (_Base,), {}) for name in ("ScriptedLoadableModule", "ScriptedLoadableModuleLogic",
                                                    "ScriptedLoadableModuleTest", "ScriptedLoadableModuleWidget")})
    for name in _SLICER_WIDGETS:
        setattr(slicer, name, type(name, (), {}))
    slicer.app = object()  # only the application sets slicer.app (the module's APPLICATION test)
    for module in (i18n, scripted):
        sys.modules[module.__name__] = module
        setattr(slicer, module.__name__.split(".")[1], module)
    spec = importlib.util.spec_from_file_location(
        "slicer.parameterNodeWrapper", str(WRAPPER_FOLDER / "parameterNodeWrapper" / "__init__.py"),
        submodule_search_locations=[str(WRAPPER_FOLDER / "parameterNodeWrapper")])
    wrapper = importlib.util.module_from_spec(spec)
    sys.modules["slicer.parameterNodeWrapper"] = wrapper
    spec.loader.exec_module(wrapper)
    slicer.parameterNodeWrapper = wrapper


@contextmanager
def application_module() -> Iterator[types.ModuleType]:
    """``SpectrumAttack.py`` imported as in the application (``APPLICATION`` true), with Slicer's wrapper.

    Skips when the wrapper folder is absent. ``sys.modules`` and the ``slicer`` package are restored on exit.
    """
    if not (WRAPPER_FOLDER / "parameterNodeWrapper" / "__init__.py").is_file():
        pytest.skip(f"Slicer's parameterNodeWrapper is not at {WRAPPER_FOLDER} (CI has it; a user's clone not)")
    saved_modules = dict(sys.modules)
    saved_attributes = {name: getattr(slicer, name) for name in _SLICER_ATTRIBUTES if hasattr(slicer, name)}
    try:
        _install_placeholders()
        spec = importlib.util.spec_from_file_location("SpectrumAttackApplication", MODULE_DIR / "SpectrumAttack.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        assert module.APPLICATION, "the module did not take the application path"
        yield module
    finally:
        for name in set(sys.modules) - set(saved_modules):
            del sys.modules[name]
        sys.modules.update(saved_modules)
        for name in _SLICER_ATTRIBUTES:
            if name in saved_attributes:
                setattr(slicer, name, saved_attributes[name])
            elif hasattr(slicer, name):
                delattr(slicer, name)


def placeholders_present() -> list[str]:
    """Placeholder names still visible (for the no-leak check)."""
    return [n for n in ("qt", "ctk", "slicer.i18n", "slicer.ScriptedLoadableModule", "slicer.parameterNodeWrapper")
            if n in sys.modules] + [n for n in _SLICER_ATTRIBUTES if hasattr(slicer, n)]


__all__ = ["WRAPPER_FOLDER", "application_module", "placeholders_present"]
