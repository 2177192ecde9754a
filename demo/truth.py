"""The ground truth, ``truth.jsonl``: one JSON object per line, each with a ``kind``.

* line 1, ``meta``: town, seed, ``now``, rates, counts per defect class;
* ``account_link`` / ``person_link``: the true identity of every portal account and person;
* ``duplicate_family``: legacy families that are the same household;
* ``defect``: one per injected (or, for state-based classes, currently present) defect,
  with its ``class`` and the exact records involved;
* ``payment``: every payment with its source record, the invoice it was meant for and the
  cents applied to it (the allocation);
* ``bank_operation``: every statement operation with what it settles.

Records produced as the simulation runs (``defect`` of event classes, ``payment``,
``bank_operation``) accumulate in ``.sim/truth_events.jsonl`` and are copied after the
records computed from the current state at the end of each run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

#: defect classes computed from the state at the end of every run (they can appear and
#: disappear as time goes by); the other classes are recorded when they happen.
STATE_CLASSES = (
    "account_unlinked",
    "account_wrong_family",
    "legacy_duplicate_family",
    "over_capacity",
    "document_missing_or_expired",
    "request_stuck",
    "accepted_enrolment_without_inscription",
)


def dumps(rec: dict) -> str:
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"), default=str)


class TruthSink:
    def __init__(self, out: Path, fresh: bool):
        self.out = Path(out)
        self.events_path = self.out / ".sim" / "truth_events.jsonl"
        self.events_path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(  # noqa: SIM115 - kept open for the whole run
            self.events_path, "w" if fresh else "a", encoding="utf-8", newline="\n")
        self.counts: dict[str, int] = {}

    def event(self, rec: dict) -> None:
        self.fh.write(dumps(rec) + "\n")
        if rec.get("kind") == "defect":
            c = rec["class"]
            self.counts[c] = self.counts.get(c, 0) + 1

    def defect(self, cls: str, **details) -> None:
        self.event({"kind": "defect", "class": cls, **details})

    def close(self) -> None:
        if self.fh:
            self.fh.close()
            self.fh = None

    def compose(self, meta: dict, computed: list[dict]) -> None:
        """Write truth.jsonl = meta + computed records + every event record so far."""
        self.close()
        tmp = self.out / ".truth.jsonl.tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(dumps(meta) + "\n")
            fh.writelines(dumps(rec) + "\n" for rec in computed)
            with open(self.events_path, encoding="utf-8") as ev:
                shutil.copyfileobj(ev, fh)
        os.replace(tmp, self.out / "truth.jsonl")


def load_truth(out: Path) -> list[dict]:
    with open(Path(out) / "truth.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]
