"""The case pipeline every interface runs: read → validate → model grid → clean prediction → attack → back to the
input grid → score → staged write.

- :mod:`.validate`: the one set of input checks and their wording (images, labels, blocks, modality warning).
- :mod:`.probe`: one small forward pass that refuses a model whose channels do not match its classes.
- :mod:`.scoring`: sliding-window prediction, the metrics of one case, the printed tables.
- :mod:`.staging`: the one staged writer; all outputs of a run appear together or not at all.
- :mod:`.signals`: SIGTERM handled like SIGINT, so the staged writer cleans up.
- :mod:`.case`: the one case type, :class:`~.case.Case`, with its two model-grid strategies as two constructors:
  ``Case.from_transforms`` (the seed's MONAI evaluation pipeline; the dataset commands write and read their files
  in that grid) and ``Case.from_volume`` (the geometry mapping of one volume in its own grid; the Python API,
  ``--image``, ``demo``, the audit of one image and the Slicer module go back to the input's grid and units).

Python entry point for "one case, one model, several attacks" (the clean prediction is computed once)::

    from SpectrumAttackLib.workflows.single import prepare_case
    case = prepare_case("ct.nii.gz", model="unet-btcv-3mm", reference_labels="seg.nii.gz")
    result = case.attack("saa", {"steps": 10, "rho": 0.2}, seed=0)
"""
