"""The ``spectrum-attack`` command line: the seed's scripts as subcommands with the seed's flags.

``python generate_adv_samples.py ...`` → ``spectrum-attack attack ...``; ``python inference_on_saved_adv_samples.py``
→ ``spectrum-attack evaluate``; ``python run_normal_or_adv_training.py`` → ``spectrum-attack train``; plus
``transfer``, ``demo`` and ``sample-data``. Entry point: :func:`SpectrumAttackLib.cli.main.main`.
"""

__all__: list[str] = []
