"""The load generator and benchmark suite behind ``imserver bench``.

Figures must be honest and repeatable, so each run can measure a bare relay
(:mod:`.relay`) beside imserver on the same machine and report ratios to it.

Layout, one idea per module:

* :mod:`.cli`: the options and the orchestration of a run.
* :mod:`.targets`: what a scenario runs against (an imserver or the relay),
  started as a subprocess or reached by URL; accounts are provisioned through
  the public HTTP APIs (:mod:`.provision`).
* :mod:`.relay`: the bare relay (uvicorn + Starlette WebSocket, no auth, policy
  or storage).
* :mod:`.peer`: the lean WebSocket client the load is driven with.
* :mod:`.workers`: load generation spread over worker processes.
* :mod:`.scenarios`: one small module per scenario, and the registry of them.
* :mod:`.stats`, :mod:`.procstat`, :mod:`.progress`, :mod:`.report`: latency
  percentiles, server RSS and CPU from ``/proc``, the stderr progress bar, the
  table and the JSON object.
"""
