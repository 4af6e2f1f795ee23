"""Segmentation and image-similarity metrics (MONAI underneath).

``dice_per_sample`` (used inside attack loops) is imported eagerly; the evaluation names load MONAI's metrics and
scikit-image on first use, so importing the attack loop stays light.
"""

from __future__ import annotations

from SpectrumAttackLib.lazy import lazy_getattr
from SpectrumAttackLib.metrics.overlap import dice_per_sample

__all__ = ["MetricsPreset", "MetricsTable", "compute_case_metrics", "dice_per_sample", "overlap_per_class"]

_LAZY = {
    "MetricsPreset": "evaluate",
    "compute_case_metrics": "evaluate",
    "overlap_per_class": "evaluate",
    "MetricsTable": "aggregate",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
