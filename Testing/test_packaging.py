"""Packaging of the Slicer extension: CMake lists match the files, the three descriptions agree, assets are valid.

Runs without CMake and without Slicer: it reads CMakeLists.txt, SpectrumAttack.s4ext and SpectrumAttack.json.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Properties allowed by slicer-extension-catalog-entry-schema v1.0.1 (additionalProperties: false).
CATALOGUE_PROPERTIES = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
                        "build_subdirectory", "enabled", "tier"}


def _cmake(path: Path) -> str:
    """CMake text without comments."""
    return "\n".join(line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())


def _call(text: str, command: str, first: str) -> list[str]:
    """Arguments of the ``command(<first> ...)`` call (whitespace-separated tokens)."""
    match = re.search(rf"{command}\(\s*{re.escape(first)}\b(.*?)\)", text, flags=re.S | re.I)
    assert match, f"{command}({first} ...) not found"
    return match.group(1).split()


def _set(text: str, variable: str) -> list[str]:
    return _call(text, "set", variable)


def _extension_variables() -> dict[str, str]:
    lines = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8").splitlines()
    found = {}
    for line in lines:
        match = re.fullmatch(r'set\((EXTENSION_[A-Z]+) "(.*)"\)', line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def _s4ext() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "SpectrumAttack.s4ext").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            entries[key] = value.strip()
    return entries


def _py_files(folder: Path, relative_to: Path) -> set[str]:
    return {p.relative_to(relative_to).as_posix() for p in folder.rglob("*.py") if "__pycache__" not in p.parts}


def test_top_level_cmake_declares_the_extension() -> None:
    text = _cmake(ROOT / "CMakeLists.txt")
    assert re.search(r"^project\(SpectrumAttack\)$", text, flags=re.M)
    assert "find_package(Slicer REQUIRED)" in text and "include(${Slicer_USE_FILE})" in text
    assert "add_subdirectory(SpectrumAttack)" in text and "add_subdirectory(SpectrumAttackCLI)" in text
    assert "include(${Slicer_EXTENSION_GENERATE_CONFIG})" in text and "include(${Slicer_EXTENSION_CPACK})" in text
    variables = _extension_variables()
    expected = {"EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS"}
    assert set(variables) == expected, "each EXTENSION_* variable must be one quoted literal on one line"
    assert variables["EXTENSION_DEPENDS"] == "PyTorch"


def test_engine_target_lists_every_python_file_of_the_package() -> None:
    scripts = _call(_cmake(ROOT / "CMakeLists.txt"), "slicerMacroBuildScriptedModule", "NAME SpectrumAttackLib")
    listed = {s for s in scripts if s.endswith(".py")}
    on_disk = _py_files(ROOT / "SpectrumAttackLib", ROOT)
    assert sorted(on_disk - listed) == [], "add these to SCRIPTS in CMakeLists.txt"
    assert sorted(listed - on_disk) == [], "CMakeLists.txt lists files that do not exist"


def test_resources_are_installed_next_to_the_engine() -> None:
    text = _cmake(ROOT / "CMakeLists.txt")
    assert (ROOT / "Resources" / "models.json").is_file()
    assert re.search(r"install\(FILES Resources/models\.json\s+DESTINATION \$\{Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR"
                     r"\}/SpectrumAttackLib/Resources", text)
    assert "Resources/weights/*" in text and "SpectrumAttackLib/Resources/weights" in text


def test_module_cmake_lists_every_script_and_resource() -> None:
    folder = ROOT / "SpectrumAttack"
    text = _cmake(folder / "CMakeLists.txt").replace("${MODULE_NAME}", "SpectrumAttack")
    scripts = set(_set(text, "MODULE_PYTHON_SCRIPTS"))
    resources = set(_set(text, "MODULE_PYTHON_RESOURCES"))
    assert scripts == _py_files(folder, folder)
    on_disk = {p.relative_to(folder).as_posix() for p in (folder / "Resources").rglob("*") if p.is_file()}
    assert resources == on_disk
    build = _call(text, "slicerMacroBuildScriptedModule", "NAME SpectrumAttack")
    assert "WITH_GENERIC_TESTS" in build
    assert "slicer_add_python_unittest(SCRIPT SpectrumAttack.py)" in text


def test_cli_cmake_builds_the_scripted_cli() -> None:
    folder = ROOT / "SpectrumAttackCLI"
    assert _call(_cmake(folder / "CMakeLists.txt"), "SlicerMacroBuildScriptedCLI", "NAME") == ["SpectrumAttackCLI"]
    assert (folder / "SpectrumAttackCLI.xml").is_file()
    assert (folder / "SpectrumAttackCLI.py").read_text().startswith("#!/usr/bin/env python-real\n")


def test_catalogue_entry_follows_the_index_schema() -> None:
    entry = json.loads((ROOT / "SpectrumAttack.json").read_text(encoding="utf-8"))
    assert set(entry) <= CATALOGUE_PROPERTIES
    assert {"$schema", "category", "scm_url"} <= set(entry)
    assert entry["$schema"].startswith("https://raw.githubusercontent.com/Slicer/Slicer/main/Schemas/"
                                       "slicer-extension-catalog-entry-schema-v1.0.")
    assert entry["build_dependencies"] == ["PyTorch"]
    assert entry.get("tier", 5) in (1, 3, 5)
    assert re.match(r"^(https|git)://", entry["scm_url"])
    repository = entry["scm_url"].removesuffix(".git").rsplit("/", 1)[-1]
    assert repository.startswith("Slicer") and not "SpectrumAttack".startswith("Slicer")
    assert "\r" not in (ROOT / "SpectrumAttack.json").read_text(encoding="utf-8")


def test_s4ext_json_and_cmake_agree() -> None:
    variables = _extension_variables()
    s4ext = _s4ext()
    entry = json.loads((ROOT / "SpectrumAttack.json").read_text(encoding="utf-8"))
    assert s4ext["category"] == variables["EXTENSION_CATEGORY"] == entry["category"]
    assert s4ext["depends"].split() == variables["EXTENSION_DEPENDS"].split() == entry["build_dependencies"]
    assert s4ext["homepage"] == variables["EXTENSION_HOMEPAGE"]
    assert s4ext["scmurl"].removesuffix(".git") == entry["scm_url"].removesuffix(".git") == s4ext["homepage"]
    assert s4ext["scmrevision"] == entry["scm_revision"]
    assert s4ext["iconurl"] == variables["EXTENSION_ICONURL"]
    assert s4ext["description"] == variables["EXTENSION_DESCRIPTION"]
    assert s4ext["contributors"] == variables["EXTENSION_CONTRIBUTORS"]
    assert s4ext.get("screenshoturls", "") == variables["EXTENSION_SCREENSHOTURLS"]
    # The icon URL points at the extension icon of this repository.
    assert variables["EXTENSION_ICONURL"].endswith("/main/Resources/SpectrumAttack.png")
    assert variables["EXTENSION_ICONURL"].startswith(variables["EXTENSION_HOMEPAGE"].replace(
        "https://github.com/", "https://raw.githubusercontent.com/"))


@pytest.mark.parametrize("icon", ["Resources/SpectrumAttack.png", "SpectrumAttack/Resources/Icons/SpectrumAttack.png"])
def test_icons_are_128_pixel_pngs(icon: str) -> None:
    data = (ROOT / icon).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (128, 128)


def test_licence_file_exists() -> None:
    assert (ROOT / "LICENSE").is_file() or (ROOT / "LICENSE.txt").is_file()


def _requirement_names(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        name, spec = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", line).groups()
        out[re.sub(r"[-_.]+", "-", name).lower()] = spec.replace(" ", "")
    return out


def test_slicer_requirements_are_the_engine_dependencies_without_torch_and_numpy() -> None:
    tomllib = pytest.importorskip("tomllib")
    from_pyproject = _requirement_names(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    lines = [line.split("#", 1)[0].strip() for line in
             (ROOT / "SpectrumAttack" / "Resources" / "requirements.txt").read_text().splitlines()]
    from_file = _requirement_names([line for line in lines if line])
    expected = {k: v for k, v in from_pyproject.items() if k not in ("torch", "numpy")}
    assert from_file == expected, "keep SpectrumAttack/Resources/requirements.txt in step with pyproject.toml"
