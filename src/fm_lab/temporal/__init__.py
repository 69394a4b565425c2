"""fm_lab runs on Temporal: ``fm_lab.run(wf, inputs, executor="temporal")``, ``fm_lab.submit``
and ``fm-lab worker --temporal ADDRESS --task-queue Q``.

* :mod:`~fm_lab.temporal.ids` — run ids <-> workflow ids, the ``temporal://`` target;
* :mod:`~fm_lab.temporal.graph` — a plan as plain JSON for the workflow;
* :mod:`~fm_lab.temporal.workflow` — the deterministic interpreter (Temporal workflow code);
* :mod:`~fm_lab.temporal.activities` — nodes, rendering, outputs and store writes;
* :mod:`~fm_lab.temporal.executor` — submit, answer, cancel (the engine's ``executor=``);
* :mod:`~fm_lab.temporal.worker` — workers; :mod:`~fm_lab.temporal.devserver` — the dev server.

Needs the ``temporal`` extra (``pip install 'fm_lab[temporal]'``).
"""

from fm_lab.temporal.ids import Target, run_id_of, workflow_id

__all__ = ["Target", "run_id_of", "workflow_id"]
