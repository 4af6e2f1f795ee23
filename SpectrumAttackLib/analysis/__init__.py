"""Analyses of adversarial examples (torch imported on use).

- :mod:`.frequency`: which DCT frequencies of a perturbation carry its effect: Dice with only the low / only the high
  frequencies kept (the DCT bands of the attacks and a radial cut-off sweep), next to the perturbation's energy per
  band.
"""

from SpectrumAttackLib.lazy import lazy_getattr

__all__ = ["frequency_analysis", "model_predictor"]

__getattr__ = lazy_getattr(__name__, {"frequency_analysis": "frequency", "model_predictor": "frequency"})
