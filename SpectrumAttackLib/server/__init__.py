"""``spectrum-attack serve``: the engine behind an HTTP API (FastAPI + uvicorn) for a GPU machine.

- :mod:`.config`: the server's settings and its token file.
- :mod:`.store`: what lives under ``--data``: uploaded volumes and weights, job records and result folders.
- :mod:`.jobs`: the job table and the one worker thread that owns the models and the GPU.
- :mod:`.kinds`: the job kinds (``attack``, ``audit``): their arguments go to the same engine functions as the
  command line's, and their results are written with the staged writer.
- :mod:`.app`: the FastAPI application (endpoints, bearer tokens, upload limits).

The client is :mod:`SpectrumAttackLib.remote` (torch-free); the protocol is in :mod:`SpectrumAttackLib.remote.protocol`.
"""
