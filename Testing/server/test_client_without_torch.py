"""The remote client runs where torch and MONAI cannot be imported (Slicer in server mode)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from server_helpers import TOKENS, phantom, run_without_torch


def test_torch_is_unimportable_in_the_helper() -> None:
    out = run_without_torch("""
try:
    import torch
except ImportError as error:
    print("blocked:", error)
""")
    assert out.startswith("blocked: torch is made unimportable")


def test_client_attacks_and_audits_without_torch(server: Any, tmp_path: Any) -> None:
    hu, labels, affine = phantom()
    np.savez(tmp_path / "case.npz", hu=hu, labels=labels, affine=affine)
    out = run_without_torch(f"""
import json, sys
import numpy as np
from SpectrumAttackLib.remote import RemoteSession
case = np.load({str(tmp_path / "case.npz")!r})
session = RemoteSession({server.url!r}, {TOKENS["alice"]!r}, poll_s=0.05)
result = session.attack((case["hu"], case["affine"]), model="tiny-unet", attack="fgsm", params={{"eps": 4}},
                        reference_labels=case["labels"], precision="fp32")
audit = session.audit((case["hu"], case["affine"]), models=["tiny-unet"], labels=case["labels"],
                      grid={{"attacks": {{"gn": {{"std": [4]}}}}}}, precision="fp32")
print(json.dumps({{"type": type(result).__module__ + "." + type(result).__name__,
                  "shape": list(result.adversarial.shape), "dtype": str(result.seg_adv.dtype),
                  "dice": result.metrics["adversarial"]["dice"], "cells": len(audit.cells),
                  "torch": "torch" in sys.modules, "monai": "monai" in sys.modules}}))
""")
    report = json.loads(out.strip().splitlines()[-1])
    assert report == {"type": "SpectrumAttackLib.pipeline.results.SingleVolumeResult", "shape": list(hu.shape),
                      "dtype": "uint8", "dice": report["dice"], "cells": 1, "torch": False, "monai": False}
    assert 0.0 <= report["dice"] <= 1.0
