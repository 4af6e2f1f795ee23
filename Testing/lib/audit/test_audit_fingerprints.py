"""Cell and clean-record fingerprints: what ``--resume`` matches on. The resolved precision and the data's content
are in every one of them; the path of the data is not."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from audit_helpers import TINY_GRID

from SpectrumAttackLib.audit.grid import resolve_grid
from SpectrumAttackLib.audit.runner import AuditModel, AuditSettings, CaseSource, clean_fingerprints, plan_cells

MODEL = AuditModel("m", torch.nn.Identity(), 3, ("background", "liver", "kidney"), (16, 16, 16), "a" * 64)


def case(content: str = "c" * 64, source: str = "/data/img0001.nii.gz") -> CaseSource:
    return CaseSource("img0001", source, lambda: None, content=content)


def fingerprints(settings: AuditSettings, source: CaseSource) -> tuple[set[str], set[str]]:
    cells = {spec.fingerprint for spec in plan_cells([source], [MODEL], resolve_grid(TINY_GRID), settings)}
    return cells, set(clean_fingerprints([source], [MODEL], settings).values())


def test_fp32_and_bf16_fingerprints_share_nothing() -> None:
    fp32 = fingerprints(AuditSettings(precision="fp32"), case())
    bf16 = fingerprints(AuditSettings(precision="bf16"), case())
    assert len(fp32[0]) == 4 and len(fp32[1]) == 1
    assert not fp32[0] & bf16[0]  # cells
    assert not fp32[1] & bf16[1]  # the clean record


@pytest.mark.parametrize("change", ["content", "seed", "preset"])
def test_other_data_or_settings_share_nothing_and_the_path_alone_changes_nothing(change: str) -> None:
    settings = AuditSettings(precision="fp32")
    base = fingerprints(settings, case())
    if change == "content":
        other = fingerprints(settings, case(content="d" * 64))
    else:
        other = fingerprints(dataclasses.replace(settings, **{"seed": 1} if change == "seed" else
                                                 {"metrics_preset": "paper"}), case())
    assert not base[0] & other[0]
    if change == "seed":
        assert other[1] == base[1]  # the clean prediction draws nothing: it is reused across seeds
    else:
        assert not base[1] & other[1]
    moved = fingerprints(settings, case(source="/elsewhere/img0001.nii.gz"))
    assert moved == base
