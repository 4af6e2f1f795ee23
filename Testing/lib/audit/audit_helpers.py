"""Helpers of the audit tests: a grid of four cheap cells."""

#: PGD at two budgets, Gaussian noise, DFB's high band.
TINY_GRID = {"attacks": {
    "pgd": {"eps": [4, 16], "params": {"steps": 2}},
    "gn": {"std": [8]},
    "dfb": {"freq_band": ["high"], "params": {"block_size": [8, 8, 8]}},
}}
