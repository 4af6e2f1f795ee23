"""The Slicer side of SpectrumAttack: everything between MRML nodes and ``SpectrumAttackLib``.

- :mod:`.arguments` (no Slicer import; the CLI module uses it too): parameter names of the parameter node, the
  console API and the CLI → engine arguments, and the one call into the engine.
- :mod:`.volumes`: volume nodes ↔ IJK arrays + IJK→RAS matrices (the only KJI ↔ IJK transpose).
- :mod:`.segmentations`: label arrays ↔ segmentation nodes with the model's class names and colours.
- :mod:`.tables`: the metrics table node.
- :mod:`.results`: writing one engine result into the scene, and removing it again.
- :mod:`.clijob`: running the CLI module in the background from the application (Slicer only).
- :mod:`.dependencies`: PyTorch through the PyTorch extension, other packages on first use (Slicer only).

The package imports nothing itself, so that the CLI process can import :mod:`.arguments` without ``slicer``.
"""
