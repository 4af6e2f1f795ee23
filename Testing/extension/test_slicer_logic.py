"""SpectrumAttackLogic on a real slicer-core scene: the sample CT read by Slicer's storage node, tiny models."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.ndimage as ndi
import slicer
from slicer_helpers import TINY_UNET, ijk_array, ijk_to_ras, load_volume, segmentation_labels, volume_from_ijk

SAA = {"steps": 2, "rho": 0.2, "block_size": 8, "lambda_dice": 0.01}


def _new_nodes(scene: Any, before: set[str]) -> list[Any]:
    """Nodes added since ``before`` (IDs); the scene's subject hierarchy (made on first use) and singletons left
    out."""
    nodes = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
    return [n for n in nodes if n.GetID() not in before and not n.IsSingleton()
            and not n.IsA("vtkMRMLSubjectHierarchyNode")]


def _ids(scene: Any) -> set[str]:
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


def test_saa_run_adds_results_and_leaves_the_input_alone(module: Any, scene: Any, ct_node: Any,
                                                         tiny_loaded: Any) -> None:
    before_voxels, before_matrix = ijk_array(ct_node), ijk_to_ras(ct_node)
    before_ids = _ids(scene)
    result = module.SpectrumAttackLogic().run(ct_node, model=tiny_loaded, attack="saa", params=SAA)

    np.testing.assert_array_equal(ijk_array(ct_node), before_voxels)
    np.testing.assert_array_equal(ijk_to_ras(ct_node), before_matrix)
    data_nodes = {n.GetID() for n in _new_nodes(scene, before_ids) if not n.IsA("vtkMRMLDisplayNode")}
    assert data_nodes == {n.GetID() for n in result.nodes()}

    adversarial, perturbation = ijk_array(result.adversarialVolume), ijk_array(result.perturbationVolume)
    for node in (result.adversarialVolume, result.perturbationVolume):
        assert node.GetImageData().GetDimensions() == ct_node.GetImageData().GetDimensions()
        np.testing.assert_allclose(ijk_to_ras(node), before_matrix, atol=1e-6)
    np.testing.assert_allclose(adversarial, before_voxels + perturbation, atol=1e-3)
    assert np.abs(perturbation).max() > 1.0  # HU

    classes = tiny_loaded.entry.classes
    for segmentation_node in (result.cleanSegmentation, result.adversarialSegmentation):
        segmentation = segmentation_node.GetSegmentation()
        assert segmentation.GetNumberOfSegments() == len(classes) - 1
        for index, info in enumerate(classes[1:]):
            segment = segmentation.GetNthSegment(index)
            assert segment.GetName() == info.name
            np.testing.assert_allclose(segment.GetColor(), np.array(info.rgb) / 255, atol=1e-6)
    names = [c.name for c in classes]
    clean = segmentation_labels(scene, result.cleanSegmentation, ct_node, names)
    attacked = segmentation_labels(scene, result.adversarialSegmentation, ct_node, names)
    assert clean.shape == before_voxels.shape and (clean != attacked).any()

    table = result.metricsTable
    columns = [table.GetTable().GetColumn(c).GetName() for c in range(table.GetNumberOfColumns())]
    assert columns == ["Metric", "Structure", "Clean", "Adversarial", "Unit"]
    rows = [[table.GetCellText(r, c) for c in range(5)] for r in range(table.GetNumberOfRows())]
    assert [r[1] for r in rows if r[0] == "Dice"] == [*names[1:], "mean"]
    mean_dice = next(r for r in rows if r[:2] == ["Dice", "mean"])
    assert float(mean_dice[3]) == pytest.approx(result.metrics["adversarial"]["dice"], abs=1e-5)
    assert {r[0] for r in rows} >= {"Dice", "HD95", "SSIM", "PSNR", "Fooling rate", "Time"}
    assert result.metrics["reference"] == "clean prediction"
    assert 0.0 < result.metrics["adversarial"]["fooling_rate"] <= 1.0


def test_pgd_perturbation_stays_within_epsilon(module: Any, scene: Any, ct_node: Any, tiny_loaded: Any) -> None:
    result = module.SpectrumAttackLogic().run(ct_node, model=tiny_loaded, attack="pgd",
                                              params={"steps": 2, "eps": 8, "alpha": 0.02}, showResult=False)
    pre = tiny_loaded.entry.preprocessing
    bound_hu = 8 / 255 * (pre.a_max - pre.a_min) / (pre.b_max - pre.b_min)
    perturbation = ijk_array(result.perturbationVolume)
    assert np.abs(perturbation).max() <= bound_hu * (1 + 1e-4)
    assert np.abs(perturbation).max() > 0.5 * bound_hu


def test_reference_labelmap_and_named_segmentation_agree(module: Any, scene: Any, ct_node: Any,
                                                         sample_ct: dict, tiny_loaded: Any) -> None:
    logic = module.SpectrumAttackLogic()
    labelmap = load_volume(scene, sample_ct["labels"], "labels", "vtkMRMLLabelMapVolumeNode")
    by_labelmap = logic.run(ct_node, model=tiny_loaded, attack="pgd", params={"steps": 1},
                            referenceSegmentation=labelmap)
    assert by_labelmap.metrics["reference"] == "labels"
    assert by_labelmap.metrics["clean"]["dice"] < 1.0  # a random model against the (silver) ground truth

    # The same labels as a segmentation node whose segments carry organ names (a colour table names them).
    colours = scene.AddNewNodeByClass("vtkMRMLColorTableNode", "organs")
    colours.SetTypeToUser()
    colours.SetNumberOfColors(len(tiny_loaded.entry.classes))
    for info in tiny_loaded.entry.classes:
        colours.SetColor(info.id, info.name.upper(), *(np.array(info.rgb) / 255), 1.0)
    labelmap.CreateDefaultDisplayNodes()
    labelmap.GetDisplayNode().SetAndObserveColorNodeID(colours.GetID())
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "ground truth")
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    by_segments = logic.run(ct_node, model=tiny_loaded, attack="pgd", params={"steps": 1},
                            referenceSegmentation=segmentation)
    for section in ("clean", "adversarial"):
        assert by_segments.metrics[section]["dice_per_class"] == pytest.approx(
            by_labelmap.metrics[section]["dice_per_class"], nan_ok=True)


def test_flipped_copy_gives_the_same_result(module: Any, scene: Any, ct_node: Any, band_model: Any) -> None:
    voxels, matrix = ijk_array(ct_node).astype(np.float32), ijk_to_ras(ct_node)
    flipped_matrix = matrix.copy()
    flipped_matrix[:3, 0] = -matrix[:3, 0]
    flipped_matrix[:3, 3] = matrix[:3, 3] + matrix[:3, 0] * (voxels.shape[0] - 1)
    flipped = volume_from_ijk(scene, voxels[::-1], flipped_matrix, "flipped")
    logic = module.SpectrumAttackLogic()
    params = {"steps": 2, "eps": 8}
    original = logic.run(ct_node, model=band_model, attack="pgd", params=params, showResult=False)
    mirrored = logic.run(flipped, model=band_model, attack="pgd", params=params, showResult=False)
    np.testing.assert_allclose(ijk_array(mirrored.adversarialVolume)[::-1], ijk_array(original.adversarialVolume),
                               atol=1e-3)
    names = [c.name for c in band_model.entry.classes]
    np.testing.assert_array_equal(segmentation_labels(scene, mirrored.adversarialSegmentation, flipped, names)[::-1],
                                  segmentation_labels(scene, original.adversarialSegmentation, ct_node, names))


def _dice(a: np.ndarray, b: np.ndarray, label: int) -> float:
    return 2 * np.sum((a == label) & (b == label)) / max(1, np.sum(a == label) + np.sum(b == label))


def test_oblique_copy_agrees_once_mapped_back(module: Any, scene: Any, ct_node: Any, band_model: Any) -> None:
    """The CT resampled onto a grid rotated by 20° about S: its clean segmentation, sampled back at the original
    voxels through the two IJK→RAS matrices, matches the original's (up to two interpolations); read without the
    rotation it does not."""
    voxels, matrix = ijk_array(ct_node).astype(np.float32), ijk_to_ras(ct_node)
    angle = np.deg2rad(20)
    rotation = np.eye(4)
    rotation[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    centre = matrix @ np.r_[(np.array(voxels.shape) - 1) / 2, 1]
    to_centre, back_from_centre = np.eye(4), np.eye(4)
    to_centre[:3, 3], back_from_centre[:3, 3] = -centre[:3], centre[:3]
    oblique_matrix = back_from_centre @ rotation @ to_centre @ matrix
    grid = np.vstack([np.indices(voxels.shape).reshape(3, -1), np.ones(voxels.size)])
    source = (np.linalg.inv(matrix) @ oblique_matrix @ grid)[:3]
    oblique = volume_from_ijk(scene, ndi.map_coordinates(voxels, source, order=1, cval=-1024.0).reshape(
        voxels.shape), oblique_matrix, "oblique")

    logic = module.SpectrumAttackLogic()
    params = {"steps": 1, "eps": 4}
    original = logic.run(ct_node, model=band_model, attack="pgd", params=params, showResult=False)
    rotated = logic.run(oblique, model=band_model, attack="pgd", params=params, showResult=False)
    np.testing.assert_allclose(ijk_to_ras(rotated.adversarialVolume), oblique_matrix, atol=1e-6)
    names = [c.name for c in band_model.entry.classes]
    reference = segmentation_labels(scene, original.cleanSegmentation, ct_node, names)
    seen = segmentation_labels(scene, rotated.cleanSegmentation, oblique, names)
    back = (np.linalg.inv(oblique_matrix) @ matrix @ grid)[:3]
    inside = np.all((back > -0.5) & (back < np.array(voxels.shape)[:, None] - 0.5), axis=0).reshape(voxels.shape)
    mapped = ndi.map_coordinates(seen, back, order=0).reshape(voxels.shape)
    mapped_dice = np.mean([_dice(mapped[inside], reference[inside], c) for c in range(3)])
    unmapped_dice = np.mean([_dice(seen[inside], reference[inside], c) for c in range(3)])
    assert mapped_dice >= 0.7
    assert mapped_dice >= unmapped_dice + 0.2


def test_cancelled_run_leaves_no_new_nodes(module: Any, scene: Any, ct_node: Any, tiny_loaded: Any) -> None:
    from SpectrumAttackAdapter.segmentations import segmentations_logic

    from SpectrumAttackLib.inference.tiles import Cancelled

    logic = module.SpectrumAttackLogic()
    segmentations_logic(scene)  # the Segmentations logic may add its singletons once; they are not results
    before = _ids(scene)
    seen: list[str] = []

    def on_progress(report: Any) -> None:
        seen.append(report.stage)
        if report.stage == "attack":
            logic.cancel()

    with pytest.raises(Cancelled):
        logic.run(ct_node, model=tiny_loaded, attack="saa", params=SAA, onProgress=on_progress)
    assert "attack" in seen
    assert _new_nodes(scene, before) == []
    # The Logic can run again after a cancel.
    assert logic.run(ct_node, model=tiny_loaded, attack="pgd", params={"steps": 1}).metricsTable is not None


def test_checkpoint_path_with_architecture_and_class_count(module: Any, scene: Any, ct_node: Any,
                                                          tiny_checkpoint: Any) -> None:
    # A checkpoint's preprocessing is the seed's default (1.5 × 1.5 × 2 mm): a quarter of the crop keeps it fast.
    matrix = ijk_to_ras(ct_node)
    small = volume_from_ijk(scene, ijk_array(ct_node)[16:48, 8:40, 4:20], matrix @ np.array(
        [[1, 0, 0, 16], [0, 1, 0, 8], [0, 0, 1, 4], [0, 0, 0, 1]], dtype=float), "small")
    result = module.SpectrumAttackLogic().run(
        small, model=str(tiny_checkpoint), attack="fgsm", params={"eps": 4}, architecture="unet", numClasses=14,
        modelArguments={**TINY_UNET, "roi": (64, 64, 64)}, showResult=False)
    segmentation = result.cleanSegmentation.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 13
    assert segmentation.GetNthSegment(0).GetName() == "class_1"
    np.testing.assert_allclose(ijk_to_ras(result.adversarialVolume), ijk_to_ras(small), atol=1e-6)


# ----------------------------------------------------------------------------------------------- bad inputs


def test_no_volume_is_refused(module: Any, scene: Any, tiny_loaded: Any) -> None:
    with pytest.raises(ValueError, match="inputVolume"):
        module.SpectrumAttackLogic().run(None, model=tiny_loaded)


def test_two_dimensional_volume_is_refused(module: Any, scene: Any, tiny_loaded: Any) -> None:
    flat = volume_from_ijk(scene, np.zeros((32, 32, 1), np.float32), np.diag([3.0, 3.0, 3.0, 1.0]), "slice")
    with pytest.raises(ValueError, match=r"inputVolume must be a 3-D volume.*\(32, 32, 1\)"):
        module.SpectrumAttackLogic().run(flat, model=tiny_loaded)


def test_rgb_volume_is_refused(module: Any, scene: Any, tiny_loaded: Any) -> None:
    rgb = scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", "photo")
    slicer.util.updateVolumeFromArray(rgb, np.zeros((8, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="inputVolume must be a 3-D scalar volume"):
        module.SpectrumAttackLogic().run(rgb, model=tiny_loaded)


def test_labelmap_as_input_is_refused(module: Any, scene: Any, sample_ct: dict, tiny_loaded: Any) -> None:
    labels = load_volume(scene, sample_ct["labels"], "labels", "vtkMRMLLabelMapVolumeNode")
    with pytest.raises(ValueError, match="inputVolume must be a scalar"):
        module.SpectrumAttackLogic().run(labels, model=tiny_loaded)


def test_reference_with_more_classes_than_the_model_is_refused(module: Any, scene: Any, ct_node: Any,
                                                                band_model: Any, sample_ct: dict) -> None:
    labels = load_volume(scene, sample_ct["labels"], "labels", "vtkMRMLLabelMapVolumeNode")  # ids up to 13
    before = _ids(scene)
    with pytest.raises(ValueError, match=r"referenceSegmentation must hold class ids in \[0, 2\]"):
        module.SpectrumAttackLogic().run(ct_node, model=band_model, attack="pgd", referenceSegmentation=labels)
    assert _new_nodes(scene, before) == []


def test_segment_without_a_class_is_refused(module: Any, scene: Any, ct_node: Any, band_model: Any) -> None:
    from SpectrumAttackAdapter.segmentations import segmentations_logic

    segmentations_logic(scene)  # registers the converters AddEmptySegment needs
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "notes")
    segmentation.GetSegmentation().AddEmptySegment("tumour", "tumour", (1, 0, 0))
    segmentation.GetSegmentation().GetSegment("tumour").SetLabelValue(7)
    with pytest.raises(ValueError, match="referenceSegmentation segments must be named after"):
        module.SpectrumAttackLogic().run(ct_node, model=band_model, referenceSegmentation=segmentation)


def test_checkpoint_with_another_class_count_is_refused(module: Any, scene: Any, ct_node: Any,
                                                        tiny_checkpoint: Any) -> None:
    with pytest.raises(ValueError, match="num_classes must match the checkpoint"):
        module.SpectrumAttackLogic().run(ct_node, model=str(tiny_checkpoint), architecture="unet", numClasses=5,
                                         modelArguments=TINY_UNET)


@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"attack": "saa", "params": {"eps": 4}}, "eps"),
    ({"attack": "nope"}, "attack"),
    ({"params": {"seed": 3}}, "seed"),
    ({"params": {"steps": "many"}}, "steps"),
    ({"device": "tpu"}, "device"),
    ({"wait": False}, "wait"),
])
def test_bad_settings_name_the_parameter(module: Any, scene: Any, ct_node: Any, tiny_loaded: Any,
                                         kwargs: dict, parameter: str) -> None:
    with pytest.raises(ValueError, match=parameter):
        module.SpectrumAttackLogic().run(ct_node, model=tiny_loaded, **kwargs)


def test_out_of_range_value_is_refused_by_the_attack(module: Any, scene: Any, ct_node: Any,
                                                     tiny_loaded: Any) -> None:
    before = _ids(scene)
    with pytest.raises(ValueError, match="rho"):
        module.SpectrumAttackLogic().run(ct_node, model=tiny_loaded, attack="saa", params={"rho": 1.5})
    assert _new_nodes(scene, before) == []


def test_anisotropic_copy_agrees_with_the_original_at_its_voxels(module: Any, scene: Any, ct_node: Any,
                                                                band_model: Any) -> None:
    """Every second axial slice (3 × 3 × 6 mm voxels): the model sees it resampled to 3 mm, and its clean
    segmentation brought back to its own grid matches the original's at the same places; read as if the slices
    were 3 mm apart it does not."""
    voxels, matrix = ijk_array(ct_node), ijk_to_ras(ct_node)
    coarse_matrix = matrix.copy()
    coarse_matrix[:3, 2] *= 2
    coarse = volume_from_ijk(scene, voxels[:, :, ::2], coarse_matrix, "every second slice")
    logic = module.SpectrumAttackLogic()
    original = logic.run(ct_node, model=band_model, attack="pgd", params={"steps": 1}, showResult=False)
    thinned = logic.run(coarse, model=band_model, attack="pgd", params={"steps": 1}, showResult=False)
    assert thinned.adversarialVolume.GetSpacing() == pytest.approx((3.0, 3.0, 6.0))
    np.testing.assert_allclose(ijk_to_ras(thinned.adversarialVolume), coarse_matrix, atol=1e-6)
    names = [c.name for c in band_model.entry.classes]
    seen = segmentation_labels(scene, thinned.cleanSegmentation, coarse, names)
    reference = segmentation_labels(scene, original.cleanSegmentation, ct_node, names)
    same_place = np.mean([_dice(seen, reference[:, :, ::2], c) for c in range(3)])
    ignoring_spacing = np.mean([_dice(seen, reference[:, :, : seen.shape[2]], c) for c in range(3)])
    assert same_place >= 0.8
    assert same_place >= ignoring_spacing + 0.1
