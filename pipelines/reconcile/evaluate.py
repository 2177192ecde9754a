"""Measure the reconciliation against a simulated town's ground truth (``truth.jsonl``).

Per defect class: the flags of the rule named after it (their entity ids) against the
truth's records of the class (mapped by the rule's ``truth_key``) give precision, recall
and F1. Identity: the crosswalk's account and person links against the truth's
``account_link`` / ``person_link``. Payments: the allocations against the truth's
``applied_cents`` per payment and invoice, and money conservation.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from pipelines.reconcile.rules import all_rules


@dataclass
class Score:
    truth: int
    found: int
    hits: int
    missed: list = field(default_factory=list)  # a few examples
    extra: list = field(default_factory=list)
    #: defects of the class no data can show (quarantined lines, blind receipts)
    not_counted: int = 0

    @property
    def precision(self) -> float:
        return self.hits / self.found if self.found else (1.0 if not self.truth else 0.0)

    @property
    def recall(self) -> float:
        return self.hits / self.truth if self.truth else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict:
        return {"truth": self.truth, "found": self.found, "hits": self.hits,
                "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4), "not_counted": self.not_counted,
                "missed_examples": self.missed[:5],
                "extra_examples": self.extra[:5]}


def score(truth: set, found: set) -> Score:
    hits = truth & found
    return Score(len(truth), len(found), len(hits),
                 sorted(map(str, truth - found))[:5], sorted(map(str, found - truth))[:5])


def read_truth(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _key(values: Iterable) -> tuple:
    out = []
    for v in values:
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif hasattr(v, "item"):
            out.append(v.item())
        elif isinstance(v, pd.Timestamp):
            out.append(v.date().isoformat())
        elif isinstance(v, str) and len(v) == 19 and v.endswith("T00:00:00"):
            out.append(v[:10])  # a day stored as a midnight instant
        else:
            out.append(v)
    return tuple(str(v) if v is not None else None for v in out)


def unseeable(truth: list[dict]) -> tuple[set, set]:
    """Payments whose source line was malformed (quarantined, so not in the warehouse),
    and the invoices they were meant for: a payment defect that rests on them cannot be
    seen in the data (the quarantine shows the line) and is not counted."""
    pays = {r["payment_id"] for r in truth if r.get("payment_id") and (
        (r.get("kind") == "payment" and r.get("source_malformed"))
        or r.get("class") == "treasury_malformed_line")}
    invoices = {r["invoice_number"] for r in truth if r.get("kind") == "payment"
                and r["payment_id"] in pays and r.get("invoice_number")}
    return pays, invoices


#: defect classes that say what a payment did to its invoice
CASE_CLASSES = ("payment_partial", "payment_overpayment", "payment_double")


def blind(truth: list[dict]) -> tuple[set, set]:
    """Desk receipts that name nobody and quote no reference, and the invoices they paid.

    Nothing in such a receipt ties it to an invoice; when several recent invoices are of
    its amount (nearly always), no data can tell which one it paid, so neither whether it
    was partial, an overpayment or a second payment, nor whether the other payment of
    its invoice was the double one. Those case defects are not counted."""
    pays = {r["payment_id"] for r in truth if r.get("kind") == "payment"
            and r.get("payer_named") is False and r.get("reference_case") == "none"}
    invoices = {r["invoice_number"] for r in truth if r.get("kind") == "payment"
                and r["payment_id"] in pays and r.get("received_cents")}
    return pays, invoices


def truth_sets(truth: list[dict], ignored: dict[str, set] | None = None,
               unseen: dict[str, int] | None = None) -> dict[str, set]:
    """Rule id -> the entity-id tuples its flags should carry. ``ignored`` (when given)
    receives, per rule, the keys of defects the data cannot show: they count neither as
    expected nor, when a rule flags them anyway, as extra; ``unseen`` their number."""
    rules = {r.name: r for r in all_rules().values() if r.truth_key}
    out: dict[str, set] = {r.id: set() for r in rules.values()}
    bad_pays, bad_invoices = unseeable(truth)
    blind_pays, blind_invoices = blind(truth)
    for rec in truth:
        if rec.get("kind") != "defect" or rec.get("class") not in rules:
            continue
        r = rules[rec["class"]]
        key = r.truth_key(rec)
        if key is None:
            continue
        if r.family == "payments" and (
                rec.get("payment_id") in bad_pays or rec.get("invoice_number") in bad_invoices
                or (rec["class"] in CASE_CLASSES and rec.get("payment_id") in blind_pays)
                or (rec["class"] == "payment_double"
                    and rec.get("invoice_number") in blind_invoices)):
            if unseen is not None:
                unseen[r.id] = unseen.get(r.id, 0) + 1
            if ignored is not None:
                ignored.setdefault(r.id, set()).add(_key(key))
                if rec.get("portal_id"):  # the portal's record of a quarantined line
                    ignored[r.id].add(_key(("portal:" + rec["portal_id"],)))
            continue
        out[r.id].add(_key(key))
    return out


def found_from_findings(findings: dict[str, pd.DataFrame]) -> dict[str, set]:
    rules = all_rules()
    out = {}
    for rid, f in findings.items():
        cols = list(rules[rid].entity_columns)
        out[rid] = {_key(t) for t in f[cols].itertuples(index=False, name=None)} if len(f) \
            else set()
    return out


def found_from_flags(conn: sa.Connection, town: str) -> dict[str, set]:
    """The open flags of every reconciliation rule (what a steward sees)."""
    rules = all_rules()
    out: dict[str, set] = {rid: set() for rid in rules}
    rows = conn.execute(sa.text("SELECT rule, entity_ids FROM flag WHERE town = :t AND "
                                "status = 'open' AND rule LIKE 'rec.%'"), {"t": town})
    for rule_id, ids in rows:
        if rule_id in rules:
            d = json.loads(ids)
            out[rule_id].add(_key(d.get(c) for c in rules[rule_id].entity_columns))
    return out


def class_scores(truth: list[dict], found: dict[str, set]) -> dict[str, Score]:
    rules = all_rules()
    ignored: dict[str, set] = {}
    unseen: dict[str, int] = {}
    expected = truth_sets(truth, ignored, unseen)
    out = {}
    for rid in sorted(expected):
        s = out[rules[rid].name] = score(expected[rid],
                                         found.get(rid, set()) - ignored.get(rid, set()))
        s.not_counted = unseen.get(rid, 0)
    return out


def identity_scores(truth: list[dict], crosswalk: pd.DataFrame) -> dict[str, Score]:
    """Account -> household and portal person -> person links against the truth."""
    cw = crosswalk[crosswalk["source"] == "portal"]
    acc = {(str(r.source_id), str(int(r.canonical_id))) for r in cw.itertuples()
           if r.source_entity == "account"}
    per = {(str(r.source_id), str(int(r.canonical_id))) for r in cw.itertuples()
           if r.source_entity == "person"}
    t_acc = {(r["account_id"], str(r["family_id"])) for r in truth
             if r.get("kind") == "account_link" and r.get("family_id") is not None}
    t_per, ok_per = set(), set()
    for r in truth:
        if r.get("kind") == "person_link" and r.get("legacy_person_id") is not None:
            t_per.add((r["person_id"], str(r["legacy_person_id"])))
            ok_per.add((r["person_id"], str(r["legacy_person_id"])))
            for alt in r.get("also_legacy_person_ids") or []:
                ok_per.add((r["person_id"], str(alt)))
    s_acc = score(t_acc, acc)
    # a person linked to a duplicate of its true person is right, not extra
    hits = {p for p, _ in per & ok_per}
    s_per = Score(len(t_per), len(per), len(hits),
                  sorted(map(str, {p for p in t_per if p[0] not in hits}))[:5],
                  sorted(map(str, per - ok_per))[:5])
    return {"account_to_household": s_acc, "person_to_person": s_per}



def allocation_scores(truth: list[dict], allocations: pd.DataFrame,
                      payment_id_of=None) -> dict:
    """Cents allocated to the right invoice, over the truth's applied cents.

    ``payment_id_of(truth_payment) -> warehouse payment id`` (from the payments module).
    """
    if payment_id_of is None:
        from pipelines.reconcile.payments import truth_payment_id as payment_id_of
    expected: dict[tuple, int] = defaultdict(int)
    for r in truth:
        if r.get("kind") == "payment" and not r.get("source_malformed") \
                and r.get("applied_cents"):
            pid = payment_id_of(r)
            if pid is not None:
                expected[(pid, r["invoice_number"])] += int(r["applied_cents"])
    got: dict[tuple, int] = defaultdict(int)
    for r in allocations.itertuples():
        got[(str(r.payment_id), str(r.invoice_number))] += int(r.amount_cents)
    right = sum(min(v, got.get(k, 0)) for k, v in expected.items())
    total_expected = sum(expected.values())
    total_got = sum(got.values())
    return {"expected_cents": total_expected, "allocated_cents": total_got,
            "right_cents": right,
            "cent_recall": round(right / total_expected, 4) if total_expected else 1.0,
            "cent_precision": round(right / total_got, 4) if total_got else 1.0,
            "pairs_expected": len(expected),
            "pairs_exact": sum(1 for k, v in expected.items() if got.get(k) == v)}
