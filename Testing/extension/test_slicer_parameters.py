"""Every Slicer front end against the engine's one table of parameters (``attacks.parameters``).

The CLI-module XML, the CLI script's argparse, the ``.ui`` file and the parameter node (built with Slicer's own
``parameterNodeWrapper`` on a real slicer-core node) must name, type, bound and default each row as the table
does; the tests fail naming the row that disagrees.
"""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from slicer_application import application_module, placeholders_present
from slicer_helpers import CLI_DIR, MODULE_DIR

from SpectrumAttackLib.attacks.parameters import SLICER_PARAMETERS, Parameter

XML_FILE = CLI_DIR / "SpectrumAttackCLI.xml"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "SpectrumAttack.ui"
#: Every section's .ui file (Attack, Audit, Harden), each bound to the one parameter node.
MODULE_FILE = MODULE_DIR / "SpectrumAttack.py"
SECTION_FILES = sorted((MODULE_DIR / "SpectrumAttackSections").glob("*.py"))
#: the .ui files of the sections built on the shared base ``section.py`` (the Compute section has a layout of its own).
SECTION_UI_FILES = sorted(MODULE_DIR / "Resources" / "UI" / m.group(1) for p in SECTION_FILES
                          if re.search(r"class \w+\(Section\)", p.read_text())
                          and (m := re.search(r'UI_FILE = "([^"]+)"', p.read_text())))
#: Fields the sections fill themselves (model lists, the harden pairs), bound to no widget.
UNBOUND_FIELDS = {"model", "auditModels", "hardenModel", "hardenVolumes", "hardenSegmentations", "hardenValidation"}
XML_TAGS = {"int": "integer", "float": "float", "bool": "boolean", "choice": "string-enumeration",
            "block": "integer-vector"}
#: XML parameters that are not table rows: images, files and model choice (read by the script, not the engine).
NON_TABLE_XML = {"inputVolume", "outputVolume", "referenceLabel", "cleanLabel", "adversarialLabel", "perturbation",
                 "metricsFile", "model", "architecture", "numClasses", "attack", "inputDirectory", "outputDirectory"}
OUTPUT_SCALARS = {"cleanDice", "adversarialDice", "ssim", "psnr", "foolingRate", "seconds"}


def _xml_parameters() -> dict[str, ET.Element]:
    root = ET.parse(XML_FILE).getroot()
    return {p.findtext("name"): p for group in root.iter("parameters") for p in group if p.findtext("name")}


def _ui_widgets(path: Path = UI_FILE) -> dict[str, ET.Element]:
    return {w.get("name"): w for w in ET.parse(path).getroot().iter("widget")}


def _ui_property(widget: ET.Element, name: str) -> str | None:
    for prop in widget.findall("property"):
        if prop.get("name") == name:
            return next(iter(prop)).text
    return None


def _ui_bound(path: Path = UI_FILE) -> dict[str, ET.Element]:
    return {_ui_property(w, "SlicerParameterName"): w for w in _ui_widgets(path).values()
            if _ui_property(w, "SlicerParameterName")}


@pytest.mark.parametrize("row", SLICER_PARAMETERS, ids=lambda p: p.slicer)
def test_xml_parameter_is_the_table_row(row: Parameter) -> None:
    element = _xml_parameters()[row.slicer]
    assert element.tag == XML_TAGS[row.kind]
    assert element.findtext("longflag") == row.slicer
    assert element.findtext("label") == row.label
    assert element.findtext("description") == row.help
    assert row.parse(element.findtext("default")) == row.parse(row.default)
    assert tuple(e.text for e in element.findall("element")) == row.choices
    if row.kind in ("int", "float"):
        bounds = [float(element.findtext(f"constraints/{k}")) for k in ("minimum", "maximum", "step")]
        assert bounds == [row.minimum, row.maximum, row.step]
    if row.kind == "bool":
        assert row.default is False  # Slicer passes a boolean flag only when true: a True default could not be unset


def test_every_xml_parameter_is_read_by_the_script_and_in_the_table(cli_script: Any) -> None:
    dests = {action.dest for action in cli_script.build_parser()._actions}
    xml = _xml_parameters()
    inputs = set(xml) - OUTPUT_SCALARS
    assert inputs <= dests, f"XML parameters the CLI script does not read: {sorted(inputs - dests)}"
    assert set(xml) - NON_TABLE_XML - OUTPUT_SCALARS == {p.slicer for p in SLICER_PARAMETERS}
    assert set(xml) >= OUTPUT_SCALARS


@pytest.mark.parametrize("row", SLICER_PARAMETERS, ids=lambda p: p.slicer)
def test_cli_script_defaults_are_the_table_defaults(cli_script: Any, row: Parameter) -> None:
    args = cli_script.build_parser().parse_args([])
    assert row.parse(getattr(args, row.slicer)) == row.parse(row.default)


@pytest.mark.parametrize("row", SLICER_PARAMETERS, ids=lambda p: p.slicer)
def test_ui_widget_and_label_are_the_table_row(row: Parameter) -> None:
    widget = _ui_bound()[row.slicer]
    label = _ui_widgets()[f"{row.slicer}Label"]
    assert _ui_property(label, "text") == f"{row.label}:"
    assert _ui_property(widget, "toolTip") == row.help
    expected_class = {"bool": "QCheckBox", "choice": "QComboBox", "int": "QSpinBox", "block": "QSpinBox",
                      "float": "QDoubleSpinBox"}[row.kind]
    assert widget.get("class") == expected_class
    if row.kind in ("int", "float", "block"):
        shown = [float(_ui_property(widget, k)) for k in ("minimum", "maximum", "singleStep")]
        assert shown == [row.minimum, row.maximum, row.step]
    if row.kind == "float":
        assert int(_ui_property(widget, "decimals")) == row.decimals


