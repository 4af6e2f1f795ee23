"""The seed's MONAI pipelines on real NIfTI files: geometry, window, crop, ACDC resize, augmentation, loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_helpers import AFFINE, make_case
from torch.utils.data import SequentialSampler

from SpectrumAttackLib.data.datalist import load_datalist
from SpectrumAttackLib.data.loaders import make_loader
from SpectrumAttackLib.data.transforms import DataConfig, eval_transforms, train_transforms
from SpectrumAttackLib.io import read_volume, write_volume

CFG = DataConfig(spacing=(3.0, 3.0, 3.0), roi=(16, 16, 16))


def _centroid_mm(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    ijk = np.argwhere(mask).mean(axis=0)
    return (affine @ np.append(ijk, 1.0))[:3]


def test_eval_pipeline_geometry_window_and_labels(dataset):
    case = load_datalist(dataset, "split.json")[0]
    out = eval_transforms(CFG)(case)
    image, label = out["image"], out["label"]
    assert image.shape[0] == 1 and image.shape == label.shape and label.dtype == torch.int64
    affine = np.asarray(image.affine)
    np.testing.assert_allclose(np.diag(affine)[:3], [3.0, 3.0, 3.0])  # RAS, 3 mm
    # window -175..250 HU -> 0..1: organ 1 has 120 HU, air is clipped to 0
    organ = label[0].numpy() == 1
    assert image[0].numpy()[organ].mean() == pytest.approx((120 + 175) / 425, abs=0.05)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert set(torch.unique(label).tolist()) == {0, 1, 2}
    # the organ stays where it is in the patient: centroids agree in millimetres
    source = read_volume(case["label"])
    for cls in (1, 2):
        np.testing.assert_allclose(
            _centroid_mm(label[0].numpy() == cls, affine), _centroid_mm(source.array == cls, AFFINE), atol=3.0
        )
    # 7 × 6 × 6 voxels of 2 × 2.5 × 3 mm = 3780 mm³ = 140 voxels of 27 mm³
    assert organ.sum() == pytest.approx(140, rel=0.3)


def test_foreground_crop_removes_air(dataset):
    case = load_datalist(dataset, "split.json")[0]
    out = eval_transforms(CFG)(case)
    image = out["image"][0].numpy()
    # the body (-1000 HU air around it) spans 36 × 40 × 36 mm -> about 12 × 13-14 × 12 voxels of 3 mm
    assert image.shape[0] <= 13 and image.shape[1] <= 15 and image.shape[2] <= 13
    for axis in range(3):  # the crop is tight: each border slab contains body voxels
        assert np.take(image, 0, axis=axis).max() > 0 and np.take(image, -1, axis=axis).max() > 0


def test_image_only_pipeline(dataset):
    case = load_datalist(dataset, "split.json", "test")[0]
    out = eval_transforms(CFG, with_label=False)(case)
    assert "label" not in out and out["image"].ndim == 4


def test_label_of_another_shape_is_an_error(dataset):
    make_case(dataset, 9, shape=(24, 20, 15))
    case = {"image": str(dataset / "imagesTr/img0001.nii.gz"), "label": str(dataset / "labelsTr/label0009.nii.gz")}
    # MONAI's Compose wraps errors in "RuntimeError: applying transform ..."; our ValueError is the cause
    with pytest.raises(RuntimeError, match="CheckShapesd") as info:
        eval_transforms(CFG)(case)
    chain = [info.value]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    errors = [e for e in chain if isinstance(e, ValueError)]
    assert errors and "label must have the image's spatial shape (24, 20, 16), got (24, 20, 15)" in str(errors[0])


def test_acdc_resizes_after_the_crop(dataset):
    cfg = DataConfig(spacing=(3.0, 3.0, 3.0), roi=(16, 16, 16), dataset="acdc")
    out = eval_transforms(cfg)(load_datalist(dataset, "split.json")[0])
    assert out["image"].shape == (1, 16, 16, 16) and out["label"].shape == (1, 16, 16, 16)
    assert cfg.num_classes == 4 and CFG.num_classes == 14


def test_train_pipeline_crops_and_is_seedable(dataset):
    case = load_datalist(dataset, "split.json")[0]
    first = train_transforms(CFG, seed=0)(dict(case))
    assert isinstance(first, list) and len(first) == CFG.num_samples == 4
    for crop in first:
        assert crop["image"].shape == (1, 16, 16, 16) and crop["label"].shape == (1, 16, 16, 16)
        assert crop["label"].dtype == torch.int64
    again = train_transforms(CFG, seed=0)(dict(case))
    other = train_transforms(CFG, seed=1)(dict(case))
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a["image"], b["image"]) for a, b in zip(first, other, strict=True))
    # pos=1, neg=1: crops centred on foreground contain organ voxels
    assert any(int((c["label"] > 0).sum()) > 0 for c in first)


def test_augmentation_probabilities_are_used(dataset):
    case = load_datalist(dataset, "split.json")[0]
    cfg = DataConfig(spacing=(3.0, 3.0, 3.0), roi=(16, 16, 16), flip_prob=0.0, rotate90_prob=0.0,
                     scale_intensity_prob=0.0, shift_intensity_prob=1.0, num_samples=1)  # fmt: skip
    (crop,) = train_transforms(cfg, seed=0)(dict(case))
    values = crop["image"][crop["label"] == 1]
    shifted = values.mean().item() - (120 + 175) / 425  # RandShiftIntensityd adds one offset in [-0.1, 0.1]
    assert 0.0 < abs(shifted) <= 0.1 + 0.05


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"a_min": 100.0, "a_max": 50.0}, "a_max"),
        ({"spacing": (1.5, 0.0, 2.0)}, "spacing"),
        ({"spacing": (1.5, 2.0)}, "spacing"),
        ({"roi": (96, 96)}, "roi"),
        ({"roi": (96, 0, 96)}, "roi"),
        ({"flip_prob": 1.5}, "flip_prob"),
        ({"shift_intensity_prob": -0.1}, "shift_intensity_prob"),
        ({"dataset": "synapse"}, "dataset"),
        ({"num_samples": 0}, "num_samples"),
    ],
)
def test_data_config_errors(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DataConfig(**kwargs)


def test_loader_batches_flatten_crops(dataset):
    files = load_datalist(dataset, "split.json")
    for cache in (True, False):
        loader = make_loader(files, train_transforms(CFG, seed=0), batch_size=2, shuffle=True, workers=0,
                             cache=cache, seed=0)  # fmt: skip
        batch = next(iter(loader))
        assert batch["image"].shape == (8, 1, 16, 16, 16) and batch["label"].shape == (8, 1, 16, 16, 16)


def test_loader_order_is_seeded(dataset):
    files = load_datalist(dataset, "split.json") + load_datalist(dataset, "split.json", "validation")

    def order(seed: int) -> list[str]:
        loader = make_loader(files, eval_transforms(CFG), batch_size=1, shuffle=True, seed=seed)
        return [batch["image"].meta["filename_or_obj"][0] for batch in loader]

    assert order(3) == order(3) and sorted(order(3)) == sorted(f["image"] for f in files)


def test_loader_with_sampler_and_errors(dataset):
    files = load_datalist(dataset, "split.json")
    loader = make_loader(files, eval_transforms(CFG), sampler=SequentialSampler(files))
    assert [b["image"].meta["filename_or_obj"][0] for b in loader] == [f["image"] for f in files]
    with pytest.raises(ValueError, match="shuffle"):
        make_loader(files, eval_transforms(CFG), shuffle=True, sampler=SequentialSampler(files))
    with pytest.raises(ValueError, match="files"):
        make_loader([], eval_transforms(CFG))
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(files, eval_transforms(CFG), batch_size=0)


def test_int16_image_file_is_read_as_float(tmp_path):
    write_volume(tmp_path / "i.nii.gz", np.full((8, 8, 8), 100), np.eye(4), dtype=np.int16)
    out = eval_transforms(DataConfig(spacing=(1.0, 1.0, 1.0)), with_label=False)({"image": str(tmp_path / "i.nii.gz")})
    assert out["image"].dtype == torch.float32
    assert float(out["image"].max()) == pytest.approx(275 / 425, abs=1e-6)
