"""Writes the portal export folder: one ``{collection}.jsonl`` per collection.

Snapshot semantics: one line per record in its current version. Mutable collections are
kept in the simulation state as line *slots* (a record id, or the raw text of an injected
malformed line) and rewritten whole at the end of every run; a record keeps its line when it
is updated, new records are appended. Append-only collections (the ``bookings`` log,
``online_payments`` attempts, daily ``logins``) are streamed: the previous file is copied to a
temporary file, new lines are appended, and the temporary file replaces the old one at the end
of the run. Every rewrite goes through a temporary file and an atomic rename.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

MUTABLE = ("accounts", "persons", "requests", "documents", "associations", "room_bookings")
APPEND_ONLY = ("bookings", "online_payments", "logins")
ALL_COLLECTIONS = ("accounts", "persons", "requests", "bookings", "documents",
                   "online_payments", "associations", "room_bookings", "logins")

#: fields of every collection (SOURCES.md §2); ``logins`` has no ``id``
FIELDS = {
    "accounts": ("id", "updated_at", "email", "phone", "first_name", "last_name", "address",
                 "legacy_family_code", "status", "created_at"),
    "persons": ("id", "updated_at", "account_id", "role", "first_name", "last_name",
                "birth_date", "legacy_person_id"),
    "requests": ("id", "updated_at", "number", "procedure", "account_id", "association_id",
                 "state", "submitted_at", "instruction_started_at", "decided_at", "service",
                 "fields"),
    "bookings": ("id", "updated_at", "account_id", "person_id", "activity_code", "day",
                 "action", "made_at"),
    "documents": ("id", "updated_at", "account_id", "person_id", "type", "valid_from",
                  "valid_until", "uploaded_at", "review"),
    "online_payments": ("id", "updated_at", "account_id", "invoice_number", "amount_cents",
                        "idop", "status", "paid_at"),
    "associations": ("id", "updated_at", "name", "rna", "siret", "contact_email"),
    "room_bookings": ("id", "updated_at", "association_id", "room_code", "starts_at",
                      "ends_at", "status", "equipment"),
    "logins": ("updated_at", "day", "space", "count"),
}


def dumps(rec: dict) -> str:
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))


class PortalSink:
    def __init__(self, root: Path, fresh: bool):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.files = {}
        self.counts = {c: {"new": 0, "updated": 0} for c in ALL_COLLECTIONS}
        for coll in APPEND_ONLY:
            final = self.root / f"{coll}.jsonl"
            tmp = self.root / f".{coll}.jsonl.tmp"
            if not fresh and final.exists():
                shutil.copyfile(final, tmp)
                fh = open(tmp, "a", encoding="utf-8", newline="\n")  # noqa: SIM115 - kept open
            else:
                fh = open(tmp, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - kept open
            self.files[coll] = (fh, tmp, final)

    def append_line(self, coll: str, text: str) -> None:
        self.files[coll][0].write(text + "\n")

    def close(self, st) -> None:
        for fh, tmp, final in self.files.values():
            fh.close()
            os.replace(tmp, final)
        self.files = {}
        for coll in MUTABLE:
            recs = st.portal[coll]
            final = self.root / f"{coll}.jsonl"
            tmp = self.root / f".{coll}.jsonl.tmp"
            with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                for slot in st.portal_slots[coll]:
                    if isinstance(slot, str):
                        fh.write(dumps(recs[slot]) + "\n")
                    else:  # (raw malformed text,)
                        fh.write(slot[0] + "\n")
            os.replace(tmp, final)

    def abort(self) -> None:
        for fh, tmp, _final in self.files.values():
            fh.close()
            tmp.unlink(missing_ok=True)
        self.files = {}
