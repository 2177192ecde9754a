"""Apply every reconciliation rule to a town and store what it found.

One call per town and run: identity links go to ``crosswalk``, payment allocations to
``allocation`` (rows whose content did not change keep the run that established them),
every rule's findings refresh its flags. Everything is written in one transaction
under the town's stewardship lock, so a steward never sees half a reconciliation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from pipelines import loading
from pipelines.reconcile.data import TownData
from pipelines.reconcile.rules import PREFIX, all_rules
from quality import store
from quality.flags import FlagCounts, refresh_flags, retire_rules


@dataclass
class Outcome:
    """What one reconciliation found and wrote."""

    findings: dict[str, int] = field(default_factory=dict)  # rule id -> findings
    flags: FlagCounts = field(default_factory=FlagCounts)
    links: int = 0
    allocations: int = 0
    money: dict = field(default_factory=dict)  # received / allocated / unallocated cents
    seconds: dict = field(default_factory=dict)  # step -> seconds

    @property
    def money_conserved(self) -> bool:
        m = self.money
        return not m or m["received_cents"] == m["allocated_cents"] + m["unallocated_cents"]


def compute(td: TownData) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], dict]:
    """(findings per rule id, derived tables {crosswalk, allocation}, timings): no writes."""
    from pipelines.reconcile import identity, payments

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    derived = {"crosswalk": identity.crosswalk(td)}
    timings["identity"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    derived["allocation"] = payments.allocations(td)
    timings["allocation"] = time.perf_counter() - t0
    out: dict[str, pd.DataFrame] = {}
    for rid, r in all_rules().items():
        t0 = time.perf_counter()
        out[rid] = r.func(td)
        timings[rid] = time.perf_counter() - t0
    return out, derived, timings


def reconcile_town(engine: sa.Engine, town: str, run_id: str, *,
                   td: TownData | None = None, service_levels: dict | None = None) -> Outcome:
    """Reconcile one town: links, allocations and flags, in one transaction.

    ``service_levels``: procedure -> days, overriding the defaults (town configuration).
    """
    td = td or TownData(engine, town)
    if service_levels:
        td.memo["service_levels"] = dict(service_levels)
    found, derived, timings = compute(td)
    rules = all_rules()
    res = Outcome(seconds=timings)
    from pipelines.reconcile.payments import money_balance

    res.money = money_balance(td, derived["allocation"])
    res.links = len(derived["crosswalk"])
    res.allocations = len(derived["allocation"])
    t0 = time.perf_counter()
    with store.town_transaction(engine, town) as conn:
        for name, rows in derived.items():
            write_derived(conn, town, run_id, name, rows)
        for rid, f in found.items():
            res.findings[rid] = len(f)
            res.flags += refresh_flags(conn, town, run_id, rid, f,
                                       entity_columns=list(rules[rid].entity_columns))
        retire_rules(conn, town, run_id, set(rules), PREFIX)
        record_run(conn, town, run_id, res.money)
    res.seconds["write"] = time.perf_counter() - t0
    return res


def record_run(conn: sa.Connection, town: str, run_id: str, money: dict) -> None:
    """The night's figures (reconciliation rate, open flags) for the finance report."""
    from schemas.tables import table

    t = table("reconciliation_run")
    open_flags = conn.execute(sa.text(
        "SELECT COUNT(*) FROM flag WHERE town = :t AND status = 'open' AND rule LIKE 'rec.%'"),
        {"t": town}).scalar()
    conn.execute(sa.delete(t).where(t.c.town == town, t.c.run_id == run_id))
    conn.execute(sa.insert(t).values(
        town=town, run_id=run_id, reconciled_at=store.utcnow(), open_flags=open_flags,
        **{k: money.get(k, 0) for k in ("received_cents", "allocated_cents",
                                        "unallocated_cents", "payments_received",
                                        "payments_allocated")}))


def write_derived(conn: sa.Connection, town: str, run_id: str, name: str,
                  rows: pd.DataFrame) -> loading.CoreCounts:
    """Replace the town's rows of a derived core table by ``rows``.

    A row whose content is unchanged keeps its ``run_id`` (the run that established it)
    and is not rewritten; rows no longer derived are marked deleted by this run.
    """
    from quality.frames import read_table, typed
    from schemas.tables import BY_NAME

    spec = BY_NAME[name]
    pk = spec.key_columns
    cols = [c for c in spec.data_columns if c != "town"]
    rows = typed(rows.reindex(columns=cols), name)
    rows["run_id"] = run_id
    old = read_table(conn, town, name)
    if len(rows) and len(old):
        content = [c for c in cols if c != "run_id"]
        new_h = pd.Series(loading.row_hashes(rows[content]).values, index=rows.index)
        old_h = dict(zip(loading.row_hashes(old[content]), old["run_id"]))
        kept = new_h.map(old_h)
        rows["run_id"] = kept.where(kept.notna(), run_id)
    return loading.upsert_core(conn, town, run_id, name, rows, present=rows[pk])
