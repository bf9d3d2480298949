"""AI2-THOR in one place: its data, its frames and its frames-to-observations adapter (no PyBullet, no ROS).

* :mod:`robomem.thor.scene` — the recorded iTHOR object metadata (PyPI wheel ``procthor==0.0.1.dev2``,
  a data package only) and the RoomR val rearrangements, joined into ground-truth
  :class:`~robomem.thor.scene.WorldState` s (y-up); data paths, undetected types.
* :mod:`robomem.thor.frames` — :func:`~robomem.thor.frames.yup_to_zup` / :func:`~robomem.thor.frames.zup_to_yup`:
  AI2-THOR's y-up frame to and from the core's REP-103 z-up map frame.
* :mod:`robomem.thor.adapter` — AI2-THOR ``event.metadata`` to core observation batches, live (an
  ``ai2thor`` Controller, optional, imported lazily) or replayed (recorded metadata).

The QA episode builder (:mod:`robomem.eval`), ``robomem qa`` and the PyBullet simulator
(``robomem_sim``) import AI2-THOR concerns from here.
"""