@pytest.mark.parametrize("section", SECTION_FILES, ids=lambda p: p.name)
def test_every_widget_a_section_uses_is_in_its_ui_file(section: Path) -> None:
    source = section.read_text()
    used = set(re.findall(r"self\.ui\.(\w+)", source))
    ui_file = re.search(r'UI_FILE = "([^"]+)"', source)
    if ui_file is None:  # the shared base: its widgets must be in every section's .ui
        files = SECTION_UI_FILES
    else:
        files = [MODULE_DIR / "Resources" / "UI" / ui_file.group(1)]
        used |= {f"{row.slicer}Label" for row in SLICER_PARAMETERS} if ui_file.group(1) == UI_FILE.name else set()
    for path in files:
        missing = used - set(_ui_widgets(path))
        assert not missing, f"widgets used by {section.name} but absent from {path.name}: {sorted(missing)}"


def test_module_file_is_a_thin_facade() -> None:
    """Four sections (Attack, Audit, Harden, Compute) and the template's shape in one file of at most 630 lines:
    the sections' Qt code is in ``SpectrumAttackSections``, their work in ``SpectrumAttackAdapter``."""
    assert len(MODULE_FILE.read_text().splitlines()) <= 630


def _static_fields() -> list[str]:
    tree = ast.parse(MODULE_FILE.read_text())
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "SpectrumAttackParameterNode")
    return [n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)]


def test_parameter_node_of_slicer_wrapper_round_trips_every_field(scene: Any, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    import slicer

    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "ct")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "organs")
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "organ ids")
    with application_module() as module:
        node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "SpectrumAttack")
        node.SetAttribute("ModuleName", "SpectrumAttack")
        parameters = module.SpectrumAttackParameterNode(node)
        assert "Unused annotations" not in caplog.text  # Slicer's wrapper used every annotation of the class
        fields = set(parameters.allParameters)
        assert fields == {*_static_fields(), *(row.slicer for row in SLICER_PARAMETERS)}
        # every .ui binding is a field, and every field but the lists the sections fill is bound
        bound = set().union(*(_ui_bound(path) for path in SECTION_UI_FILES))
        assert bound == fields - UNBOUND_FIELDS
        # defaults: the table's, written into the MRML node on first read
        for row in SLICER_PARAMETERS:
            assert getattr(parameters, row.slicer) == row.default
        assert parameters.referenceSegmentation is None and parameters.inputVolume is None
        # the optional reference: segmentation, labelmap and back to None
        parameters.inputVolume = volume
        for reference in (segmentation, labelmap, None):
            parameters.referenceSegmentation = reference
            assert parameters.referenceSegmentation is reference
        parameters.referenceSegmentation = segmentation
        # every table field written with a non-default value and read back through a new wrapper on the node
        changed = {}
        for row in SLICER_PARAMETERS:
            value = (True if row.kind == "bool" else row.choices[-1] if row.kind == "choice"
                     else row.maximum if row.kind == "float" else int(row.maximum))
            setattr(parameters, row.slicer, value)
            changed[row.slicer] = value
        parameters.model = "a model that left the catalogue"
        parameters.modelPath = Path("/models/net.pt")
        again = module.SpectrumAttackParameterNode(node)
        for name, value in changed.items():
            assert getattr(again, name) == value
        assert again.model == "a model that left the catalogue" and again.modelPath == Path("/models/net.pt")
        assert again.referenceSegmentation is segmentation and again.inputVolume is volume
        # values outside the table's range are refused by the wrapper's validators
        with pytest.raises(ValueError):
            parameters.steps = 0
        with pytest.raises(ValueError):
            parameters.freqBand = "mid"
        # the Logic's CLI parameters are the node's values, as they are
        logic = module.SpectrumAttackLogic()
        cli = logic.cliParameters(again)
        assert cli == {"model": "a model that left the catalogue", "attack": "saa", **changed}
        # the Audit and Harden sections' lists, nodes included, round-trip through the wrapper too
        parameters.auditModels = ["unet-btcv-3mm", "unet-btcv-3mm hardened (vaft)"]
        parameters.hardenVolumes = [volume, volume]
        parameters.hardenSegmentations = [segmentation, labelmap]
        parameters.hardenValidation = [False, True]
        again = module.SpectrumAttackParameterNode(node)
        assert again.auditModels == ["unet-btcv-3mm", "unet-btcv-3mm hardened (vaft)"]
        assert list(again.hardenVolumes) == [volume, volume]
        assert list(again.hardenSegmentations) == [segmentation, labelmap]
        assert list(again.hardenValidation) == [False, True]
        # a scene saved and read again keeps every value and the node references
        path = tmp_path / "scene.mrml"
        scene.SetURL(str(path))
        assert scene.Commit()
        reread = slicer.vtkMRMLScene()
        reread.SetURL(str(path))
        assert reread.Connect()
        node2 = reread.GetFirstNodeByName("SpectrumAttack")
        restored = module.SpectrumAttackParameterNode(node2)
        for name, value in changed.items():
            assert getattr(restored, name) == value
        assert restored.referenceSegmentation.GetName() == "organs"
        assert restored.inputVolume.GetName() == "ct"
        reread.Clear(1)
    assert placeholders_present() == []
