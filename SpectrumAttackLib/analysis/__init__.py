"""Analyses of adversarial examples (torch imported on use).

- :mod:`.frequency`: which DCT frequencies of a perturbation carry its effect: Dice with only the low / only the high
  frequencies kept (the DCT bands of the attacks and a radial cut-off sweep), next to the perturbation's energy per
  band.
"""

from SpectrumAttackLib.lazy import lazy_getattr

__all__ = ["analyze_attack", "frequency_analysis", "model_predictor"]

__getattr__ = lazy_getattr(__name__, dict.fromkeys(__all__, "frequency"))
