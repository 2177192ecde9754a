"""Whether the warehouse can be trusted: Great Expectations suites, the flag queue,
steward decisions and the stewards' web page.

- ``formats``: French identifiers and contact data (e-mail, phone, postcode, RNA,
  SIRET, IBAN), plain Python.
- ``suites``: the suites as data (no GX import); ``gx`` runs them with Great
  Expectations (imported lazily, one context per process); ``gx_custom`` holds
  guichet's own expectations.
- ``frames``: what a core suite validates (a town's current rows, typed, with
  derived columns).
- ``checks``: the quality steps of a run (``check_staged``, ``check_core``,
  ``run_quality``); ``report``: the run's HTML validation summary.
- ``flags``: the flag API every rule uses (``refresh_flags``) and the queue's
  queries; ``decisions``: steward decisions (``decide``, ``apply_decisions``);
  ``store``: the town lock, ids, the audit log.
- ``accounts`` and ``web``: the stewards' web page (``guichet steward serve``).
"""
