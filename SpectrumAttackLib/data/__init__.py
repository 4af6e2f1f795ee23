"""Datasets: split files (datalists), MONAI transform pipelines, loaders and the bundled sample data.

Import the sub-modules directly; this package imports nothing heavy, so ``data.btcv`` and ``data.sample_data``
stay torch-free::

    from SpectrumAttackLib.data.sample_data import SAMPLE_SPLIT, ensure_sample_data
    from SpectrumAttackLib.data.datalist import load_datalist
    from SpectrumAttackLib.data.transforms import DataConfig, eval_transforms
"""
