"""How bytes travel between workers: in-process (the reference, ``fedlab.worker``) or Ray.

``fedlab.transport.ray`` runs workers as Ray actors (``sy.spawn_workers``,
``sy.connect``, ``sy.shutdown_workers``); it imports Ray only when used.
"""
