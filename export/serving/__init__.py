"""Serve an exported generator over HTTP (``gan-accel serve``), on LitServe.

* :mod:`.requests`: the ``POST /generate`` body, its limits and its check (no LitServe needed);
* :mod:`.encode`: latents from a request, PNG / ``.npz`` bytes from images;
* :mod:`.gate`: admission (the overload bound), body limit and validation before the queue;
* :mod:`.api`: the LitServe ``LitAPI``: one generator call per batch of requests;
* :mod:`.server`: the server, its routes and its shutdown.

LitServe comes with the ``serve`` extra: ``pip install "gan-accel[serve]"``.
"""
