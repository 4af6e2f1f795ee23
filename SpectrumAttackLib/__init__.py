"""SpectrumAttackLib: the engine of SpectrumAttack.

Frequency-domain (SA², VAFA) and voxel-domain (PGD, FGSM, BIM, GN, SegPGD, CosPGD) adversarial attacks on
volumetric segmentation models, with the models, data pipeline, metrics and training loops around them.

The package root imports nothing heavy (no torch, no MONAI), so Slicer can list attacks and read the model
catalogue before its dependency check; computing sub-packages import torch at their top.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
